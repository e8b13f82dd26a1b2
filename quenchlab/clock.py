"""The reactor clock: reactor seconds that may run faster than the wall for dry runs."""
import math
import multiprocessing
import os
import threading
import time


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
    every wall millisecond of the pause being stretched into `speed` reactor milliseconds. The clock never runs slower than the
    wall, so a host that stops altogether still meets every timeout (the pump's safe mode, the
    supply's watchdog) as it would on a real reactor.
    """

    def __init__(self, speed: float = 1.0):
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self.speed = float(speed)
        # [version, wall anchor, reactor time at the anchor, fast until]: a seqlock (the version
        # is odd while a writer changes the rest), so readers in any process never take a lock
        self._state = multiprocessing.RawArray("d", [0.0, time.monotonic(), 0.0, math.inf])
        self._writer = threading.Lock()
        self._paced = threading.Condition()  # notified when the pacing changes, or by wake()
        self._pacer = os.getpid()  # the process that paces the clock: only its sleepers are notified

    def _anchors(self) -> tuple[float, float, float]:
        state = self._state
        while True:
            version = state[0]
            wall, reactor, fast_until = state[1:4]
            if version == state[0] and not version % 2:
                return wall, reactor, fast_until

    def _at(self, now: float, anchors: tuple[float, float, float]) -> float:
        wall, reactor, fast_until = anchors
        fast = reactor + (now - wall) * self.speed
        if fast <= fast_until:
            return fast
        return fast_until + (now - wall) - (fast_until - reactor) / self.speed

    def now(self) -> float:
        return self._at(time.monotonic(), self._anchors())

    def run_fast_until(self, limit: float = math.inf) -> None:
        """Run at `speed` up to reactor time `limit` (not before now), at real time after it;
        without a limit, at `speed` for good."""
        with self._writer:
            wall = time.monotonic()
            reactor = self._at(wall, self._anchors())
            state = self._state
            state[0] += 1
            state[1:4] = [wall, reactor, max(limit, reactor)]
            state[0] += 1
        self.wake()

    def wake(self) -> None:
        """Wake this process's sleepers, to look at the clock (and their `stop`) again."""
        with self._paced:
            self._paced.notify_all()

    def _wall_until(self, end: float) -> float:
        """Wall seconds until reactor time `end` (0 once it has passed), should the pacing stay as it is."""
        anchors = self._anchors()
        now = self._at(time.monotonic(), anchors)
        fast_until = anchors[2]
        return max(0.0, min(end, fast_until) - now) / self.speed + max(0.0, end - max(fast_until, now))

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        """Sleep for `seconds` of reactor time; ends early once `stop` is set: at once if
        `wake()` is called after setting it, else within STOP_LATENCY s of wall. In the pacing
        process each wait lasts until the end at the present pacing, or until the pacing
        changes; in another process (a twin), it is the least wall time the rest can take at
        `speed`: either way the sleep never ends late."""
        end = self.now() + seconds
        if os.getpid() != self._pacer:  # a twin's process: no notice of a pacing change reaches it
            while not (stop and stop.is_set()) and (left := end - self.now()) > 0:
                (stop.wait if stop else time.sleep)(left / self.speed)
            return
        with self._paced:
            while not (stop and stop.is_set()) and (wait := self._wall_until(end)) > 0:
                self._paced.wait(min(wait, STOP_LATENCY) if stop else wait)
