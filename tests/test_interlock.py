"""The interlock: a trip makes the line safe from its own thread and ends the run with the trip
as its reason; a recoverable excursion suspends the plan, which resumes when it recovers."""
import csv
import threading
import time

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import h5py
import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.utils import Msg, RunEngineInterrupted
from ophyd.sim import SynAxis
from ophyd.status import Status

from conftest import CONFIGS, wait_until
from quenchlab.clock import ReactorClock
from quenchlab.config.aerosol import load_aerosol_config
from quenchlab.errors import QuenchlabError
from quenchlab.library.preflight import aerosol_slots
from quenchlab.library.rows import load_library
from quenchlab.library.runner import Progress, run_library
from quenchlab.plans.pulses import pulse_train
from quenchlab.reactor.aerosol import AerosolReactor
from quenchlab.reactor.fjh import FJHReactor
from quenchlab.reactor.interlock import Interlock, Watch
from quenchlab.recipes.load import load_recipe
from quenchlab.recipes.pulse import compile_recipe
from quenchlab.record.writer import HDF5Writer
from quenchlab.run.engine import abort_run
from quenchlab.run.notes import RunNotes, with_notes


def test_watch_bands():
    flame = Watch("flame", low=1200)
    assert flame.outside(1100) and not flame.outside(1500) and flame.outside(float("nan"))
    ceiling = Watch("t", high=2500)
    assert ceiling.outside(float("inf")) and not ceiling.outside(float("nan"))


def test_over_temperature_trips_the_supply_off_mid_train(sim_config, tmp_path):
    config = sim_config.model_copy(update={"limits": sim_config.limits.model_copy(update={"max_temperature": 2500.0})})
    program = compile_recipe(load_recipe(CONFIGS / "recipes" / "thin-film-2000K.yaml")[0], config.limits)
    with FJHReactor(config, simulate=True) as reactor:
        engine, writer = RunEngine({}), HDF5Writer(tmp_path)
        engine.subscribe(writer)
        interlock = reactor.interlock()
        interlock.attach(engine, resume_after=1.0)
        interlock.start()
        threading.Timer(0.8, reactor.twins.pyrometer.inject, ["saturation"]).start()
        with pytest.raises(RunEngineInterrupted):
            engine(with_notes(pulse_train(reactor.flyer, program, pulses=10, off_time=0.6),
                              RunNotes(interlock=interlock)))
        engine.abort(reason=str(interlock.trips[-1]))
        interlock.halt()
        reactor.twins.world.advance()
        assert not reactor.twins.supply.output and reactor.twins.world.amps == 0.0
        assert str(interlock.trips[-1]).startswith("interlock: temperature = inf (above its limit of 2500 K)")
    with h5py.File(writer.path, "r") as f:
        assert f["entry/exit_status"][()].decode() == "abort"
        assert f["entry/interlock_trip"][()].decode().startswith("interlock: temperature")


def test_a_trip_after_the_run_has_ended_still_makes_the_line_safe():
    """The run can end first (the pulse met the silent instrument before the interlock did)."""
    made_safe = []
    interlock = Interlock(dict, [Watch("temperature", high=2500)], ReactorClock(), safe=lambda: made_safe.append(1))
    interlock.attach(RunEngine({}), resume_after=1.0)
    interlock.check({"temperature": 3000.0})
    assert made_safe and interlock.trips[-1].what == "temperature"


def test_a_reading_that_fails_trips_with_its_error_as_the_reason():
    """What the aerosol line's interlock meets when an instrument's error stops the process logger."""
    def read():
        raise QuenchlabError("pump at 'pty': alarm S (motor stall)")
    made_safe = threading.Event()
    interlock = Interlock(read, [Watch("flame", low=1200)], ReactorClock(), safe=made_safe.set)
    interlock.start()
    assert made_safe.wait(5)
    interlock.halt()
    assert str(interlock.trips[-1]).startswith("interlock: reading failed at reactor time 0.0 s: pump at 'pty'")


def test_readings_told_by_another_thread_are_acted_on_in_the_interlocks_own_thread():
    """The process logger tells the interlock each row; a trip or a suspend is acted on at once
    (not at the interlock's next poll, here 1000 s away), and never in the teller's thread."""
    acted_in = []
    interlock = Interlock(lambda: {}, [Watch("flame", low=1200, recoverable=True), Watch("filter", high=50)],
                          ReactorClock(), safe=lambda: acted_in.append(threading.current_thread()), period=1000.0)
    interlock.observe({"filter": 99.0})  # not yet running: ignored
    interlock.start()
    interlock.observe({"flame": 1500.0, "filter": 10.0})
    interlock.observe({"flame": 900.0})
    assert wait_for(lambda: interlock.suspend.get() == 1)
    interlock.observe({"flame": 1500.0})
    assert wait_for(lambda: interlock.suspend.get() == 0)
    interlock.observe({"filter": 60.0})
    assert wait_for(lambda: acted_in) and acted_in == [interlock._thread]
    interlock.halt()
    assert [trip.what for trip in interlock.trips] == ["filter"]


