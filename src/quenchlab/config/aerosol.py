"""Aerosol (flame spray pyrolysis) reactor configs: valve, gases, pump, flame sensor, line."""
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from quenchlab.config.addresses import SerialAddress
from quenchlab.config.fjh import LibraryPolicy, PyrometerConfig
from quenchlab.config.listing import Listed, only_twins
from quenchlab.config.plate import PlateConfig, Point
from quenchlab.files import Strict, load
from quenchlab.units import Kelvin, Quantity, Seconds

Millilitres = Quantity("mL")
MlPerMin = Quantity("mL/min")
Slpm = Quantity("L/min")
GAS_ROLES = ("dispersion", "pilot_fuel", "pilot_oxidizer", "sheath")


class ValveConfig(Strict):
    model: Literal["vici-universal"]
    address: SerialAddress = Field(description="serial port, e.g. /dev/ttyUSB1")
    baudrate: Literal[4800, 9600, 19200, 38400, 57600, 115200] = 9600
    positions: Annotated[int, Field(ge=2, le=40)]
    move_timeout: Annotated[Seconds, Field(gt=0, le=120)] = 10.0
    safe_port: Annotated[int, Field(ge=1)] = Field(
        description="the solvent port the valve goes to when anything goes wrong")


class FlowControllerConfig(Strict):
    model: Literal["alicat-mc"]
    address: SerialAddress
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
    address: SerialAddress
    unit: Annotated[str, Field(pattern="^[A-Z]$")]
    max_pressure_drop: Annotated[Quantity("kPa"), Field(gt=0)] = 50.0


class SyringePumpConfig(Strict):
    """An NE-1000 syringe pump refilled through check valves from the selected reservoir."""

    model: Literal["ne1000"]
    address: SerialAddress
    pump_address: Annotated[int, Field(ge=0, le=99)] = 0
    baudrate: Literal[300, 1200, 2400, 9600, 19200] = 9600
    diameter: Annotated[Quantity("mm"), Field(gt=0, le=50)]
    capacity: Annotated[Millilitres, Field(gt=0)] = Field(description="the syringe's volume")
    withdraw_rate: Annotated[MlPerMin, Field(gt=0)] = Field(
        10.0, description="refill rate: slow enough that a viscous solution forms no bubbles")
    inlet_volume: Annotated[Millilitres, Field(gt=0)] = Field(
        description="the selector's rotor and the inlet line up to the syringe's check valve")
    prime_volumes: Annotated[float, Field(ge=1, le=20)] = 3.0  # inlet volumes sprayed to waste after a switch
    margin: Annotated[Millilitres, Field(ge=0)] = 0.5  # left in the syringe at a slot's end
    safe_mode: Annotated[Seconds, Field(ge=1, le=255)] = 10.0

    @property
    def prime(self) -> float:
        return self.prime_volumes * self.inlet_volume


class HplcPumpConfig(Strict):
    """A Teledyne SSI HPLC piston pump drawing through the selector valve, continuously."""

    model: Literal["ssi-hplc"]
    address: SerialAddress
    baudrate: Literal[9600] = 9600
    head_volume: Annotated[Millilitres, Field(ge=0)] = Field(
        description="pump head and pulse damper: part of the line's dead volume")
    max_flow: Annotated[MlPerMin, Field(gt=0)] = Field(description="the pump head's top flow")
    max_pressure: Annotated[Quantity("psi"), Field(gt=0)] = Field(
        description="upper pressure limit: the pump stops above it")
    min_pressure: Annotated[Quantity("psi"), Field(ge=0)] = 0.0
    no_host_watchdog: Literal["accepted"] = Field(description=(
        "this pump has no host watchdog: if quenchlab dies it keeps pumping; write 'accepted' to run it"))


PumpConfig = Annotated[SyringePumpConfig | HplcPumpConfig, Field(discriminator="model")]


class CollectorConfig(Strict):
    """A Zaber XY stage carrying the plate; one of its digital outputs drives the shutter."""

    model: Literal["zaber-ascii"]
    address: SerialAddress
    baudrate: Literal[9600, 19200, 38400, 57600, 115200] = 115200
    device: Annotated[int, Field(ge=1, le=99)] = 1
    microstep: Annotated[Quantity("um"), Field(gt=0)] = Field(description="the stage's microstep size")
    travel: Point = Field(description="the stage's travel in x and y")
    speed: Annotated[Quantity("mm/s"), Field(gt=0)]
    acceleration: Annotated[Quantity("mm/s^2"), Field(gt=0)]
    shutter_output: Annotated[int, Field(ge=1, le=16)] = 1
    move_timeout: Annotated[Seconds, Field(gt=0, le=300)] = 30.0


