"""HDF5Writer against a real RunEngine, ophyd.sim devices and a small pulse flyer."""
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp
import event_model
import h5py
import numpy as np
import pytest
from bluesky import RunEngine
from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd.sim import det, motor
from ophyd.status import Status

import quenchlab.record.writer as writer_module
from quenchlab.clock import ReactorClock
from quenchlab.devices.flyers.process_logger import ProcessLogger
from quenchlab.record.writer import HDF5Writer

RECIPE = "name: flash-1\npulses:\n  - {voltage: 120, duration_ms: 50}\n"
REACTOR_CONFIG = "reactor: bench-1\nsupply: {model: sim}\n"
N_TRACE, N_SUPPLY = 40, 6


class HzSignal(Signal):
    """A soft signal that describes itself in Hz."""

    def describe(self):
        description = super().describe()
        description[self.name]["units"] = "Hz"
        return description


def _finished():
    status = Status()
    status.set_finished()
    return status


class PulseFlyer(Device):
    """A legacy ophyd flyer: each kickoff 'fires' some pulses, collect_pages returns them as one page."""

    sample_rate = Cpt(HzSignal, value=1e5, kind="config")

    def __init__(self, *args, pulses_per_kickoff=1, **kwargs):
        super().__init__(*args, **kwargs)
        self.pulses_per_kickoff = pulses_per_kickoff
        self.sent = []
        self._pending = []

    @property
    def hints(self):
        return {"fields": ["temperature"]}

    def kickoff(self):
        for _ in range(self.pulses_per_kickoff):
            k = len(self.sent)
            temperature = 300.0 + 100.0 * k + np.arange(N_TRACE)
            pulse = {
                "time": np.linspace(0.0, 1e-3, N_TRACE),
                "temperature": temperature,
                "intensity": temperature / 1000.0,
                "supply_time": np.linspace(0.0, 1e-3, N_SUPPLY),
                "current": np.full(N_SUPPLY, 10.0 + k),
                "peak_temperature": float(temperature.max()),
            }
            self.sent.append(pulse)
            self._pending.append(pulse)
        return _finished()

    def complete(self):
        return _finished()

    def describe_collect(self):
        def key(shape, dims, units):
            return {"source": "sim:pulse", "dtype": "array" if shape else "number",
                    "shape": shape, "dims": dims, "units": units}

        return {
            "time": key([N_TRACE], ["time"], "s"),
            "temperature": key([N_TRACE], ["time"], "K"),
            "intensity": key([N_TRACE], ["time"], "V"),
            "supply_time": key([N_SUPPLY], ["supply_time"], "s"),
            "current": key([N_SUPPLY], ["supply_time"], "A"),
            "peak_temperature": key([], [], "K"),
        }

    def collect_pages(self):
        pulses, self._pending = self._pending, []
        now = time.time()
        data = {field: [p[field] for p in pulses] for field in self.describe_collect()}
        yield {"data": data, "timestamps": {field: [now] * len(pulses) for field in data}}


def flash_plan(flyer, kickoffs, md):
    """Per kickoff: move, read det+motor into 'primary', fire and collect the flyer into 'pulse'.

    A last reading of det+motor goes to a 'final' stream (their configuration is described again).
    """

    @bpp.run_decorator(md={"plan_name": "flash_pulse", **md})
    def inner():
        yield from bps.declare_stream(flyer, name="pulse", collect=True)
        for i in range(kickoffs):
            yield from bps.mv(motor, i)
            yield from bps.trigger_and_read([det, motor])
            yield from bps.kickoff(flyer, wait=True)
            yield from bps.complete(flyer, wait=True)
            yield from bps.collect(flyer, name="pulse")
        yield from bps.trigger_and_read([det, motor], name="final")

    return (yield from inner())


@pytest.fixture
def RE():
    return RunEngine({})


@pytest.fixture
def writer(RE, tmp_path):
    writer = HDF5Writer(tmp_path / "runs")  # does not exist yet
    RE.subscribe(writer)
    return writer


@pytest.fixture
def docs(RE):
    collected = []
    RE.subscribe(lambda name, doc: collected.append((name, doc)))
    return collected


