"""An interlock that watches the reactor in its own thread, apart from the plan and the
RunEngine's loop.

Each watched quantity has a band. A reading outside a recoverable band (a flame flicker, a
brief flow dip) raises `suspend`, a signal a bluesky suspender watches: the plan waits and
resumes when the band is met again. A reading outside any other band, or over range, trips:
the line is put in its safe state at once (from this thread), the trip is kept (what, when,
value) and the run is interrupted; whoever runs it records the trip as the run's reason.

The interlock polls its own readings (`read`) every `period` of reactor time, and may also be
told readings someone else takes (`observe`: the process logger's rows, as each is read), so
that a line logged at 1 Hz is not read twice, nor the interlock woken at every row for nothing.
While the one who tells it paces the clock (the process logger lets a dry run's clock run
ahead as it reads each row), the interlock is not woken to keep up with that clock: it then
looks every `period` of wall time at most (ReactorClock.sleep, keep_up=False). Its own reading
there is the age of the logger's rows, fresh while they keep coming; a logger that stops
leaves the clock at real time, and the interlock looks every `period` of reactor time again.
"""
import math
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from bluesky import RunEngine
from bluesky.run_engine import TransitionError
from bluesky.suspenders import SuspendBoolHigh
from ophyd import Signal

from quenchlab.clock import ReactorClock
from quenchlab.plans.stubs import reactor_sleep


@dataclass(frozen=True)
class Watch:
    name: str
    low: float | None = None
    high: float | None = None
    recoverable: bool = False
    units: str = ""

    def outside(self, value: float) -> bool:
        """NaN (no reading, e.g. a pyrometer under range) is outside only a lower bound."""
        if math.isnan(value):
            return self.low is not None
        return (self.low is not None and value < self.low) or (self.high is not None and value > self.high)


@dataclass(frozen=True)
class Trip:
    """A watched value out of its band, or (value None) a reading that failed, and why (`cause`:
    the error the reading met)."""
    what: str
    value: float | None
    why: str
    reactor_time: float
    cause: BaseException | None = None

    def __str__(self) -> str:
        at = f"at reactor time {self.reactor_time:.1f} s"
        if self.value is None:
            return f"interlock: {self.what} {at}: {self.why}"
        return f"interlock: {self.what} = {self.value:.4g} ({self.why}) {at}"


class Interlock:
    """Reads `read()` every `period` s of reactor time, is told other readings by `observe`,
    and acts on `watches` (each looked at in whichever readings hold it)."""

    def __init__(self, read: Callable[[], dict[str, float]], watches: list[Watch], clock: ReactorClock,
                 safe: Callable[[], list[str]], period: float = 0.05):
        self.read, self.watches, self.clock, self.safe, self.period = read, watches, clock, safe, period
        self.suspend = Signal(name="interlock_suspend", value=0)
        self.trips: list[Trip] = []
        self.engine: RunEngine | None = None
        self._outside: set[str] = set()  # recoverable watches out of their band in their last reading
        self._told: Trip | None = None  # a trip `observe` found, for the interlock's thread to act on
        self._look = threading.Event()  # set to end the thread's sleep at once (a trip told, a suspend, halt)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, engine: RunEngine, resume_after: float) -> None:
        """Interrupt `engine` on a trip; suspend it while a recoverable band is not met, and
        resume `resume_after` s of reactor time after it is met again."""
        self.engine = engine
        engine.install_suspender(SuspendBoolHigh(self.suspend,
                                                 post_plan=lambda: reactor_sleep(self.clock, resume_after)))

    def start(self) -> None:
        """Watch afresh: earlier trips and out-of-band readings are forgotten (a library starts
        it again for the next sample once the line is prepared again)."""
        self.trips, self._told = [], None
        self._outside.clear()
        self._suspend_as_judged()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name="interlock")
        self._thread.start()

    def halt(self) -> None:
        self._stop.set()
        self._look.set()  # out of its sleep at once
        if self._thread:
            self._thread.join()

    def observe(self, values: dict[str, float]) -> None:
        """Readings taken elsewhere, judged at once in the caller's thread; the interlock's
        thread is woken only to act (a trip, or a suspend to raise or lower): acting may stop
        the caller (the safe state halts the process logger) or wait on the RunEngine's loop.
        Ignored unless the interlock is running."""
        if self._thread is None or self._stop.is_set():
            return
        trip = self._judge(values)
        if trip:
            self._tell(trip)
        elif self.suspend.get() != bool(self._outside):
            self._look.set()

    def fail(self, error: BaseException) -> None:
        """A reading taken elsewhere failed (an instrument stopped answering): a trip."""
        if self._thread is not None and not self._stop.is_set():
            self._tell(Trip("reading failed", None, str(error), self.clock.now(), error))

    def _tell(self, trip: Trip) -> None:
        self._told = self._told or trip
        self._look.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._look.clear()
            try:
                values = self.read()
            except Exception as error:  # an instrument that stops answering is a trip too
                self._told = self._told or Trip("reading failed", None, str(error), self.clock.now(), error)
            if self._told:
                self._trip(self._told)
                return
            self.check(values)
            if self.trips:
                return
            self.clock.sleep(self.period, self._look, keep_up=False)  # told rows pace the clock: fresh while they come

    def check(self, values: dict[str, float]) -> None:
        """Judge `values` and act on them here: trip, or raise or lower the suspend."""
        trip = self._judge(values)
        if trip:
            self._trip(trip)
        else:
            self._suspend_as_judged()

    def _judge(self, values: dict[str, float]) -> Trip | None:
        """The trip `values` call for, if any; else they update which recoverable watches are
        out of their band (each as of the last reading that held it)."""
        for watch in self.watches:
            value = values.get(watch.name)
            if value is None:
                continue
            outside = watch.outside(value)
            if watch.recoverable:
                (self._outside.add if outside else self._outside.discard)(watch.name)
            elif outside:
                low = watch.low is not None and (math.isnan(value) or value < watch.low)
                bound = watch.low if low else watch.high
                side = "below" if low else "above"
                return Trip(watch.name, value, f"{side} its limit of {bound:g} {watch.units}".strip(),
                            self.clock.now())
        return None

    def _suspend_as_judged(self) -> None:
        """The suspend raised while a recoverable watch is out of its band, lowered when none is."""
        wanted = int(bool(self._outside))
        if self.suspend.get() != wanted:
            self.suspend.put(wanted)

    def _trip(self, trip: Trip) -> None:
        self.trips.append(trip)
        self.safe()
        if self.engine is not None and not self.engine.loop.is_closed():  # closed: the engine's block is over
            with suppress(TransitionError):  # the run already ended (an action failed first): nothing to stop
                self.engine.request_pause(defer=False)
