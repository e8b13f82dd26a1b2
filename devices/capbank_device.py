"""ophyd device for a capacitor-bank FJH supply (docs/capbank-protocol.md).

`charge()` and `fire(ms)` return Status objects that finish once the controller reports
CHARGED, and IDLE after the shot (they fail on FAULT). Staging dumps the bank and waits for
IDLE; unstaging and stop dump it. A charged bank must be read more often than the
controller's watchdog time (section 6), or it dumps by itself.
"""
from ophyd import Component as Cpt
from ophyd import Kind, Signal
from ophyd.status import Status

from .capbank_driver import CapBank
from .driver_device import DriverSignal, SupplyDevice, run_in_thread


class CapBankSupply(SupplyDevice):
    driver: CapBank

    voltage = Cpt(DriverSignal, read="voltage_setting", write="set_voltage", units="V")
    bank_voltage = Cpt(DriverSignal, read="bank_voltage", kind=Kind.hinted, units="V")
    state = Cpt(DriverSignal, read="state", kind=Kind.normal)
    shots = Cpt(DriverSignal, read="shots", kind=Kind.normal)
    faults = Cpt(Signal, value="", kind=Kind.normal)
    identity = Cpt(DriverSignal, read="identify", kind=Kind.config)
    capacitance = Cpt(DriverSignal, read="rating", key="capacitance", kind=Kind.config, units="F")
    max_voltage = Cpt(DriverSignal, read="rating", key="max_voltage", kind=Kind.config, units="V")
    safe_voltage = Cpt(DriverSignal, read="rating", key="safe_voltage", kind=Kind.config, units="V")
    watchdog = Cpt(DriverSignal, read="watchdog", write="set_watchdog", kind=Kind.config, units="s")

    def __init__(self, driver: CapBank, *, name: str, timeout: float = 60.0, **kwargs):
        self.timeout = timeout  # wall seconds a charge, a dump or a shot may take
        super().__init__(driver, name=name, **kwargs)

    def refresh(self, kinds) -> None:
        super().refresh(kinds)
        if kinds & Kind.normal:
            self.faults.put(",".join(self.driver.faults()))

    def charge(self) -> Status:
        def work():
            self.driver.charge()
            self.driver.wait_for("CHARGED", timeout=self.timeout)
            self.refresh(Kind.normal | Kind.hinted)

        return run_in_thread(self, work)

    def fire(self, milliseconds: int) -> Status:
        def work():
            self.driver.arm()
            self.driver.fire(milliseconds)
            self.driver.wait_for("IDLE", timeout=self.timeout)
            self.refresh(Kind.normal | Kind.hinted)

        return run_in_thread(self, work)

    def make_safe(self) -> None:
        self.driver.dump()

    def stage(self):
        staged = super().stage()  # dumps the bank
        self.driver.wait_for("IDLE", timeout=self.timeout)
        return staged