def text(dataset):
    return dataset.asstr()[()]


def default_nxdata(f):
    """Follow root@default -> entry@default as a generic NeXus viewer does."""
    entry = f[f.attrs["default"]]
    assert entry.attrs["NX_class"] == "NXentry"
    nxdata = entry[entry.attrs["default"]]
    assert nxdata.attrs["NX_class"] == "NXdata"
    return nxdata


def test_scan_writes_metadata_configuration_and_primary_table(RE, writer, docs):
    md = {"sample": "graphene oxide/1", "recipe": RECIPE, "reactor_config": REACTOR_CONFIG,
          "reactor": "bench-1", "quenchlab_version": "9.9", "operator": "ada"}
    RE(bp.scan([det], motor, -1, 1, 5, md=md))
    start = next(doc for name, doc in docs if name == "start")
    events = [doc for name, doc in docs if name == "event"]

    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(start["time"]))
    assert writer.path.name == f"{stamp}_scan{start['scan_id']:04d}_scan_graphene_oxide_1.h5"
    assert re.fullmatch(r"\d{8}-\d{6}_scan\d{4}_[A-Za-z0-9._-]+\.h5", writer.path.name)

    with h5py.File(writer.path, "r") as f:
        assert f.attrs["default"] == "entry"
        assert f.attrs["creator"] == "quenchlab"
        assert f.attrs["file_name"] == writer.path.name
        assert f.attrs["HDF5_Version"] == h5py.version.hdf5_version
        assert f.attrs["h5py_version"] == h5py.__version__
        entry = f["entry"]
        assert text(entry["title"]) == "scan graphene oxide/1"
        start_time = datetime.fromisoformat(text(entry["start_time"]))
        assert start_time.tzinfo is not None
        assert start_time.timestamp() == pytest.approx(start["time"], abs=1e-3)
        assert text(entry["entry_identifier"]) == start["uid"]
        assert entry["scan_id"][()] == start["scan_id"]
        assert text(entry["program_name"]) == "quenchlab"
        assert entry["program_name"].attrs["version"] == "9.9"
        assert text(entry["recipe"]) == RECIPE
        assert text(entry["reactor_config"]) == REACTOR_CONFIG
        assert json.loads(text(entry["metadata"]))["operator"] == "ada"
        assert entry["sample"].attrs["NX_class"] == "NXsample"
        assert text(entry["sample/name"]) == "graphene oxide/1"
        assert text(entry["exit_status"]) == "success"
        assert "end_time" in entry and "reason" not in entry
        assert entry["num_events/primary"][()] == 5

        instrument = entry["instrument"]
        assert instrument.attrs["NX_class"] == "NXinstrument"
        assert text(instrument["name"]) == "bench-1"
        assert instrument["det"].attrs["NX_class"] == "NXcollection"
        assert instrument["det/det_Imax"][()] == 1
        assert text(instrument["det/det_noise"]) == "none"
        assert instrument["motor/motor_velocity"][()] == 1

        table = default_nxdata(f)
        assert table.name == "/entry/primary"
        assert table.attrs["signal"] == "det" and table.attrs["axes"] == "seq_num"
        np.testing.assert_array_equal(table["det"][:], [e["data"]["det"] for e in events])
        np.testing.assert_array_equal(table["motor"][:], [e["data"]["motor"] for e in events])
        np.testing.assert_array_equal(table["seq_num"][:], [1, 2, 3, 4, 5])
        np.testing.assert_array_equal(table["timestamp"][:], [e["time"] for e in events])
        assert table["det"].maxshape == (None,) and table["det"].chunks is not None


