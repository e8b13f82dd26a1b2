"""Reactor configs: which instruments, where they are, and the limits the rig must respect."""
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from quenchlab.analysis.pulse import AnalysisSettings, GrainGrowth, KineticParameters
from quenchlab.config.addresses import SerialAddress, VisaAddress, VisaLibrary
from quenchlab.config.listing import Listed, only_twins
from quenchlab.config.supplies import CapBankConfig, GenesysConfig
from quenchlab.errors import ConfigError
from quenchlab.files import Strict, read_yaml, validate
from quenchlab.units import Amperes, Joules, Kelvin, Ohms, Quantity, Seconds, Volts

PT90_STEPS = (0.0, 1e-3, 3e-3, 5e-3, 10e-3, 50e-3, 0.25, 1.0, 3.0, 10.0)


class SupplyConfig(Strict):
    model: Literal["keysight-n6900"]
    address: VisaAddress = Field(description="VISA address, e.g. TCPIP::192.168.1.20::5025::SOCKET")
    timeout: Annotated[Seconds, Field(gt=0, le=60)] = 2.0
    ovp: Annotated[Volts, Field(gt=0, le=1000)]
    ocp: bool = False
    protection_delay: Annotated[Seconds, Field(ge=0, le=0.255)] = 0.02
    watchdog: Annotated[Seconds, Field(ge=1, le=3600)] = 10.0
    digitizer_interval: Annotated[Seconds, Field(ge=5.12e-6, le=1.0)] = 20.48e-6

    def check(self, limits: "Limits") -> str | None:
        if self.ovp <= limits.max_voltage:
            return (f"instruments.supply.ovp ({self.ovp:g} V) must be above "
                    f"limits.max_voltage ({limits.max_voltage:g} V), or every pulse trips it")
        return None


class PyrometerConfig(Strict):
    model: Literal["impac-upp"]
    address: SerialAddress = Field(description="serial port, e.g. /dev/ttyUSB0")
    bus_address: Annotated[int, Field(ge=0, le=97)] = 0
    baudrate: Literal[9600, 19200, 38400, 57600, 115200] = 19200
    emissivity: Annotated[float, Field(ge=0.05, le=1.0)] = 0.85
    response_time: Seconds = 1e-3
    range_begin: Kelvin
    range_end: Kelvin
    analog_output: Literal["0-20 mA", "4-20 mA"] = "4-20 mA"
    wavelength: Annotated[Quantity("um"), Field(gt=0.3, lt=20)] = 1.6  # effective; an IGA 6 works at 1.45-1.8 um

    @model_validator(mode="after")
    def _check(self):
        if not any(abs(self.response_time - t) < 1e-9 for t in PT90_STEPS):
            raise ValueError(f"response_time must be one of {', '.join(f'{t:g} s' for t in PT90_STEPS)}")
        if self.range_end - self.range_begin < 50:
            raise ValueError("range_end must be at least 50 K above range_begin")
        return self


class DigitizerConfig(Strict):
    model: Literal["keysight-infiniivision"]
    address: VisaAddress = Field(description="VISA address, e.g. TCPIP::192.168.1.21::INSTR")
    timeout: Annotated[Seconds, Field(gt=0, le=60)] = 5.0
    channel: Annotated[int, Field(ge=1, le=4)] = 1
    shunt: Annotated[Ohms, Field(gt=0, le=1000)] = 250.0
    record: Annotated[Seconds, Field(gt=0, le=50)] = 0.4
    pre_trigger: Annotated[Seconds, Field(ge=0)] = 0.01
    points: Annotated[int, Field(ge=100, le=62500)] = 50000
    current_channel: Annotated[int, Field(ge=1, le=4)] | None = None  # a current probe (Rogowski coil, shunt)
    current_sensitivity: Annotated[Quantity("V/A"), Field(gt=0)] | None = None  # the probe's output per ampere
    segmented_memory: bool = Field(False, description="the scope has the segmented memory option: a pulse "
                                   "train is captured one segment per pulse; without it, what re-arming allows")
    max_segments: Annotated[int, Field(ge=2, le=100000)] = Field(
        1000, description="the most segments the scope's option takes (:ACQuire:SEGMented:COUNt; 1000 on the "
        "3000T X-Series, see your model's guide): a longer train is split into lists of at most this")

    @property
    def segments(self) -> int:
        """Segments a train may use: 0 without segmented memory."""
        return self.max_segments if self.segmented_memory else 0

    @model_validator(mode="after")
    def _check(self):
        if (self.current_channel is None) != (self.current_sensitivity is None):
            raise ValueError("current_channel and current_sensitivity go together (the probe's channel and its V/A)")
        if self.current_channel == self.channel:
            raise ValueError(f"current_channel must differ from channel ({self.channel}), the pyrometer's")
        return self


