"""ophyd devices for Alicat units: a mass flow controller and a pressure gauge.

Every trigger polls the unit once and refreshes all its readbacks from that one data frame.
"""
from ophyd import Component as Cpt
from ophyd import Kind, Signal

from .alicat_driver import DIFFERENTIAL_PRESSURE, FLOW_UNIT, AlicatUnit, DataFrame
from .driver_device import DriverDevice, DriverSignal, run_in_thread

# The engineering units our controllers are ordered with (the data frame carries none).
CONTROLLER_UNITS = {"setpoint": FLOW_UNIT, "mass_flow": FLOW_UNIT, "full_scale": FLOW_UNIT,
                    "pressure": "PSIA", "temperature": "degC"}


class FrameSignal(Signal):
    """A value shown from the latest data frame; put() sends `parent.driver.<write>(value)`,
    whose answer is a data frame, so set() finishes once the unit has echoed the value."""

    def __init__(self, *, write: str, **kwargs):
        super().__init__(**kwargs)
        self._write_name = write

    def show(self, value) -> None:
        super().put(value, force=True)

    def put(self, value, **kwargs):
        self.parent.show(getattr(self.parent.driver, self._write_name)(value))

    def set(self, value, **kwargs):
        return run_in_thread(self, lambda: self.put(value))


class MassFlowController(DriverDevice):
    driver: AlicatUnit

    setpoint = Cpt(FrameSignal, write="set_setpoint", value=0.0, kind=Kind.normal)
    mass_flow = Cpt(Signal, value=0.0, kind=Kind.hinted)
    pressure = Cpt(Signal, value=0.0, kind=Kind.normal)
    temperature = Cpt(Signal, value=0.0, kind=Kind.normal)
    status = Cpt(Signal, value="", kind=Kind.normal)
    gas = Cpt(FrameSignal, write="set_gas", value="", kind=Kind.config)
    full_scale = Cpt(Signal, value=0.0, kind=Kind.config)
    firmware = Cpt(DriverSignal, read="firmware", kind=Kind.config)

    def refresh(self, kinds) -> None:
        super().refresh(kinds)
        if kinds & Kind.config:
            self.full_scale.put(self.driver.flow_full_scale())
        if kinds & (Kind.normal | Kind.hinted):
            self.show(self.driver.poll())

    def show(self, frame: DataFrame) -> None:
        self.setpoint.show(frame.setpoint)
        self.mass_flow.put(frame.mass_flow)
        self.pressure.put(frame.pressure)
        self.temperature.put(frame.temperature)
        self.status.put(" ".join(frame.status))
        self.gas.show(frame.gas)

    def describe(self):
        return _with_units(super().describe(), self, CONTROLLER_UNITS)

    def describe_configuration(self):
        return _with_units(super().describe_configuration(), self, CONTROLLER_UNITS)


class PressureGauge(DriverDevice):
    """A gauge reading `statistic` (by default a differential pressure) in its own unit."""

    driver: AlicatUnit

    pressure = Cpt(Signal, value=0.0, kind=Kind.hinted)
    status = Cpt(Signal, value="", kind=Kind.normal)
    full_scale = Cpt(Signal, value=0.0, kind=Kind.config)
    firmware = Cpt(DriverSignal, read="firmware", kind=Kind.config)

    def __init__(self, driver: AlicatUnit, *, name: str, statistic: int = DIFFERENTIAL_PRESSURE, **kwargs):
        self.statistic = statistic
        self.unit = ""
        super().__init__(driver, name=name, **kwargs)

    def refresh(self, kinds) -> None:
        super().refresh(kinds)
        if kinds & Kind.config:
            full_scale, self.unit = self.driver.full_scale(self.statistic)
            self.full_scale.put(full_scale)
        if kinds & (Kind.normal | Kind.hinted):
            frame = self.driver.poll()
            self.pressure.put(frame.pressure)
            self.status.put(" ".join(frame.status))

    def describe(self):
        return _with_units(super().describe(), self, {"pressure": self.unit})

    def describe_configuration(self):
        return _with_units(super().describe_configuration(), self, {"full_scale": self.unit})


def _with_units(description: dict, device, units: dict[str, str]) -> dict:
    for attr, unit in units.items():
        key = getattr(device, attr).name
        if key in description:
            description[key]["units"] = unit
    return description