def test_flyer_pulses_become_plottable_nxdata_traces(RE, writer, docs):
    flyer = PulseFlyer(name="pulse")
    RE(flash_plan(flyer, kickoffs=2, md={"sample": "CB-7"}))
    assert any(name == "event_page" for name, _ in docs)

    with h5py.File(writer.path, "r") as f:
        entry = f["entry"]
        trace = default_nxdata(f)  # the latest trace, though a 'final' reading came after it
        assert trace.name == "/entry/pulse_0002"
        assert trace.attrs["title"] == "flash_pulse CB-7 pulse 2"
        assert trace.attrs["signal"] == "temperature"
        assert trace.attrs["axes"] == "time"
        assert list(trace.attrs["auxiliary_signals"]) == ["intensity"]
        signal, axis = trace[trace.attrs["signal"]], trace[trace.attrs["axes"]]
        np.testing.assert_array_equal(signal[:], flyer.sent[1]["temperature"])
        np.testing.assert_array_equal(axis[:], flyer.sent[1]["time"])
        assert signal.attrs["units"] == "K" and axis.attrs["units"] == "s"
        np.testing.assert_array_equal(trace["current"][:], flyer.sent[1]["current"])
        assert trace["current"].attrs["units"] == "A"
        assert trace["supply_time"].shape == (N_SUPPLY,)
        np.testing.assert_array_equal(entry["pulse_0001/temperature"][:], flyer.sent[0]["temperature"])

        pulses = entry["pulse"]
        assert pulses.attrs["NX_class"] == "NXdata" and pulses.attrs["signal"] == "peak_temperature"
        peaks = [p["peak_temperature"] for p in flyer.sent]
        np.testing.assert_array_equal(pulses["peak_temperature"][:], peaks)
        assert pulses["peak_temperature"].attrs["units"] == "K"
        np.testing.assert_array_equal(pulses["seq_num"][:], [1, 2])
        assert "temperature" not in pulses

        assert entry["primary/det"].shape == (2,) and entry["final/det"].shape == (1,)
        assert entry["instrument/det/det_Imax"][()] == 1
        assert entry["instrument/pulse/pulse_sample_rate"][()] == 1e5
        assert entry["instrument/pulse/pulse_sample_rate"].attrs["units"] == "Hz"
        assert entry["num_events/pulse"][()] == 2 and entry["num_events/primary"][()] == 2


def test_page_of_several_pulses_is_appended_as_a_block(RE, writer, docs):
    flyer = PulseFlyer(name="pulse", pulses_per_kickoff=3)
    RE(flash_plan(flyer, kickoffs=2, md={}))
    pages = [doc for name, doc in docs if name == "event_page"]
    assert [len(page["seq_num"]) for page in pages] == [3, 3]

    with h5py.File(writer.path, "r") as f:
        entry = f["entry"]
        np.testing.assert_array_equal(entry["pulse/seq_num"][:], np.arange(1, 7))
        np.testing.assert_array_equal(entry["pulse/timestamp"][:], pages[0]["time"] + pages[1]["time"])
        peaks = [p["peak_temperature"] for p in flyer.sent]
        np.testing.assert_array_equal(entry["pulse/peak_temperature"][:], peaks)
        for seq_num, pulse in enumerate(flyer.sent, start=1):
            np.testing.assert_array_equal(entry[f"pulse_{seq_num:04d}/temperature"][:], pulse["temperature"])
        assert entry.attrs["default"] == "pulse_0006"
        assert "sample" not in entry


def test_each_run_gets_its_own_file(RE, writer):
    RE(bp.count([det], num=2))
    first = writer.path
    RE(bp.count([det], num=3))
    assert writer.path != first
    assert sorted(p.name for p in writer.directory.iterdir()) == sorted([first.name, writer.path.name])
    with h5py.File(first, "r") as f1, h5py.File(writer.path, "r") as f2:
        assert f1["entry/primary/det"].shape == (2,)
        assert f2["entry/primary/det"].shape == (3,)
        assert f2["entry/scan_id"][()] == f1["entry/scan_id"][()] + 1


def _run_by_hand(writer, start_time=1_700_000_000.0, stop=True):
    """Send a run's documents by hand: one scalar field and one trace per event, two pages."""
    run = event_model.compose_run(time=start_time, metadata={"plan_name": "count", "scan_id": 7})
    writer("start", run.start_doc)
    descriptor = run.compose_descriptor(
        name="primary",
        data_keys={
            "x": {"source": "hand", "dtype": "number", "shape": [], "units": "mm"},
            "trace": {"source": "hand", "dtype": "array", "shape": [3]},
        },
    )
    writer("descriptor", descriptor.descriptor_doc)
    for page in range(2):
        data = {"x": [10.0 * page, 10.0 * page + 1], "trace": [np.arange(3.0) + page, np.arange(3.0) - page]}
        writer("event_page", descriptor.compose_event_page(
            data=data, timestamps={k: [start_time] * 2 for k in data}, seq_num=[2 * page + 1, 2 * page + 2]))
    if stop:
        writer("stop", run.compose_stop())
    return run.start_doc