class Instruments(Strict):
    supply: Annotated[SupplyConfig | GenesysConfig | CapBankConfig, Field(discriminator="model")]
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


class GrainGrowthConfig(Strict):
    """d^n - d0^n = k0_n * integral exp(-Ea/(R T)) dt; Ea defaults to the analysis' activation_energy."""

    initial_size: Annotated[Quantity("m"), Field(ge=0)] = GrainGrowth.initial_size
    k0_n2: Annotated[Quantity("m^2/s"), Field(gt=0)] = GrainGrowth.k0_n2
    k0_n3: Annotated[Quantity("m^3/s"), Field(gt=0)] = GrainGrowth.k0_n3
    activation_energy: Annotated[Quantity("J/mol"), Field(gt=0)] | None = None


class AnalysisConfig(Strict):
    threshold: Kelvin = 1500.0
    fixed_temperature: Kelvin = 1500.0
    activation_energy: Annotated[Quantity("J/mol"), Field(gt=0)] = 211e3
    d0: Annotated[Quantity("m^2/s"), Field(gt=0)] = 7.8e-5
    reference_temperature: Annotated[Kelvin, Field(gt=0)] = 2000.0
    grain_growth: GrainGrowthConfig = GrainGrowthConfig()

    def settings(self) -> AnalysisSettings:
        grain = self.grain_growth
        return AnalysisSettings(self.threshold, self.fixed_temperature, KineticParameters(
            self.activation_energy, self.d0, self.reference_temperature), GrainGrowth(
            grain.initial_size, grain.k0_n2, grain.k0_n3, grain.activation_energy or self.activation_energy))


class SimulationConfig(Strict):
    sample: Literal["thin_film", "carbon_paper", "platinum_strip"] = "thin_film"
    seed: int | None = None


class LibraryPolicy(Strict):
    """How an unattended library meets failing samples (quenchlab.library.runner)."""

    stop_after_failures: Annotated[int, Field(ge=1)] = 3  # samples failing in a row that stop the night


class FJHConfig(Strict):
    reactor: str
    kind: Literal["fjh"]
    data_dir: str = "data"
    visa_library: VisaLibrary = Field("@py", description="the VISA the LAN/USB/GPIB instruments are opened with")
    library: LibraryPolicy = LibraryPolicy()
    instruments: Instruments
    limits: Limits
    analysis: AnalysisConfig = AnalysisConfig()
    simulation: SimulationConfig = SimulationConfig()

    @model_validator(mode="after")
    def _check(self):
        supply, digitizer = self.instruments.supply, self.instruments.digitizer
        if problem := supply.check(self.limits):
            raise ValueError(problem)
        if supply.model == "capbank" and digitizer.current_channel is None:
            raise ValueError("instruments.digitizer.current_channel: a capacitor bank's current is measured by a "
                             "current probe on a second digitizer channel: set current_channel and current_sensitivity")
        if supply.model != "capbank" and digitizer.current_channel is not None:
            raise ValueError(f"instruments.digitizer.current_channel: only a capacitor bank's current is taken from "
                             f"the digitizer; the {supply.model} measures its own: remove current_channel")
        if digitizer.pre_trigger >= digitizer.record:
            raise ValueError("instruments.digitizer.pre_trigger must be shorter than record")
        return self

    @property
    def record_window(self) -> tuple[float, float]:
        """(record length, pre-trigger time) of the digitizer: a pulse must fit in it."""
        return self.instruments.digitizer.record, self.instruments.digitizer.pre_trigger

    def listed(self) -> list[Listed]:
        """Supply, pyrometer and digitizer, in the order the reactor opens them."""
        i = self.instruments
        return [Listed("supply", i.supply.model, i.supply), Listed("pyrometer", "impac-upp", i.pyrometer),
                Listed("digitizer", "keysight-infiniivision", i.digitizer)]

    @property
    def simulated(self) -> bool:
        """True when every instrument is a twin."""
        return only_twins(self.listed())


def load_config(path: str | Path) -> tuple[FJHConfig, str]:
    """(config, its text) of an FJH reactor's config file; an aerosol line's is named as such."""
    data, text = read_yaml(path)
    if data.get("kind") == "aerosol":
        raise ConfigError(f"{path}: an aerosol line's config: its samples run with "
                          "`quenchlab library CONFIG LIBRARY` (run takes an FJH reactor's config and a recipe)")
    return validate(FJHConfig, data, str(path)), text
