"""Aerosol (flame spray pyrolysis) reactor configs: valve, gases, pump, flame sensor, line."""
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .config import TWIN, LibraryPolicy, PyrometerConfig
from .files import Strict, load
from .units import Kelvin, Quantity, Seconds

Millilitres = Quantity("mL")
MlPerMin = Quantity("mL/min")
Slpm = Quantity("L/min")
GAS_ROLES = ("dispersion", "pilot_fuel", "pilot_oxidizer", "sheath")


class ValveConfig(Strict):
    model: Literal["vici-universal"]
    address: str = Field(description="serial port, e.g. /dev/ttyUSB1")
    baudrate: Literal[4800, 9600, 19200, 38400, 57600, 115200] = 9600
    positions: Annotated[int, Field(ge=2, le=40)]
    move_timeout: Annotated[Seconds, Field(gt=0, le=120)] = 10.0
    safe_port: Annotated[int, Field(ge=1)] = Field(description="the solvent port the valve goes to when anything goes wrong")


class FlowControllerConfig(Strict):
    model: Literal["alicat-mc"]
    address: str
    unit: Annotated[str, Field(pattern="^[A-Z]$")]
    gas: str
    full_scale: Annotated[Slpm, Field(gt=0)]
    setpoint: Annotated[Slpm, Field(ge=0)]
    tolerance: Annotated[float, Field(gt=0, le=1)] = Field(
        0.25, description="fraction of the setpoint the flow may stray before the interlock suspends the run")

    @model_validator(mode="after")
    def _within_scale(self):
        if self.setpoint > self.full_scale:
            raise ValueError(f"setpoint {self.setpoint:g} L/min is above full_scale {self.full_scale:g} L/min")
        return self


class GaugeConfig(Strict):
    model: Literal["alicat-p"]
    address: str
    unit: Annotated[str, Field(pattern="^[A-Z]$")]
    max_pressure_drop: Annotated[Quantity("kPa"), Field(gt=0)] = 50.0


class PumpConfig(Strict):
    model: Literal["ne1000"]
    address: str
    pump_address: Annotated[int, Field(ge=0, le=99)] = 0
    baudrate: Literal[300, 1200, 2400, 9600, 19200] = 9600
    diameter: Annotated[Quantity("mm"), Field(gt=0, le=50)]
    safe_mode: Annotated[Seconds, Field(ge=1, le=255)] = 10.0


class FlamePyrometerConfig(PyrometerConfig):
    response_time: Seconds = 0.25


class AerosolInstruments(Strict):
    valve: ValveConfig
    pump: PumpConfig
    gases: dict[Literal["dispersion", "pilot_fuel", "pilot_oxidizer", "sheath"], FlowControllerConfig]
    filter_gauge: GaugeConfig
    pyrometer: FlamePyrometerConfig


class Reservoir(Strict):
    precursor: str
    volume: Annotated[Millilitres, Field(gt=0)]
    solids: Annotated[float, Field(ge=0, le=1)] = 0.02  # g/mL, for the twin's filter model
    flame_offset: Annotated[float, Field(ge=-500, le=500)] = 0.0  # K, for the twin's flame model


class LineConfig(Strict):
    dead_volume: Annotated[Millilitres, Field(gt=0)]
    flush_volumes: Annotated[float, Field(ge=1, le=20)] = 4.0
    settle_allowance: Annotated[Seconds, Field(ge=0)] = 20.0
    flame_band: Annotated[Quantity("K"), Field(gt=0)] = 15.0
    flame_window: Annotated[Seconds, Field(gt=0)] = 10.0
    min_flame: Kelvin = 1200.0


class SampleDefaults(Strict):
    dwell: Annotated[Seconds, Field(gt=0)] = 300.0
    liquid_flow: Annotated[MlPerMin, Field(gt=0)] = 5.0
    flush: Annotated[Seconds, Field(ge=0)] | None = None  # None: from the line's dead volume


class AerosolConfig(Strict):
    reactor: str
    kind: Literal["aerosol"]
    data_dir: str = "data"
    library: LibraryPolicy = LibraryPolicy()
    instruments: AerosolInstruments
    reservoirs: dict[int, Reservoir]
    line: LineConfig
    defaults: SampleDefaults = SampleDefaults()
    log_period: Annotated[Seconds, Field(gt=0, le=1)] = 1.0
    min_liquid_flow: Annotated[MlPerMin, Field(gt=0)] = 0.5
    max_liquid_flow: Annotated[MlPerMin, Field(gt=0)] = 10.0

    @model_validator(mode="after")
    def _check(self):
        valve = self.instruments.valve
        for port in self.reservoirs:
            if not 1 <= port <= valve.positions:
                raise ValueError(f"reservoirs: port {port} does not exist on a {valve.positions}-position valve "
                                 f"(allowed 1-{valve.positions})")
        if valve.safe_port not in self.reservoirs:
            raise ValueError(f"instruments.valve.safe_port {valve.safe_port} must be one of the reservoirs' ports "
                             f"({', '.join(map(str, sorted(self.reservoirs)))})")
        if not self.min_liquid_flow <= self.defaults.liquid_flow <= self.max_liquid_flow:
            raise ValueError(f"defaults.liquid_flow {self.defaults.liquid_flow:g} mL/min is outside the allowed band "
                             f"{self.min_liquid_flow:g}-{self.max_liquid_flow:g} mL/min (min_liquid_flow, max_liquid_flow)")
        return self

    @property
    def simulated(self) -> bool:
        i = self.instruments
        addresses = [i.valve.address, i.pump.address, i.filter_gauge.address, i.pyrometer.address]
        return all(a == TWIN for a in addresses + [g.address for g in i.gases.values()])


def load_aerosol_config(path: str | Path) -> tuple[AerosolConfig, str]:
    return load(AerosolConfig, path)
