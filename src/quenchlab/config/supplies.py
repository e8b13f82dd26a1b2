"""Configs of the supplies beside the Keysight N6900 (quenchlab.config.fjh): a TDK-Lambda Genesys,
whose pulses the host times, and a capacitor bank behind its controller. The reactor config's
`instruments.supply.model` picks one; each `check(limits)` says what the limits rule out."""
import math
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from quenchlab.config.addresses import SerialAddress
from quenchlab.devices.genesys_driver import BAUD_RATES
from quenchlab.files import Strict
from quenchlab.units import Ohms, Quantity, Seconds, Volts

GENESYS_PV_OF_OVP = 0.95  # a voltage setting above 95 % of the OVP answers E01 (Genesys manual 7.6)


class GenesysConfig(Strict):
    """A Genesys GEN unit ("Genesys 3300W Technical Manual", ch. 5 protections, ch. 7 RS-232/485).
    At connect quenchlab sets remote mode, safe-start (AST OFF: after an AC fail the output
    stays off), OVP, UVL and foldback, enables the fault events, and reads them back."""

    model: Literal["tdk-genesys"]
    address: SerialAddress = Field(description="serial port, e.g. /dev/ttyUSB0")
    unit: Annotated[int, Field(ge=0, le=30)] = 6  # its ADR address, set on its front panel (7.5)
    baudrate: Literal[BAUD_RATES] = 9600  # 8N1, as set on its front panel (7.5)
    timeout: Annotated[Seconds, Field(gt=0, le=10)] = 0.3
    ovp: Annotated[Volts, Field(gt=0, le=1000)]  # over-voltage protection
    uvl: Annotated[Volts, Field(ge=0, le=1000)] = 0.0  # under-voltage limit: no voltage setting below it
    foldback: bool = False  # the output shuts down after 0.25 s + foldback_delay in CC
    foldback_delay: Annotated[Seconds, Field(ge=0, le=25.5)] = 0.0  # added to the standard delay, 0.1 s steps

    @field_validator("foldback_delay")
    @classmethod
    def _tenths(cls, seconds: float) -> float:
        if abs(seconds / 0.1 - round(seconds / 0.1)) > 1e-6:
            raise ValueError(f"{seconds:g} s: the delay is set in steps of 0.1 s (FBD)")
        return seconds

    @model_validator(mode="after")
    def _check(self):
        if self.uvl >= self.ovp:
            raise ValueError(f"uvl ({self.uvl:g} V) must be below ovp ({self.ovp:g} V)")
        return self

    def check(self, limits) -> str | None:
        if GENESYS_PV_OF_OVP * self.ovp < limits.max_voltage:
            return (f"instruments.supply.ovp ({self.ovp:g} V) must be at least limits.max_voltage / 0.95 "
                    f"({limits.max_voltage / GENESYS_PV_OF_OVP:.4g} V): a Genesys refuses a voltage setting "
                    "above 95 % of its OVP (E01)")
        if self.uvl >= limits.max_voltage:
            return (f"instruments.supply.uvl ({self.uvl:g} V) must be below limits.max_voltage "
                    f"({limits.max_voltage:g} V)")
        return None


class CapBankConfig(Strict):
    """A capacitor bank, its charger, discharge switch and dump, run by a controller speaking
    docs/capbank-protocol.md. At connect quenchlab dumps the bank, refuses to go on unless the
    controller's CAP? is the configured capacitance and its VMAX? allows max_charge_voltage, and
    sets and reads back the watchdog."""

    model: Literal["capbank"]
    address: SerialAddress = Field(description="serial port, e.g. /dev/ttyUSB0")
    baudrate: Literal[115200] = 115200  # 8N1 (section 1)
    timeout: Annotated[Seconds, Field(gt=0, le=10)] = 0.5
    capacitance: Annotated[Quantity("F"), Field(gt=0)]  # the bank the energy limits are computed with
    max_charge_voltage: Annotated[Volts, Field(gt=0)]  # no shot charges the bank above it
    watchdog: Annotated[Seconds, Field(ge=1, le=3600)] = 10.0  # dump after this long without a line (section 6)
    # the controller's figures pre-flight forecasts a shot's cycle with (the dump of what a shot
    # leaves, then the charge: shots that take longer than off_time are held apart); checked
    # against ICHG?, VSAFE? and RDUMP? at connect
    charge_current: Annotated[Quantity("A"), Field(gt=0)] | None = None
    safe_voltage: Annotated[Volts, Field(gt=0)] | None = None
    dump_resistance: Annotated[Ohms, Field(gt=0)] | None = None

    @field_validator("watchdog")
    @classmethod
    def _whole_seconds(cls, seconds: float) -> float:
        if seconds != math.floor(seconds):
            raise ValueError(f"{seconds:g} s: the watchdog is set in whole seconds (WDOG, section 6)")
        return seconds

    def check(self, limits) -> str | None:
        return None
