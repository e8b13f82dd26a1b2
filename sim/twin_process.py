"""Twins in a child process, sharing the host's reactor clock (CLOCK_MONOTONIC is system-wide).

Dry runs far faster than real time need the twins off the host's interpreter lock: host and
twins then each have a core, and the host cannot tell (the twins are behind the same
pseudo-terminals and sockets either way).
"""
import multiprocessing
import os

from quenchlab.clock import ReactorClock


def _serve(factory, config, speed: float, origin: float, pipe, stop, parent: int) -> None:
    """Serve until told to stop, or until the host is gone (even killed with SIGKILL)."""
    with factory(config, ReactorClock(speed, origin)) as twins:
        pipe.send(twins.addresses)
        while not stop.wait(0.2) and os.getppid() == parent:
            pass


class TwinProcess:
    """Runs `factory(config, clock)` (e.g. AerosolTwins) in a child process until closed."""

    def __init__(self, factory, config, clock: ReactorClock):
        context = multiprocessing.get_context("fork")
        parent, child = context.Pipe()
        self._stop = context.Event()
        self._process = context.Process(target=_serve, args=(factory, config, clock.speed, clock.origin, child,
                                                             self._stop, os.getpid()), daemon=True, name="quenchlab-twins")
        self._process.start()
        if not parent.poll(30):
            self.close()
            raise RuntimeError("the twins did not start within 30 s")
        self.addresses: dict[str, str] = parent.recv()

    def close(self) -> None:
        self._stop.set()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
