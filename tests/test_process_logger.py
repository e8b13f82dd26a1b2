"""The process logger's pacing of the reactor clock, its halt and restart, and the interlock's
resume delay in reactor time."""
import threading
import time

import bluesky.plan_stubs as bps
import pytest
from bluesky import RunEngine

from quenchlab.clock import ReactorClock
from quenchlab.devices.flyers.process_logger import ProcessLogger
from quenchlab.errors import QuenchlabError
from quenchlab.plans import sequences
from quenchlab.reactor.interlock import Interlock


def test_the_process_logger_paces_the_clock_from_its_first_row():
    """A read that takes 50 ms of wall time (a slow line, a busy host) holds the clock: at
    1000x the next row comes a period later, plus at most the wall time the reads took; not
    50 s later. The clock waits at each row's due time until the row is stamped, and runs on
    only up to the next row's time while it is read."""
    clock = ReactorClock(1000)
    walls = [time.monotonic()]  # no row is stamped before this; then when each read ended

    def slow_source():
        if len(walls) == 1:
            time.sleep(0.05)
        walls.append(time.monotonic())
        return {"value": 1.0}

    logger = ProcessLogger([slow_source], {}, clock, period=1.0)
    logger.start()
    while len(walls) < 4:
        time.sleep(0.01)
    logger.halt()
    rows = [row["reactor_time"] for _, row in logger._rows]
    for i in range(len(rows) - 1):
        # each row is stamped late (on the grid of periods) by at most the wall time since the
        # row before it was stamped, which is after the read before that one ended
        wall = walls[i + 2] - walls[max(i - 1, 0)]
        assert 1.0 - wall < rows[i + 1] - rows[i] < 1.0 + wall


def test_a_logger_halted_while_stuck_in_a_read_is_not_started_twice():
    clock, line_free, reading = ReactorClock(100), threading.Event(), threading.Event()

    def stuck_source():
        reading.set()
        line_free.wait(10)
        return {"value": 1.0}

    logger = ProcessLogger([stuck_source], {}, clock)
    logger.start()
    reading.wait(5)
    logger.halt(timeout=0.1)  # returns: whoever halts (the safe state) goes on
    with pytest.raises(QuenchlabError, match="still stuck in a read begun before it was halted"):
        logger.start()
    line_free.set()  # the read returns; the halted logger ends
    logger.halt(timeout=5)
    logger.start()
    logger.halt()


def test_a_source_that_fails_stops_the_logger_and_its_watcher_is_told():
    failing = threading.Event()
    told = {"rows": 0, "error": None}

    class Watcher:
        def observe(self, row):
            told["rows"] += 1

        def fail(self, error):
            told["error"] = error

    def source():
        if failing.is_set():
            raise OSError("valve line lost")
        return {"valve": 2.0}

    logger = ProcessLogger([source], {}, ReactorClock(100))
    logger.watcher = Watcher()
    logger.start()
    deadline = time.monotonic() + 5
    while not told["rows"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert logger.latest["valve"] == 2.0
    failing.set()
    logger._thread.join(5)
    assert not logger._thread.is_alive()
    with pytest.raises(OSError, match="valve line lost"):
        logger.complete().wait(1)
    assert str(told["error"]) == "valve line lost" and logger.failure is told["error"]


def test_a_suspended_plan_resumes_after_resume_after_seconds_of_reactor_time():
    """At 100x a wall sleep of resume_after / speed would do, but a paced clock (here held at
    real time) runs slower: the wait is counted on the reactor clock."""
    clock = ReactorClock(100)
    clock.run_fast_until(clock.now())  # at real time from now on
    flame = {"flame": 1500.0}
    interlock = Interlock(lambda: dict(flame), [], clock, safe=lambda: [], period=0.05)
    engine = RunEngine({})
    interlock.attach(engine, resume_after=0.5)
    threading.Timer(0.05, interlock.suspend.put, [1]).start()  # a flame flicker during the plan ...
    threading.Timer(0.25, interlock.suspend.put, [0]).start()  # ... that recovers
    resumed = []

    def plan():
        yield from bps.checkpoint()
        yield from bps.sleep(0.1)
        resumed.append(clock.now())

    start = clock.now()
    engine(plan())
    assert resumed[-1] - start >= 0.25 + 0.5


@pytest.mark.parametrize("speed, fewest, most", [(1.0, 2, 4), (1000.0, 0, 0)])
def test_a_wait_collects_a_page_when_the_oldest_row_is_collect_every_old(monkeypatch, speed, fewest, most):
    """At real time, a 0.7 s wait with pages due every 0.2 s of wall collects about three; a
    dry run through the same reactor time collects none (the sample's last collect takes all)."""
    monkeypatch.setattr(sequences, "COLLECT_EVERY", 0.2)
    clock = ReactorClock(speed)
    logger = ProcessLogger([lambda: {"value": 1.0}], {}, clock, period=0.05)
    engine, collected = RunEngine({}), []
    engine.subscribe(lambda name, doc: collected.append(doc) if name == "event_page" else None)

    def plan():
        yield from bps.open_run()
        yield from bps.kickoff(logger, wait=True)
        yield from sequences.wait_until(clock, logger, clock.now() + 0.7)
        yield from bps.close_run()
    engine(plan())
    logger.halt()
    assert fewest <= len(collected) <= most
