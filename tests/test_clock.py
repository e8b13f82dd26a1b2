"""The reactor clock: speed, pacing (run_fast_until), waits and sharing with a forked process."""
import asyncio
import multiprocessing
import threading
import time

import pytest
from bluesky import Msg
from bluesky.utils import RunEngineInterrupted

from quenchlab.clock import ReactorClock
from quenchlab.plans.stubs import reactor_sleep
from quenchlab.run.engine import run_engine


def rate(clock: ReactorClock, wall: float = 0.05) -> float:
    """Reactor seconds per wall second, measured over `wall` s."""
    r0, w0 = clock.now(), time.monotonic()
    time.sleep(wall)
    return (clock.now() - r0) / (time.monotonic() - w0)


def test_a_dry_run_clock_runs_speed_times_faster_than_the_wall():
    assert 500 < rate(ReactorClock(1000)) <= 1000 * 1.0001


def test_past_its_limit_a_paced_clock_runs_at_real_time_and_speeds_up_again():
    clock = ReactorClock(1000)
    clock.run_fast_until(clock.now())
    assert 0.9 < rate(clock) < 2.0
    clock.run_fast_until(clock.now() + 1e6)
    assert rate(clock) > 500
    clock.run_fast_until()
    assert rate(clock) > 500


def test_pacing_never_moves_the_clock_back_or_makes_it_jump():
    clock = ReactorClock(1000)
    before, last = time.monotonic(), clock.now()
    for step in range(2000):
        if step % 3 == 0:
            clock.run_fast_until(clock.now() + (step % 7) * 0.01)
        now, after = clock.now(), time.monotonic()
        assert last <= now <= last + 1000 * (after - before)  # never faster than `speed`
        before, last = time.monotonic(), clock.now()


def test_a_reader_preempted_while_the_pacing_changes_never_reads_the_clock_backwards(monkeypatch):
    """A reader that reads the wall, is preempted while the pacer re-anchors the clock, then reads
    the anchors, would mix the two: a twin answered from before a move it had just taken."""
    clock = ReactorClock(5000.0)
    clock.run_fast_until(clock.now() + 0.5)  # fast briefly, then at real time
    time.sleep(0.01)
    before = clock.now()
    wall, preempted = time.monotonic, []

    def monotonic():
        now = wall()
        if not preempted:  # the reader's wall is read; the pacer runs the clock fast meanwhile
            preempted.append(now)
            time.sleep(0.005)
            clock.run_fast_until()
        return now

    monkeypatch.setattr("quenchlab.clock.time.monotonic", monotonic)
    after = clock.now()
    assert preempted and after >= before


def test_a_reactor_sleep_never_ends_early_and_follows_the_clock_when_paced():
    clock = ReactorClock(1000)
    start = clock.now()
    clock.sleep(2.0)
    assert clock.now() - start >= 2.0
    clock.run_fast_until(clock.now() + 0.5)  # then real time: 2 s would be ~1.5 s of wall
    start, wall = clock.now(), time.monotonic()
    clock.sleep(0.6)
    assert clock.now() - start >= 0.6
    assert time.monotonic() - wall >= 0.05


def _report(clock: ReactorClock, pipe) -> None:
    pipe.recv()
    pipe.send((clock.now(), rate(clock)))


def test_a_forked_process_reads_the_same_clock_and_its_pacing():
    clock = ReactorClock(1000)
    context = multiprocessing.get_context("fork")
    here, there = context.Pipe()
    child = context.Process(target=_report, args=(clock, there))
    child.start()
    clock.run_fast_until(clock.now())  # from now on: real time, in both processes
    before = clock.now()
    here.send("go")
    their_now, their_rate = here.recv()
    child.join(5)
    assert before <= their_now <= clock.now()
    assert 0.9 < their_rate < 2.0



def _wall_of_wait(clock: ReactorClock, seconds: float, then, use_until: bool) -> tuple[float, float]:
    """Reactor and wall seconds a wait of `seconds` took, `then()` being called 50 ms into it."""
    start, wall = clock.now(), time.monotonic()
    timer = threading.Timer(0.05, then)
    timer.start()
    if use_until:
        asyncio.run(clock.until(start + seconds))
    else:
        clock.sleep(seconds)
    timer.join()
    return clock.now() - start, time.monotonic() - wall


