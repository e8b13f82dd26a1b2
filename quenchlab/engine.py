"""The RunEngine as quenchlab runs it from the command line."""
import asyncio
import signal
import threading
import time
from contextlib import contextmanager, suppress

from bluesky import RunEngine
from bluesky.run_engine import TransitionError
from bluesky.utils import FailedStatus


@contextmanager
def run_engine():
    """A RunEngine whose event loop (a thread and three file descriptors) ends with the block:
    a process that runs one library or train after another does not pile them up."""
    loop = asyncio.new_event_loop()
    try:
        yield RunEngine({}, loop=loop, call_returns_result=True)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        give_up = time.monotonic() + 5
        while loop.is_running() and time.monotonic() < give_up:
            time.sleep(0.001)
        if not loop.is_running():  # what is left (a wait a pause gave up) ends before the loop closes
            left = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in left:
                task.cancel()
            if left:
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.close()


@contextmanager
def sigterm_interrupts(engine: RunEngine):
    """SIGTERM (`kill`, a service manager, a logout) interrupts the run as Ctrl-C does, so the
    plan's cleanup runs (output off, pump stopped) instead of the process just vanishing. One
    that comes as the run ends (the RunEngine can no longer pause) is raised as a Ctrl-C once
    the block is over: the next run (a library's next sample) does not start."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    too_late = []

    def interrupt(*_):
        try:
            engine.request_pause(defer=False)
        except TransitionError:
            too_late.append(True)
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
    if too_late:
        raise KeyboardInterrupt


@contextmanager
def link_faults_recorded(reactor, writer):
    """After the block (a run), add the link faults the reactor's drivers rode through to the
    run's file as /entry/link_faults. If the block raised, a failure to add them (a full
    disk) does not hide its error."""
    def record():
        if (events := reactor.link_events()) and writer.path is not None:
            writer.annotate("link_faults", [str(event) for event in events])
    try:
        yield
    except BaseException:
        with suppress(OSError):
            record()
        raise
    record()


def abort_run(engine: RunEngine, reason: str) -> str:
    """Abort an interrupted run (its cleanup runs) and return the run's reason. An action in
    flight when the run was interrupted may fail as it stops (the instrument behind a trip
    stopped answering): that failure is added to the reason, not raised over it."""
    try:
        engine.abort(reason=reason)
    except FailedStatus as failure:
        return f"{reason}; then {failure_cause(failure)}"
    except Exception as error:
        return f"{reason}; then {type(error).__name__}: {error}"
    return reason


def failure_cause(failure: FailedStatus) -> str:
    """What the instrument action behind a failed Status reported (not the Status's repr)."""
    status = failure.args[0] if failure.args else None
    return str(status.exception() if hasattr(status, "exception") else failure)
