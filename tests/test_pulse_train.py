"""Hardware-timed pulse trains on the N6900 twin, over its TCP socket: the supply's cadence,
every pulse captured (one scope segment each, with its time tag), a train stopped mid-way,
and a scope without segmented memory."""
import threading
import time

import bluesky.preprocessors as bpp
import h5py
import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.utils import RunEngineInterrupted

from conftest import wall_timed
from quenchlab.control.programs import ListProgram
from quenchlab.devices.flyers.fjh_pulse import TrainRecord, train_timing
from quenchlab.plans.pulses import fire, pulse_train
from quenchlab.reactor.fjh import FJHReactor
from quenchlab.record.writer import HDF5Writer

PULSE = ListProgram(levels=(24.0,), dwells=(0.02,), control="current", limit=50.0)  # 20 ms at 24 A
OFF = 1.08  # s: a period of 1.10 s


def train(reactor, directory, pulses: int, engine=None, off: float = OFF):
    engine = engine or RunEngine({})
    writer = HDF5Writer(directory)
    engine.subscribe(writer)
    start = time.perf_counter()
    engine(pulse_train(reactor.flyer, PULSE, pulses, off, reactor.detectors()))
    return time.perf_counter() - start, writer.path


def with_digitizer(config, **settings):
    digitizer = config.instruments.digitizer.model_copy(update=settings)
    return config.model_copy(update={"instruments": config.instruments.model_copy(update={"digitizer": digitizer})})


def without_segments(config):
    return with_digitizer(config, segmented_memory=False)


def twin_output_off(reactor) -> bool:
    reactor.supply_driver.io.query("OUTP?")  # what was sent before has been handled
    return not reactor.twins.supply.output and reactor.twins.supply.transient == "idle"


@wall_timed  # the period on the wall, measured from outside
def test_a_train_keeps_the_programmed_period_in_the_record_and_on_the_wall(reactor, tmp_path):
    wall_12, path = train(reactor, tmp_path / "12", 12)
    wall_2, _ = train(reactor, tmp_path / "2", 2)
    with h5py.File(path, "r") as f:
        entry = f["entry"]
        starts = entry["pulse/pulse_start"][()]
        assert starts.size == 12 and np.diff(starts) == pytest.approx(1.10, rel=1e-3)
        assert entry["train/train_achieved_period"][0] == pytest.approx(1.10, rel=1e-3)
        assert entry["train/train_programmed_period"][0] == pytest.approx(1.10)
        offs = entry["pulse/off_time"][()]
        assert offs[1:] == pytest.approx(OFF, rel=1e-3) and np.isnan(offs[0])  # the off time before each pulse
    assert (wall_12 - wall_2) / 10 == pytest.approx(1.10, rel=0.05)  # the host's work after the train is small
    assert twin_output_off(reactor)


def test_every_pulse_of_a_train_has_its_segment_and_time_tag(reactor, tmp_path):
    _, path = train(reactor, tmp_path, 4)
    with h5py.File(path, "r") as f:
        entry = f["entry"]
        table = entry["pulse"]
        starts, tags = table["pulse_start"][()], table["trace_time_tag"][()]
        assert list(table["has_trace"][()]) == [True] * 4
        assert tags == pytest.approx(starts - starts[0], abs=1e-3)  # the scope's clock agrees with the supply's
        peaks = [np.nanmax(entry[f"pulse_{n:04d}/temperature"][()]) for n in range(1, 5)]
        assert min(peaks) > 1500  # each segment holds its own pulse


def test_a_train_stopped_midway_leaves_the_output_off_and_records_the_pulses_it_completed(reactor, tmp_path):
    engine = RunEngine({})
    threading.Timer(2.5, engine.request_pause).start()  # as Ctrl-C does, during the third pulse's off time
    with pytest.raises(RunEngineInterrupted):
        train(reactor, tmp_path, 8, engine)
    assert twin_output_off(reactor)
    engine.abort("operator abort")
    assert twin_output_off(reactor)
    path = next(tmp_path.glob("*.h5"))
    with h5py.File(path, "r") as f:
        entry = f["entry"]
        assert entry["exit_status"][()].decode() == "abort"
        assert entry["pulse/pulse_index"][()].tolist() == [1, 2, 3]
        assert list(entry["pulse/has_trace"][()]) == [True] * 3


def test_without_segmented_memory_the_record_says_which_pulses_have_traces(sim_config, tmp_path):
    config = without_segments(sim_config)
    with FJHReactor(config, simulate=True) as reactor:
        _, path = train(reactor, tmp_path, 3)
        assert twin_output_off(reactor)
    with h5py.File(path, "r") as f:
        table = f["entry/pulse"]
        assert np.diff(table["pulse_start"][()]) == pytest.approx(1.10, rel=1e-3)
        has = list(table["has_trace"][()])
        assert has[0] and sum(has) >= 2  # re-armed after each record: at 1.1 s apart, every pulse
        assert np.all(np.isnan(table["trace_time_tag"][()]))


def test_a_scope_without_the_option_refuses_segmented_mode(sim_config):
    config = without_segments(sim_config)
    with FJHReactor(config, simulate=True) as reactor:
        io = reactor.digitizer_driver.io
        io.write(":ACQ:MODE SEGM")
        assert io.query(":SYST:ERR?").startswith("-221")
        assert io.query(":ACQ:MODE?") == "RTIM"


