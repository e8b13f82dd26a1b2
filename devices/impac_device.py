"""ophyd device for an IMPAC pyrometer: temperature in kelvin (NaN out of range) and its flag."""
from ophyd import Component as Cpt
from ophyd import Kind, Signal

from .driver_device import DriverDevice, DriverSignal
from .impac_driver import Impac


class ImpacPyrometer(DriverDevice):
    driver: Impac

    temperature = Cpt(Signal, value=float("nan"), kind=Kind.hinted)
    range_flag = Cpt(Signal, value="", kind=Kind.normal)
    emissivity = Cpt(DriverSignal, read="emissivity", write="set_emissivity", kind=Kind.config)
    response_time = Cpt(DriverSignal, read="response_time", kind=Kind.config, units="s")
    measuring_range = Cpt(DriverSignal, read="measuring_range", kind=Kind.config, units="K")
    identity = Cpt(DriverSignal, read="identify", kind=Kind.config)

    def refresh(self, kinds) -> None:
        super().refresh(kinds)
        if kinds & Kind.hinted:
            reading = self.driver.temperature()
            self.temperature.put(reading.kelvin)
            self.range_flag.put(reading.flag)

    def describe(self):
        description = super().describe()
        description[self.temperature.name]["units"] = "K"
        return description
