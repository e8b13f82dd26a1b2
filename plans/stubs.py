"""Bare-message stubs: plan steps yielded as messages of their own, not through bluesky's plan
stubs, which record the stack each is made in; the steps an aerosol day repeats thousands of
times (a wait on the reactor clock, a phase mark)."""
import asyncio

from bluesky import Msg

from quenchlab.clock import ReactorClock
from quenchlab.devices.soft.phase_marker import PhaseMarker


def reactor_sleep(clock: ReactorClock, seconds: float):
    """Wait `seconds` of reactor time: one `wait_for` on the clock (ReactorClock.until), not
    sleep messages of wall time (a paced clock runs slower than `speed`, so those would be
    repeated, hundreds of times a sample in a dry run). A bare message, not a plan stub: each
    stub records the stack it was made in."""
    end = clock.now() + seconds
    waits = []

    def wait():
        waits.append(asyncio.ensure_future(clock.until(end)))
        return waits[-1]
    try:
        yield Msg("wait_for", None, [wait])
    finally:  # a wait the RunEngine left (a pause, then an abort) would go on to its end: ended here
        for task in waits:
            task.cancel()


def mark(marker: PhaseMarker, phase: str, note: str = ""):
    """The phase stamped (the marker's set finishes at once) and read into the "phases" stream:
    bare messages, as in reactor_sleep (a dry run marks five phases per sample, 288 samples a day)."""
    yield Msg("checkpoint")  # where a Ctrl-C (a deferred pause) takes effect
    yield Msg("set", marker, phase, group=None, note=note)
    yield Msg("create", None, name="phases")
    yield Msg("read", marker)
    yield Msg("save")
