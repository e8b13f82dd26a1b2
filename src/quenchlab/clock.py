"""The reactor clock: reactor seconds that may run faster than the wall for dry runs."""
import asyncio
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, suppress

STOP_LATENCY = 0.1  # s of wall: the longest a sleep goes on after its stop event is set, unwoken


class ReactorClock:
    """Reactor time in seconds since the clock started, up to `speed` times faster than the wall.

    A real reactor always runs at speed 1; twins of one reactor share one clock so that their
    physics and their timers agree. The clock lives in shared memory: a child process forked
    with it (the twins of a dry run) reads the very same time.

    Pacing: `run_fast_until(t)` lets the clock run at `speed` only up to reactor time `t`, and
    at real time beyond it until the next call. The process logger lets it run to the next
    row's time as it reads each row, so a host that falls behind (an interpreter pause, a busy
    core) finds the reactor waiting for it no longer than a real reactor would, instead of
    every wall millisecond of the pause being stretched into `speed` reactor milliseconds.
    The clock never runs slower than the wall, so a host that stops altogether still meets
    every timeout (the pump's safe mode, the supply's watchdog) as it would on a real reactor.

    `hold()` keeps the clock at real time, whatever the pacer asks, until `release()`: a plan
    holds it while nothing in the reactor needs time to pass (between two samples, while one
    record is closed and the next opened), which then takes the reactor time it takes on the
    wall, as on a real reactor.
    """

    def __init__(self, speed: float = 1.0):
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self.speed = float(speed)
        # [version, wall anchor, reactor time at the anchor, fast until]: a seqlock (the version
        # is odd while a writer changes the rest), so readers in any process never take a lock
        self._state = multiprocessing.RawArray("d", [0.0, time.monotonic(), 0.0, math.inf])
        self._writer = threading.Lock()
        self._requested, self._held = math.inf, False  # the pacer's last limit; whether it is held back
        self._waiters: dict[object, tuple[float, Callable[[], None]]] = {}  # this process's sleepers: end, wake
        self._pacer = os.getpid()  # the process that paces the clock: only its sleepers are notified

    def _read(self) -> tuple[float, tuple[float, float, float]]:
        """The wall time now and the anchors in force at it. The wall is read inside the
        seqlock's window, and a writer reads its own inside its (odd) one: a reader preempted
        between the two reads would otherwise pair a wall time from before a change of pacing
        with the anchors after it, and its reactor time would run backwards by the preemption
        times the speed (a twin would answer from before a command it had just taken)."""
        state = self._state
        while True:
            version = state[0]
            wall, reactor, fast_until = state[1:4]
            now = time.monotonic()
            if version == state[0] and not version % 2:
                return now, (wall, reactor, fast_until)

    def _at(self, now: float, anchors: tuple[float, float, float]) -> float:
        wall, reactor, fast_until = anchors
        fast = reactor + (now - wall) * self.speed
        if fast <= fast_until:
            return fast
        return fast_until + (now - wall) - (fast_until - reactor) / self.speed

    def now(self) -> float:
        return self._at(*self._read())

    def run_fast_until(self, limit: float = math.inf) -> None:
        """Run at `speed` up to reactor time `limit` (not before now), at real time after it;
        without a limit, at `speed` for good. While the clock is held, only from its release."""
        self._pace(requested=limit)

    def hold(self) -> None:
        """Run at real time until `release()`."""
        self._pace(held=True)

    def release(self) -> None:
        """Run as the pacer last asked (`run_fast_until`) again."""
        self._pace(held=False)

    @contextmanager
    def held(self):
        """Run at real time within the block, released however it ends."""
        self.hold()
        try:
            yield
        finally:
            self.release()

    def _pace(self, requested: float | None = None, held: bool | None = None) -> None:
        with self._writer:
            self._requested = self._requested if requested is None else requested
            self._held = self._held if held is None else held
            state = self._state
            state[0] += 1  # odd: readers wait for the new anchors
            try:
                wall = time.monotonic()
                reactor = self._at(wall, tuple(state[1:4]))
                old, new = state[3], reactor if self._held else max(self._requested, reactor)
                state[1:4] = [wall, reactor, new]
            finally:
                state[0] += 1
            # A sleeper waits for the wall time its end takes at the pacing it last saw: too long once
            # the fast stretch has grown. It is woken when its end comes within the stretch (its wait is
            # exact from then on), and when the stretch stops growing short of its end (it ends now, or
            # shrinks); not at each row's extension, which a later one brings to its end.
            woken = [wake for end, wake in self._waiters.values()
                     if old < end <= new or (new < end and (new <= reactor or new < old))]
        for wake in woken:
            wake()

    def wake(self) -> None:
        """Wake this process's sleepers, to look at the clock (and their `stop`) again."""
        with self._writer:
            woken = [wake for _, wake in self._waiters.values()]
        for wake in woken:
            wake()

    @contextmanager
    def _waiting(self, end: float, wake: Callable[[], None]):
        """`wake` registered as a sleeper until reactor time `end` (see run_fast_until)."""
        key = object()
        with self._writer:
            self._waiters[key] = (end, wake)
        try:
            yield
        finally:
            with self._writer:
                del self._waiters[key]

    def _wall_until(self, end: float) -> float:
        """Wall seconds until reactor time `end` (0 once it has passed), should the pacing stay as it is."""
        wall, anchors = self._read()
        now, fast_until = self._at(wall, anchors), anchors[2]
        return max(0.0, min(end, fast_until) - now) / self.speed + max(0.0, end - max(fast_until, now))

    def sleep(self, seconds: float, stop: threading.Event | None = None, keep_up: bool = True) -> None:
        """Sleep for `seconds` of reactor time (see sleep_until)."""
        self.sleep_until(self.now() + seconds, stop, keep_up)

    def sleep_until(self, end: float, stop: threading.Event | None = None, keep_up: bool = True) -> None:
        """Sleep until reactor time `end`; ends early once `stop` is set: at once if `wake()`
        is called after setting it, else within STOP_LATENCY s of wall. In the pacing process
        each wait lasts until the end at the present pacing, or until a change of pacing wakes
        it (see run_fast_until); in another process (a twin), it is the least wall time the
        rest can take at `speed`: either way the sleep never ends late.

        `keep_up=False`: a sleep the pacer does not wake as it lets the clock run further ahead.
        While the pacer keeps doing so, it ends late in reactor time (after at most its length
        in wall time); while the clock runs at real time, it ends on time. For a watch on the
        pacer itself (the interlock's stale-data check): its rows are fresh while they come,
        and a logger that stops leaves the clock at real time. Ends at once when `stop` is set."""
        if os.getpid() != self._pacer:  # a twin's process: no notice of a pacing change reaches it
            return self._sleep_unwoken(stop, lambda: (end - self.now()) / self.speed)
        if not keep_up:
            return self._sleep_unwoken(stop, lambda: self._wall_until(end))
        if self._wall_until(end) <= 0:  # already there (a logger behind a fast clock): nothing to wait on
            return
        woken = threading.Event()
        with self._waiting(end, woken.set):
            while not (stop and stop.is_set()) and (wait := self._wall_until(end)) > 0:
                woken.wait(min(wait, STOP_LATENCY) if stop else wait)
                woken.clear()

    @staticmethod
    def _sleep_unwoken(stop: threading.Event | None, wall_left: Callable[[], float]) -> None:
        """Sleep `wall_left()` wall seconds at a time until none is left, or `stop` is set."""
        while not (stop and stop.is_set()) and (wait := wall_left()) > 0:
            (stop.wait if stop else time.sleep)(wait)

    async def until(self, end: float) -> None:
        """Wait in this process's asyncio loop (the RunEngine's, for a plan's `wait_for`) until
        reactor time `end`: one wait, woken as `sleep` is, not a wall-time sleep repeated as
        long as a paced clock lags behind `speed`."""
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake() -> None:
            with suppress(RuntimeError):  # the loop closed while the wait was being cancelled
                loop.call_soon_threadsafe(woken.set)
        with self._waiting(end, wake):
            while (wait := self._wall_until(end)) > 0:
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(woken.wait(), wait)
                woken.clear()
