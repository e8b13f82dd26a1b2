"""ophyd device for a Teledyne SSI HPLC piston pump: flow, running state, head pressure."""
from ophyd import Component as Cpt
from ophyd import Kind

from .driver_device import DriverDevice, DriverSignal, run_in_thread
from .ssi_driver import SsiPump


class HplcPump(DriverDevice):
    """`rate.set(mL/min)` (or `bps.mv`) sets the flow, confirmed by reading CS back; `spray.set(mL/min)`
    sets it and runs (0 stops); `trigger()` fails if a fault is latched; `stop()` and `unstage()`
    stop the pump (it has no watchdog of its own)."""

    driver: SsiPump

    rate = Cpt(DriverSignal, read="flow", write="set_flow", kind=Kind.normal, units="mL/min")
    spray = Cpt(DriverSignal, read="flow", write="spray", kind=Kind.omitted, units="mL/min")
    running = Cpt(DriverSignal, read="running", kind=Kind.normal)
    pressure = Cpt(DriverSignal, read="pressure", kind=Kind.hinted, units="psi")
    firmware = Cpt(DriverSignal, read="identify", kind=Kind.config)

    def trigger(self):
        """Read the pump, failing (PumpFault) if a fault is latched."""
        def read_and_check():
            self.driver.check()
            self.refresh(Kind.normal | Kind.hinted)
        return run_in_thread(self, read_and_check)

    def stop(self, *, success: bool = False) -> None:
        self.driver.stop()

    def unstage(self):
        self.driver.stop()
        return super().unstage()