@pytest.mark.parametrize("use_until", [False, True], ids=["sleep", "until"])
def test_a_wait_ends_soon_after_the_pacing_lets_the_clock_run_to_its_end(use_until):
    clock = ReactorClock(1000)
    clock.run_fast_until(clock.now())  # real time: 30 s of reactor time would be 30 s of wall
    reactor, wall = _wall_of_wait(clock, 30.0, lambda: clock.run_fast_until(clock.now() + 1e6), use_until)
    assert reactor >= 30.0
    assert wall < 5.0


@pytest.mark.parametrize("use_until", [False, True], ids=["sleep", "until"])
def test_a_wait_is_not_late_when_the_fast_stretch_grows_short_of_its_end_then_shrinks(use_until):
    """The stretch grows to 0.3 s short of the end without waking the sleeper, then the pacing
    stops: the rest takes 0.3 s of wall, not the 3 s the sleeper last reckoned."""
    clock = ReactorClock(1000)
    clock.run_fast_until(clock.now())

    def grow_then_stop():
        clock.run_fast_until(end - 0.3)
        time.sleep(0.01)  # the clock gets there
        clock.run_fast_until(clock.now())
    end = clock.now() + 3.0
    reactor, wall = _wall_of_wait(clock, 3.0, grow_then_stop, use_until)
    assert reactor >= 3.0
    assert wall < 1.5


def test_a_sleep_that_does_not_keep_up_is_late_only_while_the_pacer_runs_the_clock_ahead():
    """keep_up=False (the interlock's stale-data check): the pacer's extensions do not wake it,
    so it sleeps the wall time it reckoned; at real time it ends on time; its stop ends it at once."""
    clock = ReactorClock(1000)
    clock.run_fast_until(clock.now())  # real time: 0.3 s of reactor time is 0.3 s of wall
    start, wall = clock.now(), time.monotonic()
    threading.Timer(0.05, lambda: clock.run_fast_until(clock.now() + 1e6)).start()
    clock.sleep(0.3, keep_up=False)
    assert time.monotonic() - wall >= 0.25
    assert clock.now() - start > 100  # late: the clock ran on at 1000x, unwatched
    clock.run_fast_until(clock.now())
    start = clock.now()
    clock.sleep(0.2, keep_up=False)
    assert 0.2 <= clock.now() - start < 0.5
    stop, wall = threading.Event(), time.monotonic()
    threading.Timer(0.05, stop.set).start()
    clock.sleep(30.0, stop, keep_up=False)
    assert time.monotonic() - wall < 1.0


def test_a_held_clock_runs_at_real_time_and_its_release_runs_it_on_to_what_the_pacer_asked():
    """A logger asks for the next row's time while the clock is held (between two samples):
    the clock stays at real time; released, it runs there at once, and the sleeper waiting
    there (the logger, until its next row) is woken, not left to its last reckoning (a second)."""
    clock = ReactorClock(1000)
    clock.hold()
    due = clock.now() + 1.0
    clock.run_fast_until(due)
    assert 0.9 < rate(clock) < 2.0
    threading.Timer(0.05, clock.release).start()
    wall = time.monotonic()
    clock.sleep_until(due)
    assert clock.now() >= due
    assert time.monotonic() - wall < 0.5


def test_a_plans_wait_left_by_a_pause_and_then_an_abort_ends_with_the_run():
    """The RunEngine gives up a `wait_for` when it pauses; the abort that follows ends the wait
    too, so nothing of it is left pending when the engine's loop closes."""
    clock = ReactorClock(1.0)

    def plan():
        yield Msg("checkpoint")
        yield from reactor_sleep(clock, 30.0)
    with run_engine() as engine:
        threading.Timer(0.2, lambda: engine.request_pause(defer=False)).start()
        with pytest.raises(RunEngineInterrupted):
            engine(plan())
        engine.abort("test")
    assert [task for task in asyncio.all_tasks(engine.loop) if not task.done()] == []
