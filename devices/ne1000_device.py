"""ophyd device for a New Era NE-1000 syringe pump: rate, status, dispensed volume, syringe."""
from ophyd import Component as Cpt
from ophyd import Kind, Signal

from .driver_device import DriverDevice, DriverSignal
from .ne1000_driver import NE1000, RUNNING


class SyringePump(DriverDevice):
    """`rate.set(mL/min)` changes the rate (at once, even while pumping); `stop()` and
    `unstage()` stop the pump."""

    driver: NE1000

    rate = Cpt(DriverSignal, read="rate", write="set_rate", kind=Kind.normal, units="mL/min")
    status = Cpt(DriverSignal, read="status", kind=Kind.normal)
    running = Cpt(Signal, value=False, kind=Kind.normal)
    infused = Cpt(Signal, value=0.0, kind=Kind.hinted)
    withdrawn = Cpt(Signal, value=0.0, kind=Kind.normal)
    diameter = Cpt(DriverSignal, read="diameter", write="set_diameter", kind=Kind.config, units="mm")
    version = Cpt(DriverSignal, read="version", kind=Kind.config)

    def refresh(self, kinds) -> None:
        super().refresh(kinds)
        if kinds & Kind.normal:
            self.running.put(self.status.get() in RUNNING)
        if kinds & Kind.hinted:
            infused, withdrawn = self.driver.dispensed()
            self.infused.put(infused)
            self.withdrawn.put(withdrawn)

    def describe(self):
        description = super().describe()
        for signal in (self.infused, self.withdrawn):
            description[signal.name]["units"] = "mL"
        return description

    def stop(self, *, success: bool = False) -> None:
        self.driver.stop()

    def unstage(self):
        self.driver.stop()
        return super().unstage()