class FlamePyrometerConfig(PyrometerConfig):
    response_time: Seconds = 0.25


class AerosolInstruments(Strict):
    valve: ValveConfig
    pump: PumpConfig
    collector: CollectorConfig | None = None
    gases: dict[Literal["dispersion", "pilot_fuel", "pilot_oxidizer", "sheath"], FlowControllerConfig]
    filter_gauge: GaugeConfig
    pyrometer: FlamePyrometerConfig


class Reservoir(Strict):
    precursor: str
    volume: Annotated[Millilitres, Field(gt=0)]
    solids: Annotated[float, Field(ge=0, le=1)] = 0.02  # g of solids per mL: a sample's powder
    flame_offset: Annotated[float, Field(ge=-500, le=500)] = 0.0  # K, for the twin's flame model


class LineConfig(Strict):
    dead_volume: Annotated[Millilitres, Field(gt=0)]
    flush_volumes: Annotated[float, Field(ge=1, le=20)] = 4.0
    settle_allowance: Annotated[Seconds, Field(ge=0)] = 20.0
    flame_band: Annotated[Quantity("K"), Field(gt=0)] = 15.0
    flame_window: Annotated[Seconds, Field(gt=0)] = 10.0
    min_flame: Kelvin = 1200.0
    capture: Annotated[float, Field(gt=0, le=1)] = 0.6  # share of the solids that lands on the plate


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
    plate: PlateConfig | None = None
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
        if (self.plate is None) != (self.instruments.collector is None):
            raise ValueError("a plate needs instruments.collector to carry it, and a collector needs a plate: "
                             "give both or neither")
        if self.plate is not None:
            self._plate_fits(self.plate, self.instruments.collector)
        pump = self.instruments.pump
        if pump.model == "ssi-hplc" and self.max_liquid_flow > pump.max_flow:
            raise ValueError(f"max_liquid_flow {self.max_liquid_flow:g} mL/min is above the pump head's max_flow "
                             f"{pump.max_flow:g} mL/min")
        if not self.min_liquid_flow <= self.defaults.liquid_flow <= self.max_liquid_flow:
            raise ValueError(f"defaults.liquid_flow {self.defaults.liquid_flow:g} mL/min is outside the allowed band "
                             f"{self.min_liquid_flow:g}-{self.max_liquid_flow:g} mL/min "
                             "(min_liquid_flow, max_liquid_flow)")
        return self

    @staticmethod
    def _plate_fits(plate: PlateConfig, collector: CollectorConfig) -> None:
        x0, y0, x1, y1 = plate.extent()
        if x0 < 0 or y0 < 0 or x1 > collector.travel[0] or y1 > collector.travel[1]:
            raise ValueError(f"plate {plate.id}: its positions and waste span x {x0:g}-{x1:g} mm, y {y0:g}-{y1:g} mm, "
                             f"beyond the collector's travel of {collector.travel[0]:g} x {collector.travel[1]:g} mm")

    @property
    def dead_volume(self) -> float:
        """mL between the pump and the nozzle the liquid must cross (an HPLC pump's head and
        damper count; a syringe's outlet line only)."""
        return self.line.dead_volume + getattr(self.instruments.pump, "head_volume", 0.0)

    @property
    def simulated(self) -> bool:
        return only_twins(self.listed())

    def listed(self) -> list[Listed]:
        """Valve, pump, collector (if any), gases, filter gauge and pyrometer, in the order the
        line opens them."""
        i = self.instruments
        found = [Listed("valve", i.valve.model, i.valve), Listed("pump", i.pump.model, i.pump)]
        if i.collector:
            found.append(Listed("collector", i.collector.model, i.collector))
        found += [Listed(f"gases.{role}", g.model, g) for role, g in i.gases.items()]
        return found + [Listed("filter_gauge", i.filter_gauge.model, i.filter_gauge),
                        Listed("pyrometer", "impac-upp", i.pyrometer)]


def load_aerosol_config(path: str | Path) -> tuple[AerosolConfig, str]:
    return load(AerosolConfig, path)
