"""The RunEngine as quenchlab runs it from the command line."""
import asyncio
import time
from contextlib import contextmanager

from bluesky import RunEngine
from bluesky.utils import FailedStatus


@contextmanager
def run_engine():
    """A RunEngine whose event loop (a thread and three file descriptors) ends with the block:
    a process that runs one library or train after another does not pile them up."""
    loop = asyncio.new_event_loop()
    try:  # no context managers: Ctrl-C and SIGTERM are quenchlab's (quenchlab.run.interrupts)
        yield RunEngine({}, loop=loop, call_returns_result=True, context_managers=[])
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


def abort_run(engine: RunEngine, reason: str) -> str:
    """Abort a paused run (its cleanup runs) and return the run's reason. The actions in flight
    when it was paused are cancelled by the abort (a pulse being armed is called off): their
    failures are the abort's consequence, not the run's cause, and are pardoned, so the record
    says "abort" with `reason`, whenever they land. A cleanup step that fails is added to the
    reason, not raised over it."""
    engine.loop.call_soon_threadsafe(engine._pardon_failures.set)  # before the abort, in the loop's order
    try:
        engine.abort(reason=reason)
    except FailedStatus as failure:
        return f"{reason}; then {failure_cause(failure)}"
    except Exception as error:
        return f"{reason}; then {type(error).__name__}: {error}"
    return reason


def failure_cause(failure: FailedStatus) -> str:
    """What the instrument action behind a failed Status reported (not the Status's repr)."""
    return str(failure_error(failure))


def failure_error(failure: FailedStatus) -> BaseException:
    """The error behind a failed Status."""
    status = failure.args[0] if failure.args else None
    return (status.exception() if hasattr(status, "exception") else None) or failure