def test_name_collision_adds_suffix_and_never_overwrites(tmp_path):
    writer = HDF5Writer(tmp_path)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(1_700_000_000.0))
    taken = tmp_path / f"{stamp}_scan0007_count.h5"
    taken.write_bytes(b"someone else's file")

    _run_by_hand(writer)
    assert writer.path.name == f"{stamp}_scan0007_count-1.h5"
    _run_by_hand(writer)
    assert writer.path.name == f"{stamp}_scan0007_count-2.h5"
    assert taken.read_bytes() == b"someone else's file"
    with h5py.File(tmp_path / f"{stamp}_scan0007_count-1.h5", "r") as f:
        np.testing.assert_array_equal(f["entry/primary/x"][:], [0, 1, 10, 11])
        assert f["entry/primary/x"].attrs["units"] == "mm"
        trace = f["entry/primary_0004"]  # no hints: the first array field is the signal, without axis
        assert trace.attrs["signal"] == "trace" and "axes" not in trace.attrs


def test_run_without_stop_leaves_readable_file_and_is_closed_by_next_start(tmp_path):
    writer = HDF5Writer(tmp_path / "runs")
    _run_by_hand(writer, stop=False)
    crashed = writer.path

    snapshot = tmp_path / "snapshot.h5"  # the bytes on disk now are what a SIGKILL would leave
    shutil.copyfile(crashed, snapshot)
    with h5py.File(snapshot, "r") as f:
        np.testing.assert_array_equal(f["entry/primary/x"][:], [0, 1, 10, 11])
        np.testing.assert_array_equal(f["entry/primary_0004/trace"][:], np.arange(3.0) - 1)
        assert f["entry"].attrs["default"] == "primary_0004"
        assert "exit_status" not in f["entry"]

    _run_by_hand(writer, start_time=1_700_000_100.0)
    assert writer.path != crashed
    with h5py.File(crashed, "r") as f:
        assert text(f["entry/exit_status"]) == "incomplete"
        assert f["entry/num_events/primary"][()] == 4
        np.testing.assert_array_equal(f["entry/primary/seq_num"][:], [1, 2, 3, 4])


def test_stream_described_again_keeps_its_table_and_first_configuration(tmp_path):
    writer = HDF5Writer(tmp_path)
    run = event_model.compose_run(metadata={"plan_name": "count"})
    writer("start", run.start_doc)
    data_keys = {"x": {"source": "hand", "dtype": "integer", "shape": []}}
    for speed, xs in ((1.0, [5, 6]), (2.0, [7])):  # as after bps.configure: a new descriptor, same stream
        speed_key = {"source": "hand", "dtype": "number", "shape": [], "units": "mm/s"}
        configuration = {"stage": {"data": {"speed": speed}, "timestamps": {"speed": 0.0},
                                   "data_keys": {"speed": speed_key}}}
        bundle = run.compose_descriptor(name="primary", data_keys=data_keys, configuration=configuration)
        writer("descriptor", bundle.descriptor_doc)
        for x in xs:
            writer("event", bundle.compose_event(data={"x": x}, timestamps={"x": 0.0}))
    writer("stop", run.compose_stop(exit_status="abort", reason="operator stop"))

    with h5py.File(writer.path, "r") as f:
        entry = f["entry"]
        np.testing.assert_array_equal(entry["primary/x"][:], [5, 6, 7])
        np.testing.assert_array_equal(entry["primary/seq_num"][:], [1, 2, 3])
        assert entry["primary/x"].dtype == np.int64
        assert entry["instrument/stage/speed"][()] == 1.0
        assert entry["instrument/stage/speed"].attrs["units"] == "mm/s"
        assert text(entry["exit_status"]) == "abort" and text(entry["reason"]) == "operator stop"
        assert entry["num_events/primary"][()] == 3


