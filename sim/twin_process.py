"""Twins in a child process, sharing the host's reactor clock (it lives in shared memory).

Dry runs far faster than real time need the twins off the host's interpreter lock: host and
twins then each have a core, and the host cannot tell (the twins are behind the same
pseudo-terminals and sockets either way).

The instruments are not the terminal's: the child runs in a session of its own, so a Ctrl-C
typed in the terminal (the terminal signals its whole foreground process group) or a signal
sent to quenchlab's process group reaches the host alone, which then brings the line to its
safe state and reads it back from the twins before it stops them. SIGINT and SIGTERM are
blocked across the fork, so none can reach the child before it has left the group.
"""
import multiprocessing
import os
import signal
import time

from quenchlab.clock import ReactorClock

STOPPING = {signal.SIGINT, signal.SIGTERM}


def _serve(factory, config, clock: ReactorClock, pipe, stop, parent: int) -> None:
    """Serve until told to stop, or until the host is gone (even killed with SIGKILL)."""
    os.setsid()
    for number in STOPPING:  # the host's handlers are not the twins' (one pending is dropped)
        signal.signal(number, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPPING)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with factory(config, clock) as twins:
        pipe.send((twins.addresses, twins.config_addresses()))
        while not stop.wait(0.2) and os.getppid() == parent:
            pass


class TwinProcess:
    """Runs `factory(config, clock)` (e.g. AerosolTwins) in a child process until closed."""

    def __init__(self, factory, config, clock: ReactorClock):
        context = multiprocessing.get_context("fork")
        parent, child = context.Pipe()
        self._stop = context.Event()
        self._process = context.Process(target=_serve, args=(factory, config, clock, child,
                                                             self._stop, os.getpid()),
                                        daemon=True, name="quenchlab-twins")
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)
        try:
            self._process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        child.close()  # so the pipe reports a child that died
        deadline = time.monotonic() + 30
        while not parent.poll(0.05):
            if not self._process.is_alive() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"the twins did not start (exit code {self._process.exitcode}); "
                                   "run `quenchlab twins CONFIG` to see why")
        self.addresses, self._config_addresses = parent.recv()

    def config_addresses(self) -> dict[str, str]:
        """The address of every instrument entry of the config, as the twins give it."""
        return self._config_addresses

    def close(self) -> None:
        self._stop.set()
        self._process.join(timeout=5)
        if self._process.is_alive():
            self._process.kill()
