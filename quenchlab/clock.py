"""The reactor clock: reactor seconds that may run faster than the wall for dry runs."""
import threading
import time


class ReactorClock:
    """Reactor time in seconds since the clock started, `speed` times faster than the wall.

    A real reactor always runs at speed 1; twins of one reactor share one clock so that
    their physics and their timers agree.
    """

    def __init__(self, speed: float = 1.0, origin: float | None = None):
        """`origin` is the time.monotonic() at reactor time 0; processes that share it (the
        host and its twins) share the clock, as CLOCK_MONOTONIC is system-wide."""
        if speed <= 0:
            raise ValueError(f"clock speed must be positive, got {speed}")
        self.speed = float(speed)
        self.origin = time.monotonic() if origin is None else origin

    def now(self) -> float:
        return (time.monotonic() - self.origin) * self.speed

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> None:
        """Sleep for `seconds` of reactor time (wakes early when `stop` is set)."""
        wall = max(0.0, seconds) / self.speed
        if stop is None:
            time.sleep(wall)
        else:
            stop.wait(wall)