def _start_scalar_run(writer):
    """Start a run by hand whose 'primary' stream has a number x and a text label."""
    run = event_model.compose_run(metadata={"plan_name": "count"})
    writer("start", run.start_doc)
    descriptor = run.compose_descriptor(name="primary", data_keys={
        "x": {"source": "hand", "dtype": "number", "shape": []},
        "label": {"source": "hand", "dtype": "string", "shape": []},
    })
    writer("descriptor", descriptor.descriptor_doc)
    return run, descriptor


def _send_rows(writer, descriptor, xs):
    for x in xs:
        data = {"x": float(x), "label": f"row {x}"}
        writer("event", descriptor.compose_event(data=data, timestamps={"x": 0.0, "label": 0.0}))


def _rows_on_disk(writer, tmp_path):
    """x of the primary table as the file on disk holds it now (what a SIGKILL would leave)."""
    snapshot = tmp_path / "snapshot.h5"
    shutil.copyfile(writer.path, snapshot)
    with h5py.File(snapshot, "r") as f:
        return f["entry/primary/x"][:]


def test_rows_are_written_in_blocks_in_order_and_stop_writes_the_rest(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_module, "ROWS_MAX_AGE", 60.0)  # only full blocks and documents write rows
    writer = HDF5Writer(tmp_path / "runs")
    run, descriptor = _start_scalar_run(writer)
    block = writer_module.ROWS_PER_BLOCK
    n = 2 * block + 276
    _send_rows(writer, descriptor, range(n))
    np.testing.assert_array_equal(_rows_on_disk(writer, tmp_path), np.arange(2 * block))  # two full blocks

    writer("stop", run.compose_stop())
    with h5py.File(writer.path, "r") as f:
        table = f["entry/primary"]
        np.testing.assert_array_equal(table["x"][:], np.arange(n))
        np.testing.assert_array_equal(table["seq_num"][:], np.arange(1, n + 1))
        assert list(table["label"].asstr()[:]) == [f"row {x}" for x in range(n)]
        assert f["entry"].attrs["default"] == "primary"
        assert f["entry/num_events/primary"][()] == n


def test_a_stream_of_configuration_alone_is_kept_and_leaves_the_writer_free(tmp_path):
    """A stream whose objects carry configuration and no data."""
    writer = HDF5Writer(tmp_path)
    run = event_model.compose_run(metadata={"plan_name": "count"})
    writer("start", run.start_doc)
    key = {"source": "hand", "dtype": "string", "shape": []}
    configuration = {"valve": {"data": {"firmware": "1.2"}, "timestamps": {"firmware": 0.0},
                               "data_keys": {"firmware": key}}}
    bundle = run.compose_descriptor(name="settings", data_keys={}, configuration=configuration)
    writer("descriptor", bundle.descriptor_doc)
    writer("event", bundle.compose_event(data={}, timestamps={}))
    time.sleep(2 * writer_module.ROWS_MAX_AGE)  # nothing was buffered: the flush thread has nothing to do
    assert writer._lock.acquire(timeout=5), "the flush thread holds the writer"
    writer._lock.release()
    writer("stop", run.compose_stop())
    with h5py.File(writer.path, "r") as f:
        assert text(f["entry/instrument/valve/firmware"]) == "1.2" and "settings" not in f["entry"]
        assert f["entry/num_events/settings"][()] == 1


def test_settings_in_the_start_document_are_kept_as_the_instrument_groups(tmp_path):
    """A plan's `settings` (shaped as a descriptor's configuration) land where a descriptor's would."""
    writer = HDF5Writer(tmp_path)
    number = {"source": "hand", "dtype": "number", "shape": [], "units": "mm"}
    settings = {"stage": {"data": {"travel": 150.0, "model": "X-LSM"}, "timestamps": {"travel": 12.5, "model": 12.0},
                          "data_keys": {"travel": number, "model": {"source": "hand", "dtype": "string", "shape": []}}}}
    run = event_model.compose_run(metadata={"plan_name": "count", "settings": settings})
    writer("start", run.start_doc)
    writer("stop", run.compose_stop())
    with h5py.File(writer.path, "r") as f:
        stage = f["entry/instrument/stage"]
        assert stage.attrs["NX_class"] == "NXcollection"
        assert stage["travel"][()] == 150.0 and stage["travel"].attrs["units"] == "mm"
        assert stage["travel"].attrs["timestamp"] == 12.5 and text(stage["model"]) == "X-LSM"


