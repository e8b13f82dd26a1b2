"""Reactor configs: which instruments, where they are, and the limits the rig must respect."""
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .analysis import AnalysisSettings, KineticParameters
from .files import Strict, load
from .units import Amperes, Joules, Kelvin, Ohms, Quantity, Seconds, Volts

TWIN = "twin"  # the address of an instrument played by its simulated twin
PT90_STEPS = (0.0, 1e-3, 3e-3, 5e-3, 10e-3, 50e-3, 0.25, 1.0, 3.0, 10.0)


class SupplyConfig(Strict):
    model: Literal["keysight-n6900"]
    address: str = Field(description="VISA address, e.g. TCPIP::192.168.1.20::5025::SOCKET")
    timeout: Annotated[Seconds, Field(gt=0, le=60)] = 2.0
    ovp: Annotated[Volts, Field(gt=0, le=1000)]
    ocp: bool = False
    protection_delay: Annotated[Seconds, Field(ge=0, le=0.255)] = 0.02
    watchdog: Annotated[Seconds, Field(ge=1, le=3600)] = 10.0
    digitizer_interval: Annotated[Seconds, Field(ge=5.12e-6, le=1.0)] = 20.48e-6


class PyrometerConfig(Strict):
    model: Literal["impac-upp"]
    address: str = Field(description="serial port, e.g. /dev/ttyUSB0")
    bus_address: Annotated[int, Field(ge=0, le=97)] = 0
    baudrate: Literal[9600, 19200, 38400, 57600, 115200] = 19200
    emissivity: Annotated[float, Field(ge=0.05, le=1.0)] = 0.85
    response_time: Seconds = 1e-3
    range_begin: Kelvin
    range_end: Kelvin
    analog_output: Literal["0-20 mA", "4-20 mA"] = "4-20 mA"

    @model_validator(mode="after")
    def _check(self):
        if not any(abs(self.response_time - t) < 1e-9 for t in PT90_STEPS):
            raise ValueError(f"response_time must be one of {', '.join(f'{t:g} s' for t in PT90_STEPS)}")
        if self.range_end - self.range_begin < 50:
            raise ValueError("range_end must be at least 50 K above range_begin")
        return self


class DigitizerConfig(Strict):
    model: Literal["keysight-infiniivision"]
    address: str = Field(description="VISA address, e.g. TCPIP::192.168.1.21::INSTR")
    timeout: Annotated[Seconds, Field(gt=0, le=60)] = 5.0
    channel: Annotated[int, Field(ge=1, le=4)] = 1
    shunt: Annotated[Ohms, Field(gt=0, le=1000)] = 250.0
    record: Annotated[Seconds, Field(gt=0, le=50)] = 0.4
    pre_trigger: Annotated[Seconds, Field(ge=0)] = 0.01
    points: Annotated[int, Field(ge=100, le=62500)] = 50000


class Instruments(Strict):
    supply: SupplyConfig
    pyrometer: PyrometerConfig
    digitizer: DigitizerConfig


class Limits(Strict):
    max_current: Annotated[Amperes, Field(gt=0)]
    max_voltage: Annotated[Volts, Field(gt=0)]
    max_energy_per_pulse: Annotated[Joules, Field(gt=0)]
    min_off_time: Annotated[Seconds, Field(ge=0.5)] = 0.5
    max_temperature: Annotated[Kelvin, Field(gt=0)] | None = None  # the interlock trips above it
    max_power: Annotated[Quantity("W"), Field(gt=0)] | None = None  # level x compliance of any step
    max_energy_per_minute: Annotated[Joules, Field(gt=0)] | None = None  # duty cycle of a train


class AnalysisConfig(Strict):
    threshold: Kelvin = 1500.0
    fixed_temperature: Kelvin = 1500.0
    activation_energy: Annotated[Quantity("J/mol"), Field(gt=0)] = 211e3
    d0: Annotated[Quantity("m^2/s"), Field(gt=0)] = 7.8e-5
    reference_temperature: Annotated[Kelvin, Field(gt=0)] = 2000.0

    def settings(self) -> AnalysisSettings:
        return AnalysisSettings(self.threshold, self.fixed_temperature, KineticParameters(
            self.activation_energy, self.d0, self.reference_temperature))


class SimulationConfig(Strict):
    sample: Literal["thin_film", "carbon_paper"] = "thin_film"
    seed: int | None = None


class FJHConfig(Strict):
    reactor: str
    kind: Literal["fjh"]
    data_dir: str = "data"
    instruments: Instruments
    limits: Limits
    analysis: AnalysisConfig = AnalysisConfig()
    simulation: SimulationConfig = SimulationConfig()

    @model_validator(mode="after")
    def _check(self):
        supply = self.instruments.supply
        if supply.ovp <= self.limits.max_voltage:
            raise ValueError(f"instruments.supply.ovp ({supply.ovp:g} V) must be above "
                             f"limits.max_voltage ({self.limits.max_voltage:g} V), or every pulse trips it")
        digitizer = self.instruments.digitizer
        if digitizer.pre_trigger >= digitizer.record:
            raise ValueError("instruments.digitizer.pre_trigger must be shorter than record")
        return self

    @property
    def record_window(self) -> tuple[float, float]:
        """(record length, pre-trigger time) of the digitizer: a pulse must fit in it."""
        return self.instruments.digitizer.record, self.instruments.digitizer.pre_trigger

    @property
    def simulated(self) -> bool:
        """True when every instrument is a twin."""
        return all(getattr(self.instruments, n).address == TWIN for n in Instruments.model_fields)


def load_config(path: str | Path) -> tuple[FJHConfig, str]:
    """(config, its text) of a reactor config file."""
    return load(FJHConfig, path)
