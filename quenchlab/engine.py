"""The RunEngine as quenchlab runs it from the command line."""
import signal
import threading
from contextlib import contextmanager

from bluesky import RunEngine
from bluesky.utils import FailedStatus


@contextmanager
def sigterm_interrupts(engine: RunEngine):
    """SIGTERM (`kill`, a service manager, a logout) interrupts the run as Ctrl-C does, so the
    plan's cleanup runs (output off, pump stopped) instead of the process just vanishing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: engine.request_pause(defer=False))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def failure_cause(failure: FailedStatus) -> str:
    """What the instrument action behind a failed Status reported (not the Status's repr)."""
    status = failure.args[0] if failure.args else None
    return str(status.exception() if hasattr(status, "exception") else failure)
