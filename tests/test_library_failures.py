"""What fails a sample and what stops the night; retries into new records, refused when asked wrongly."""
import json
import re
import subprocess

import pytest

from conftest import CONFIGS
from quenchlab.config.aerosol import load_aerosol_config
from quenchlab.devices.ne1000_driver import PumpAlarm
from quenchlab.errors import ConfigError, InstrumentError, LimitError
from quenchlab.library.journal import DONE, FAILED, INTERRUPTED, Journal
from quenchlab.library.preflight import aerosol_slots
from quenchlab.library.rows import load_library
from quenchlab.library.runner import LibraryStopped, Progress, run_library, select
from quenchlab.reactor.aerosol import AerosolReactor
from quenchlab.run.outcome import belongs_to_sample
from test_interrupts import SAFE, SAFE_TEXT, manifest
from test_library import AEROSOL, QUENCHLAB, SPEED, short_library


@pytest.fixture
def line(tmp_path):
    """(reactor, run(progress, count)) for a short aerosol library on in-process twins."""
    config = load_aerosol_config(AEROSOL)[0]
    reactor = AerosolReactor(config, simulate=True, speed=SPEED, twins_in_process=True)

    def run(progress, count=5):
        library = short_library(tmp_path, count)
        slots = aerosol_slots(load_library(library, "aerosol"), config, str(library))
        return run_library(reactor, slots, library=library, data_dir=tmp_path, resume=False, md={}, progress=progress)
    with reactor:
        yield reactor, run


def at_samples(indices, fault):
    """Progress that injects `fault()` as each sample whose index is in `indices` starts."""
    return Progress(sample=lambda sample_id, index, total: fault() if index in indices else None)


def states(tmp_path) -> list[tuple[str, str]]:
    return [(row["sample_id"], row["state"]) for row in manifest(tmp_path / "short")]


def clog(reactor):
    """The nozzle clogs: the HPLC pump's head pressure climbs past its upper limit (a sample's failure)."""
    return lambda: reactor.twins.pump.clog()


def test_a_sample_level_failure_fails_that_sample_and_the_rest_run(line, tmp_path):
    """The third sample's precursor clogs the nozzle; making the line safe and spraying the solvent
    again clears it (the twin is unclogged as the sample is recorded failed)."""
    reactor, run = line
    progress = Progress(sample=lambda sample_id, index, total: reactor.twins.pump.clog() if index == 2 else None,
                        done=lambda sample_id, state: reactor.twins.pump.unclog() if state == "failed" else None)
    result = run(progress)
    assert states(tmp_path) == [("S01", "done"), ("S02", "done"), ("S03", "failed"), ("S04", "done"), ("S05", "done")]
    assert result.completed == 4 and result.safe_state == SAFE
    assert "pressure above the upper limit" in manifest(tmp_path / "short")[2]["note"]


def test_a_pump_that_stalls_stops_the_night(line, tmp_path):
    """An HPLC pump's stall is mechanical: the line's failure (devices.ssi_driver.PumpFault)."""
    reactor, run = line
    with pytest.raises(LibraryStopped, match=r"^sample S02 failed: .*pump fault latched: motor stalled .*the library "
                                             r"stops: a failure of the line"):
        run(at_samples({1}, lambda: reactor.twins.pump.stall()))
    assert states(tmp_path)[:3] == [("S01", "done"), ("S02", "failed"), ("S03", "pending")]


def test_a_trip_on_the_third_sample_stops_the_night_there_with_the_line_safe(line, tmp_path):
    reactor, run = line
    samples = []

    def clog_the_third(phase):
        if phase == "flush" and len(samples) == 3:
            reactor.twins.world.collected = 200.0  # g of cake: far above the 50 kPa limit
    progress = Progress(sample=lambda sample_id, index, total: samples.append(sample_id), phase=clog_the_third)
    with pytest.raises(LibraryStopped, match=r"^sample S03 failed: interlock: filter_pressure = \S+ \(above its limit "
                                             r"of 50 kPa\) at reactor time \S+ s; the library stops: a failure of the "
                                             r"line, not of the sample; " + re.escape(SAFE_TEXT) +
                                             r"; continue with --resume, run S03 again with --retry S03"):
        run(progress)
    assert states(tmp_path) == [("S01", "done"), ("S02", "done"), ("S03", "failed"), ("S04", "pending"),
                                ("S05", "pending")]
    reactor.twins.world.advance()
    assert not reactor.twins.pump.flow_at(reactor.clock.now())
    last = json.loads((tmp_path / "short" / "journal.jsonl").read_text().splitlines()[-1])
    assert last["sample_id"] == "S03" and last["safe_state"] == SAFE


