"""ophyd device for the sample collector: a filter plate on a Zaber XY stage (axis 1 = x,
axis 2 = y) under the exhaust, and a shutter on one of the controller's digital outputs.

`set((x_mm, y_mm))`, or `set(name)` of a configured position, closes the shutter (unless it
reads closed), moves both axes (unless they already read the target) and finishes once they
are idle and read back the target within a microstep; it fails with the driver's
InstrumentError on a stall, a move before homing or a timeout, and after a stop() unless the
stop was a successful one (a suspension's). The shutter stays closed: the
plan opens it to collect ("Samples must be kept apart", domain.md).
`microstep_um` (from the config: the stage model's microstep size) converts mm <-> microsteps.
"""
import threading
from dataclasses import dataclass

from ophyd import Component as Cpt
from ophyd import Kind
from ophyd.status import Status

from quenchlab.errors import InstrumentError

from .driver_device import DriverDevice, DriverSignal, UnitSignal, run_in_thread
from .zaber_driver import ZaberStage

AXES = (1, 2)  # x, y


class ShutterSignal(DriverSignal):
    """Open (True) or closed (False): the shutter's digital output, as it reads back."""

    def refresh(self) -> None:
        UnitSignal.put(self, self.parent.driver.output(self.parent.shutter_output), force=True)

    def put(self, value, **kwargs):
        self.parent.driver.set_output(self.parent.shutter_output, bool(value))  # confirmed by reading back
        UnitSignal.put(self, bool(value), force=True)


@dataclass
class _Move:
    """One set(): whether a stop() ended it, and with what `success` (None: not stopped)."""

    stopped: bool | None = None


class Collector(DriverDevice):
    driver: ZaberStage

    x = Cpt(UnitSignal, value=0.0, kind=Kind.hinted, units="mm")
    y = Cpt(UnitSignal, value=0.0, kind=Kind.hinted, units="mm")
    shutter = Cpt(ShutterSignal, read="output", kind=Kind.normal)
    travel_x = Cpt(UnitSignal, value=0.0, kind=Kind.config, units="mm")
    travel_y = Cpt(UnitSignal, value=0.0, kind=Kind.config, units="mm")

    def __init__(self, driver: ZaberStage, *, name: str, microstep_um: float, shutter_output: int = 1,
                 positions: dict[str, tuple[float, float]] | None = None, move_timeout: float = 60.0, **kwargs):
        self.microstep_um, self.shutter_output = microstep_um, shutter_output
        self.positions = dict(positions or {})
        self.move_timeout = move_timeout  # wall seconds
        self._motion, self._move = threading.Lock(), _Move()
        super().__init__(driver, name=name, **kwargs)

    def to_steps(self, mm: float) -> int:
        return round(mm * 1000 / self.microstep_um)

    def to_mm(self, steps: int) -> float:
        return steps * self.microstep_um / 1000

    def refresh(self, kinds) -> None:
        super().refresh(kinds)
        if kinds & Kind.hinted:
            for signal, steps in zip((self.x, self.y), self.driver.positions()):
                signal.put(self.to_mm(steps))
        if kinds & Kind.config:
            for signal, axis in zip((self.travel_x, self.travel_y), AXES):
                signal.put(self.to_mm(self.driver.travel(axis)))

    def _target(self, target) -> tuple[int, int]:
        if isinstance(target, str):
            if target not in self.positions:
                raise ValueError(f"{self.name}: no position {target!r}; known: {', '.join(self.positions)}")
            target = self.positions[target]
        for label, mm, travel in zip("xy", target, (self.travel_x.get(), self.travel_y.get()), strict=True):
            if not 0 <= mm <= travel:
                raise ValueError(f"{self.name}: {label} = {mm} mm is outside the travel 0-{travel:g} mm")
        return self.to_steps(target[0]), self.to_steps(target[1])

    def set(self, target) -> Status:
        steps = self._target(target)
        move = self._move = _Move()

        def away(reached):  # more than a microstep from the target
            return any(abs(at - goal) > 1 for at, goal in zip(reached, steps))

        def work():
            self.shutter.refresh()
            if self.shutter.get():  # closed, and read back, before anything moves
                self.shutter.put(False)
            reached = self.driver.positions()
            with self._motion:  # a stop() comes before the move commands, or after them
                moving = away(reached) and move.stopped is None
                if moving:
                    for axis, goal in zip(AXES, steps):
                        self.driver.move_absolute(axis, goal)
            if moving:
                self.driver.wait_idle(timeout=self.move_timeout)
                reached = self.driver.positions()
            for signal, at in zip((self.x, self.y), reached):
                signal.put(self.to_mm(at))
            if away(reached) and not move.stopped:
                problem = "stopped on request" if move.stopped is False else "stopped"
                raise InstrumentError(self.driver.name, self.driver.address, "get pos",
                                      f"{problem} at {reached} microsteps, not at the target {steps}")

        return run_in_thread(self, work)

    def stop(self, *, success: bool = False) -> None:
        """Stop both axes; the move under way ends short of its target, and its status fails unless
        `success` (a RunEngine suspending stops what it moved so, and moves it again on resuming)."""
        with self._motion:
            self._move.stopped = success
        self.driver.stop()