def test_a_failure_told_by_another_thread_trips_with_its_error_as_the_reason():
    made_safe = threading.Event()
    interlock = Interlock(lambda: {}, [], ReactorClock(), safe=made_safe.set, period=1000.0)
    interlock.start()
    interlock.fail(QuenchlabError("gauge at 'pty': unit E did not answer"))
    assert made_safe.wait(5)
    interlock.halt()
    assert str(interlock.trips[-1]).endswith("reading failed at reactor time 0.0 s: "
                                             "gauge at 'pty': unit E did not answer")


def test_while_told_rows_pace_the_clock_the_interlock_is_not_woken_at_each_of_its_periods():
    """A dry run's logger runs the clock ahead to the next row's time as it reads each row (here
    0.1 s of reactor time a row, about a millisecond of wall): the interlock's own check (the
    rows' age) then looks every period of wall time, not every period of reactor time; once the
    rows stop, the clock runs at real time and it looks every period of reactor time again."""
    clock, reads = ReactorClock(1000), []
    interlock = Interlock(lambda: reads.append(clock.now()) or {}, [], clock, safe=list, period=0.5)
    clock.run_fast_until(clock.now())
    interlock.start()
    give_up = time.monotonic() + 0.5
    while time.monotonic() < give_up:  # the rows: some 40 s of reactor time in 0.5 s of wall
        clock.run_fast_until(clock.now() + 0.1)
        time.sleep(0.001)
    paced, reactor = len(reads), clock.now()
    clock.run_fast_until(clock.now())  # the rows stop
    time.sleep(1.2)
    interlock.halt()
    assert reactor > 20
    assert paced <= 4  # not one look every 0.5 s of reactor time: 40 or more
    assert len(reads) - paced >= 2  # at real time: every 0.5 s


def wait_for(condition, timeout: float = 5.0) -> bool:
    give_up = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.01)
    return True


def test_an_action_failing_while_a_tripped_run_stops_is_pardoned_the_run_is_recorded_as_aborted():
    """The instrument whose silence tripped the run also fails the action in flight, while the
    run's cleanup is still going on: a consequence of the abort, not the run's cause."""
    in_flight = Status()

    class Pulse(SynAxis):
        def set(self, value):
            return in_flight

    def plan():
        yield from bps.open_run()
        yield Msg("set", Pulse(name="pulse"), 1, group="pulse")
        yield Msg("wait", None, group="pulse")
        yield from bps.close_run()

    engine, stops = RunEngine({}), []
    engine.subscribe(lambda name, doc: stops.append(doc), "stop")
    threading.Timer(0.1, engine.request_pause, kwargs={"defer": False}).start()
    with pytest.raises(RunEngineInterrupted):
        engine(bpp.finalize_wrapper(plan(), bps.sleep(0.4)))
    threading.Timer(0.1, in_flight.set_exception, [TimeoutError("pyrometer: no reply")]).start()
    assert abort_run(engine, "interlock: reading failed") == "interlock: reading failed"
    assert (in_flight.done
            and [(s["exit_status"], s["reason"]) for s in stops] == [("abort", "interlock: reading failed")])


def aerosol_run(tmp_path, fault, dwell="90 s", phase=None, progress=None):
    """A two-sample library whose `fault` is injected as the first sample starts (or, given
    `phase`, as a sample's run enters it; or as `progress` does it)."""
    config = load_aerosol_config(CONFIGS / "aerosol-sim.yaml")[0]
    library = tmp_path / "lib.csv"
    library.write_text(f"sample_id,port,dwell\nI1,1,{dwell}\nI2,2,{dwell}\n")
    slots = aerosol_slots(load_library(library, "aerosol"), config, str(library))
    reactor = AerosolReactor(config, simulate=True, speed=100, twins_in_process=True)
    if progress:
        pass
    elif phase:
        progress = Progress(phase=lambda name: fault(reactor.twins) if name == phase else None)
    else:
        progress = Progress(sample=lambda sample_id, index, total: fault(reactor.twins) if index == 0 else None)
    return reactor, lambda: run_library(reactor, slots, library=library, data_dir=tmp_path, resume=False, md={},
                                        progress=progress)