def test_failures_in_a_row_stop_the_night(line, tmp_path):
    reactor, run = line
    with pytest.raises(LibraryStopped, match=r"^3 samples failed in a row \(S02, S03, S04; library.stop_after_failures "
                                             r"is 3\); the last: .*pump fault latched: pressure above the upper limit"):
        run(at_samples({1}, clog(reactor)))  # and it stays clogged
    assert states(tmp_path) == [("S01", "done"), ("S02", "failed"), ("S03", "failed"), ("S04", "failed"),
                                ("S05", "pending")]


def test_a_line_that_cannot_be_prepared_again_stops_the_night(line, tmp_path, monkeypatch):
    reactor, run = line
    prepare, calls = reactor.prepare, []

    def prepare_once():
        calls.append(True)
        if len(calls) > 1:
            raise InstrumentError("gases", "COM3", "poll", "flows did not reach their setpoints within 30 s")
        prepare()
    monkeypatch.setattr(reactor, "prepare", prepare_once)
    with pytest.raises(LibraryStopped, match=r"^preparing the line again after sample S02 failed: gases at COM3: flows "
                                             r"did not reach .*; " + re.escape(SAFE_TEXT) +
                                             r"; continue with --resume, run S02 again"):
        run(at_samples({1}, clog(reactor)))
    assert states(tmp_path) == [("S01", "done"), ("S02", "failed"), ("S03", "pending"), ("S04", "pending"),
                                ("S05", "pending")]


@pytest.mark.parametrize("error, sample", [
    (PumpAlarm("pump", "COM1", "DIS", 0, "S"), True), (PumpAlarm("pump", "COM1", "DIS", 0, "O"), True),
    (PumpAlarm("pump", "COM1", "DIS", 0, "T"), False), (PumpAlarm("pump", "COM1", "DIS", 0, "R"), False),
    (LimitError("the learned pulse would take 80 J"), True), (TimeoutError("no reply"), False), (None, False)])
def test_what_belongs_to_the_sample(error, sample):
    assert belongs_to_sample(error) is sample


# --- retries -------------------------------------------------------------------------------------
@pytest.fixture
def ran(tmp_path):
    """A journal of samples A done, B failed, C interrupted, D pending (as runs leave it)."""
    journal = Journal(tmp_path / "run", list("ABCD"), resume=False, library=tmp_path / "lib.csv")
    for sample_id, state in zip("ABC", (DONE, FAILED, INTERRUPTED)):
        journal.begin(sample_id)
        journal.record(sample_id, state)
    samples = [type("Sample", (), {"sample_id": s}) for s in "ABCD"]
    yield journal, samples
    journal.close()


def ids(samples) -> str:
    return "".join(s.sample_id for s in samples)


def test_what_resume_and_retry_select(ran):
    journal, samples = ran
    assert ids(select(samples, journal, resume=True)) == "D"
    assert ids(select(samples, journal, resume=False, retry=["C", "A"])) == "AC"
    assert ids(select(samples, journal, resume=False, retry_states=[FAILED, INTERRUPTED])) == "BC"
    assert ids(select(samples, journal, resume=True, retry_states=[FAILED])) == "BD"


@pytest.mark.parametrize("asked, message", [
    ({"retry": ["Z"]}, r"--retry \(.*lib.csv\): Z: not a sample of this library"),
    ({"retry": ["D"]}, r"D has not run yet: pending samples are run by --resume, not --retry"),
    ({"retry_states": ["done"]}, r"--retry-state: done: allowed: failed, interrupted")])
def test_a_retry_asked_wrongly_is_refused(ran, asked, message):
    journal, samples = ran
    with pytest.raises(ConfigError, match=message):
        select(samples, journal, resume=False, **asked)


def test_an_fjh_retry_wants_fresh_samples_confirmed_before_any_instrument_is_touched(tmp_path):
    """The lab config's instruments are on addresses this machine does not have: the refusal
    comes before any connection is tried."""
    library = tmp_path / "fjh.csv"
    library.write_text(f"sample_id,recipe\nF1,{CONFIGS / 'recipes' / 'thin-film-2000K.yaml'}\n")
    journal = Journal(tmp_path / "data" / "fjh", ["F1"], resume=False, library=library)
    journal.begin("F1")
    journal.record("F1", FAILED)
    journal.close()
    result = subprocess.run([QUENCHLAB, "library", CONFIGS / "fjh-lab.example.yaml", library, "--retry", "F1",
                             "--data-dir", tmp_path / "data"], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "Confirm with --fresh-samples" in result.stderr, result.stderr
    assert "F1 ran before" in result.stderr