def test_a_train_whose_off_time_strayed_more_than_1_percent_says_so():
    starts = [0.0, 1.10, 2.25]  # the second off time 1.13 s instead of 1.08 s
    timing = train_timing(starts, duration=0.02, off_time=OFF)
    assert timing["achieved_period"] == pytest.approx(1.125) and timing["pulses_taken"] == 3
    record = TrainRecord(name="train")
    record.set(timing)
    assert record.note.get() == "an off time +4.6% from the recipe's"
    record.set(train_timing([0.0, 1.10, 2.2005], duration=0.02, off_time=OFF))
    assert record.note.get() == ""


def test_a_pulse_that_waits_out_a_long_off_time_prepared_still_fires(reactor, tmp_path):
    """Prepared, then 6 s of off time without a word to the supply: its 5 s watchdog trips (the
    output is off: harmless); the check before output on clears it and the pulse is taken."""
    reactor.flyer.load(PULSE)
    reactor.flyer.follow(time.time(), 6.0)
    engine = RunEngine({})
    writer = HDF5Writer(tmp_path)
    engine.subscribe(writer)
    engine(fire_once(reactor.flyer))
    with h5py.File(writer.path, "r") as f:
        assert f["entry/pulse/peak_temperature"][0] > 1500
        assert f["entry/pulse/off_time"][0] == pytest.approx(6.0, abs=0.05)
    assert twin_output_off(reactor)


def fire_once(flyer):
    @bpp.stage_decorator([flyer])
    @bpp.run_decorator(md={"plan_name": "fire_once"})
    def inner():
        yield from fire(flyer)
    return (yield from inner())


def test_a_train_longer_than_the_scopes_segments_goes_as_several_lists_and_every_pulse_is_recorded(sim_config,
                                                                                                   tmp_path):
    """A scope taking 4 segments: 10 pulses go as lists of 4, 4 and 2, each pulse with its trace;
    the off time across a list boundary is what the instruments timed, and said if it strays."""
    with FJHReactor(with_digitizer(sim_config, max_segments=4), simulate=True) as reactor:
        _, path = train(reactor, tmp_path, 10, off=0.48)
        assert twin_output_off(reactor)
    with h5py.File(path, "r") as f:
        pulse, timing = f["entry/pulse"], f["entry/train"]
        assert list(pulse["pulse_index"][()]) == list(range(1, 11)) and pulse["has_trace"][()].all()
        assert pulse["trace_time_tag"][()] == pytest.approx([0, 0.5, 1, 1.5] * 2 + [0, 0.5], abs=1e-4)  # three lists
        starts, offs = pulse["pulse_start"][()], pulse["off_time"][()]
        inside = [i for i in range(1, 10) if i not in (4, 8)]
        assert np.diff(starts)[[i - 1 for i in inside]] == pytest.approx(0.5, rel=1e-3)
        assert offs[inside] == pytest.approx(0.48, rel=1e-3)
        assert np.all((offs[[4, 8]] >= 0.48) & (offs[[4, 8]] < 0.48 * 1.5))  # the next list is uploaded in the gap
        assert offs[[4, 8]] == pytest.approx(np.diff(starts)[[3, 7]] - PULSE.duration)  # one measure of the gap
        assert timing["train_pulses_taken"][0] == 10
        worst = max(offs[1:] - 0.48, key=abs) / 0.48
        assert timing["train_off_time_deviation"][0] == pytest.approx(worst)


def test_without_segmented_memory_a_pulse_the_scope_was_rearmed_too_late_for_has_no_trace(sim_config, tmp_path):
    """Pulses as close as a record allows (0.25 s with 1 ms before the trigger) leave 1 ms for the
    fetch and the re-arm, too little: the scope, which takes no trigger before it has filled the
    record's part before it, misses pulses. The train still runs to its end, every pulse has its
    row, and only the pulses a record was armed for have a trace."""
    with FJHReactor(with_digitizer(without_segments(sim_config), pre_trigger=0.001), simulate=True) as reactor:
        _, path = train(reactor, tmp_path, 6, off=0.251 - PULSE.duration)
        assert twin_output_off(reactor) and not reactor.digitizer_driver.acquiring()
    with h5py.File(path, "r") as f:
        table = f["entry/pulse"]
        has = table["has_trace"][()]
        assert list(table["pulse_index"][()]) == list(range(1, 7)) and has[0] and not has.all()
        peaks = table["peak_temperature"][()]
        assert np.all(np.isfinite(peaks[has])) and np.all(np.isnan(peaks[~has]))
        for index in np.flatnonzero(~has):
            assert np.all(np.isnan(f[f"entry/pulse_{index + 1:04d}/temperature"][()]))
        assert np.isfinite(table["energy"][()]).all()  # the supply's V/I of every pulse


def test_the_supply_is_made_safe_inside_the_run_so_what_that_meets_is_the_runs(reactor, tmp_path):
    """Unstaging (the output off, read back) comes before the run's close: a link fault it rides
    through is noted in this run's record, not the next one's."""
    engine, commands = RunEngine({}), []
    engine.msg_hook = lambda msg: commands.append(msg.command)
    train(reactor, tmp_path, 1, engine)
    opened, closed = commands.index("open_run"), commands.index("close_run")
    assert "stage" not in commands[:opened] and opened < commands.index("unstage") < closed