def test_buffered_rows_are_flushed_within_the_bound_when_no_document_follows(tmp_path):
    writer = HDF5Writer(tmp_path / "runs")
    run, descriptor = _start_scalar_run(writer)
    _send_rows(writer, descriptor, range(3))
    assert len(_rows_on_disk(writer, tmp_path)) == 0  # still in flight

    time.sleep(2 * writer_module.ROWS_MAX_AGE)  # the writer is idle: its flush thread writes them
    np.testing.assert_array_equal(_rows_on_disk(writer, tmp_path), [0, 1, 2])
    writer("stop", run.compose_stop())


KILLED_CHILD = """
import sys, time
import event_model
from quenchlab.record.writer import HDF5Writer, ROWS_MAX_AGE

writer = HDF5Writer(sys.argv[1])
run = event_model.compose_run(metadata={"plan_name": "count"})
writer("start", run.start_doc)
x_key = {"source": "hand", "dtype": "number", "shape": []}
descriptor = run.compose_descriptor(name="primary", data_keys={"x": x_key})
writer("descriptor", descriptor.descriptor_doc)

def send(xs):
    for x in xs:
        writer("event", descriptor.compose_event(data={"x": float(x)}, timestamps={"x": 0.0}))

send(range(100))
time.sleep(2 * ROWS_MAX_AGE)  # these rows are now older than the bound
send(range(100, 150))  # these are in flight when the parent kills
print(writer.path, flush=True)
time.sleep(60)
"""


def test_sigkill_loses_no_row_older_than_the_bound(tmp_path):
    command = [sys.executable, "-c", KILLED_CHILD, str(tmp_path)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        path = child.stdout.readline().strip()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert path, "the child died before sending its rows"
    assert child.returncode == -signal.SIGKILL

    with h5py.File(path, "r") as f:
        x = f["entry/primary/x"][:]
        assert 100 <= len(x) <= 150
        np.testing.assert_array_equal(x, np.arange(len(x)))
        np.testing.assert_array_equal(f["entry/primary/seq_num"][:], np.arange(1, len(x) + 1))
        assert "exit_status" not in f["entry"]


def test_process_rows_arrive_in_blocks_and_are_appended_to_one_table(RE, writer, docs):
    """The process logger's collect is one event holding every row since the last one; the
    writer appends the rows (numbers and text) to one table whose axis is reactor time."""
    clock = ReactorClock(200)
    readings = iter(range(10_000))

    def source():
        n = next(readings)
        return {"flow": float(n), "status": f"S{n % 3}"}

    logger = ProcessLogger([source], {"flow": "L/min"}, clock, period=1.0)

    @bpp.run_decorator(md={"plan_name": "logged"})
    def plan():
        yield from bps.kickoff(logger, wait=True)
        for _ in range(3):
            yield from bps.sleep(0.03)
            yield from bps.collect(logger)
        logger.halt()
        yield from bps.collect(logger)

    RE(plan())
    blocks = [doc for name, doc in docs if name == "event_page"]
    assert 2 <= len(blocks) <= 4 and all(len(doc["seq_num"]) == 1 for doc in blocks)  # one event per collect
    sent = [row for doc in blocks for row in doc["data"]["flow"][0]]
    with h5py.File(writer.path, "r") as f:
        table = f["entry/process"]
        assert table.attrs["axes"] == "reactor_time" and table.attrs["signal"] == "flow"
        np.testing.assert_array_equal(table["flow"][()], sent)
        assert list(table["status"].asstr()[()]) == [f"S{int(n) % 3}" for n in sent]
        t = table["reactor_time"][()]
        assert len(t) == len(sent) > 3 and np.all(np.diff(t) > 0.5)
        assert table["flow"].attrs["units"] == "L/min" and table["reactor_time"].attrs["units"] == "s"
        assert f["entry/num_events/process"][()] == len(blocks)