def test_filter_overpressure_trips_and_is_recorded(tmp_path):
    def clog(twins):
        twins.world.collected = 200.0  # g of cake: far above the 50 kPa limit
    reactor, run = aerosol_run(tmp_path, clog, phase="flush")  # the sample's file is open
    with reactor:
        with pytest.raises(QuenchlabError, match=r"sample I1 failed: interlock: "
                                                 r"filter_pressure = \S+ \(above its limit of 50 kPa\)"):
            run()
        reactor.twins.world.advance()
        assert not reactor.twins.pump.flow_at(reactor.clock.now())
        assert reactor.twins.valve.port_at(reactor.clock.now()) == 10
    manifest = list(csv.DictReader((tmp_path / "lib" / "manifest.csv").read_text().splitlines()))
    assert manifest[0]["state"] == "failed" and "interlock: filter_pressure" in manifest[0]["note"]
    with h5py.File(tmp_path / "lib" / manifest[0]["file"], "r") as f:
        assert f["entry/interlock_trip"][()].decode().startswith("interlock: filter_pressure")


def test_a_line_held_by_a_stuck_caller_trips_naming_the_line(tmp_path):
    """The gas bus held by a caller that never lets go: the row's read gives up on it after
    the line's whole patience, the logger stops with that error, and the line goes safe."""
    def hold_gas_bus(twins):
        bus = reactor.gas_drivers["dispersion"].io.lock
        held = threading.Event()
        threading.Thread(target=lambda: bus.acquire() and held.set() or release.wait(10) or bus.release(),
                         daemon=True).start()
        held.wait(5)
    release = threading.Event()
    reactor, run = aerosol_run(tmp_path, hold_gas_bus)
    trips_to_safe_state(reactor, run, release, r"sample I1 failed: interlock: reading failed at reactor time \S+ s: "
                                               r"mfc-dispersion at \S+: line busy: held elsewhere")


def test_process_data_gone_stale_trips_and_leaves_the_line_safe(tmp_path):
    """A read that never returns (nor fails) stops the process data without an error; the
    interlock trips on their age, and the line still goes safe."""
    def hang(twins):
        reactor.logger.sources = [lambda: release.wait(10) and {}]
    release = threading.Event()
    reactor, run = aerosol_run(tmp_path, hang)
    trips_to_safe_state(reactor, run, release, r"sample I1 failed: interlock: "
                                               r"data_age = \S+ \(above its limit of 5 s\)")


def trips_to_safe_state(reactor, run, release: threading.Event, match: str) -> None:
    """`run` fails with a trip matching `match`, and leaves the pump stopped and the valve on
    the solvent port; then `release` lets the stuck caller go."""
    with reactor:
        try:
            with pytest.raises(QuenchlabError, match=match):
                run()
            reactor.twins.world.advance()
            assert not reactor.twins.pump.flow_at(reactor.clock.now())
            assert reactor.twins.valve.port_at(reactor.clock.now()) == 10
        finally:
            release.set()


def test_a_flame_flicker_suspends_and_the_sample_resumes(tmp_path):
    def flicker(twins):
        base = twins.world.line.flame_base
        twins.world.line.flame_base = 600.0  # the flame all but goes out ...
        threading.Timer(0.3, lambda: setattr(twins.world.line, "flame_base", base)).start()  # ... and recovers
    reactor, run = aerosol_run(tmp_path, flicker)
    with reactor:
        result = run()
    assert set(result.states.values()) == {"done"}
    first = sorted((tmp_path / "lib").glob("*_I1.h5"))[0]
    with h5py.File(first, "r") as f:
        flame = f["entry/process/flame_temperature"][()]
        assert np.isnan(flame).any() or np.nanmin(flame) < 1200  # the excursion is in the record
        assert f["entry/exit_status"][()].decode() == "success"



def test_a_trip_between_samples_stops_the_night_before_the_next_one(tmp_path):
    """The interlock trips after a sample completed (the line made safe, its watch over): the next
    sample is not run unwatched; it stays pending, for --resume."""
    made = {}

    def gauge_gone(sample_id, state):
        if sample_id == "I1":
            made["interlock"].fail(RuntimeError("filter gauge: no answer"))
            wait_until(lambda: made["interlock"].trips, 10)

    reactor, run = aerosol_run(tmp_path, None, progress=Progress(done=gauge_gone))
    build = reactor.interlock
    reactor.interlock = lambda: made.setdefault("interlock", build())
    with reactor, pytest.raises(QuenchlabError, match=r"the interlock tripped before sample I2: interlock: "
                                                      r"reading failed"):
        run()
    states = [row["state"] for row in csv.DictReader((tmp_path / "lib" / "manifest.csv").read_text().splitlines())]
    assert states == ["done", "pending"]
