"""ophyd device for a VICI selector valve: `set(port)` finishes only once the actuator reports
the port, and fails with the driver's InstrumentError if it never does (stuck valve)."""
from ophyd import Component as Cpt
from ophyd import Kind
from ophyd.status import Status

from .driver_device import DriverDevice, DriverSignal, run_in_thread
from .vici_driver import ViciValve


class SelectorValve(DriverDevice):
    driver: ViciValve

    port = Cpt(DriverSignal, read="position", kind=Kind.hinted)  # `position` is reserved by bluesky
    positions = Cpt(DriverSignal, read="positions", kind=Kind.config)
    firmware = Cpt(DriverSignal, read="firmware", kind=Kind.config)

    def __init__(self, driver: ViciValve, *, name: str, move_timeout: float = 10.0, **kwargs):
        self.move_timeout = move_timeout  # wall seconds
        super().__init__(driver, name=name, **kwargs)

    def set(self, port: int) -> Status:
        def work():
            self.driver.move(int(port), timeout=self.move_timeout)
            self.port.refresh()

        return run_in_thread(self, work)
