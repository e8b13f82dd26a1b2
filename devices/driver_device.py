"""The ophyd side shared by every instrument: signals backed by a driver, read from a cache.

`trigger()` does the instrument I/O in a thread and `read()` serves the cached values, so
the RunEngine's loop never waits on a serial line (design.md).
"""
import threading

from ophyd import Device, Kind, Signal
from ophyd.status import DeviceStatus, Status


class UnitSignal(Signal):
    """A Signal whose description carries its units."""

    def __init__(self, *, units: str = "", **kwargs):
        super().__init__(**kwargs)
        self._units = units

    def describe(self):
        description = super().describe()
        if self._units:
            description[self.name]["units"] = self._units
        return description


class DriverSignal(UnitSignal):
    """A value read with `parent.driver.<read>()` (item `key` of it, if given) and, if
    `write` is given, set with `parent.driver.<write>(value)`."""

    def __init__(self, *, read: str, key: str | None = None, write: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self._read_name, self._key, self._write_name = read, key, write

    def refresh(self) -> None:
        value = getattr(self.parent.driver, self._read_name)()
        super().put(value if self._key is None else value[self._key], force=True)

    def put(self, value, **kwargs):
        if self._write_name is None:
            raise PermissionError(f"{self.name} is read-only")
        getattr(self.parent.driver, self._write_name)(value)
        self.refresh()

    def set(self, value, **kwargs) -> Status:
        return run_in_thread(self, lambda: self.put(value))


def run_in_thread(obj, work) -> Status:
    """Run `work` in a thread; the Status finishes with it, or fails with its exception."""
    status = DeviceStatus(obj) if isinstance(obj, Device) else Status(obj)

    def target():
        try:
            work()
        except Exception as error:  # reported through the Status to the RunEngine
            status.set_exception(error)
        else:
            status.set_finished()

    threading.Thread(target=target, daemon=True, name=f"{getattr(obj, 'name', 'device')}-io").start()
    return status


class DriverDevice(Device):
    """A device whose `DriverSignal` components are refreshed together on trigger."""

    def __init__(self, driver, *, name: str, **kwargs):
        self.driver = driver
        super().__init__(name=name, **kwargs)
        self.refresh(Kind.config | Kind.normal | Kind.hinted)

    def _driver_signals(self, kinds):
        for walk in self.walk_signals():
            signal = walk.item
            if isinstance(signal, DriverSignal) and signal.kind & kinds:
                yield signal

    def refresh(self, kinds) -> None:
        for signal in self._driver_signals(kinds):
            signal.refresh()

    def trigger(self) -> Status:
        return run_in_thread(self, lambda: self.refresh(Kind.normal | Kind.hinted))


class SupplyDevice(DriverDevice):
    """A supply: staging, unstaging and stop all make it safe (by default: output off)."""

    def make_safe(self) -> None:
        self.driver.output_off()

    def stage(self):
        self.make_safe()
        return super().stage()

    def unstage(self):
        self.make_safe()
        return super().unstage()

    def stop(self, *, success: bool = False) -> None:
        self.make_safe()
