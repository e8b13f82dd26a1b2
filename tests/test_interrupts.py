"""Signals during a run or a library, wherever they land: an interrupt interrupts, never destroys.

In-process tests send the process itself a real signal at a chosen point (a message the
RunEngine takes, a phase, the end of a sample); the command-line test signals a library's
whole process group, as a terminal's Ctrl-C does."""
import csv
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import h5py
import pytest
from bluesky import plan_stubs as bps

from conftest import CONFIGS
from quenchlab.config.aerosol import load_aerosol_config
from quenchlab.config.fjh import load_config
from quenchlab.errors import QuenchlabError
from quenchlab.library.preflight import aerosol_slots
from quenchlab.library.rows import load_library
from quenchlab.library.runner import LibraryStopped, Progress, run_library
from quenchlab.reactor.aerosol import AerosolReactor
from quenchlab.recipes.load import load_recipe
from quenchlab.run.engine import run_engine
from quenchlab.run.interrupts import Interrupts
from quenchlab.run.outcome import run_once
from quenchlab.run.session import Inputs, run_recipe
from quenchlab.sim.aerosol_twins import AerosolTwins
from quenchlab.sim.twin_process import TwinProcess
from test_exit_paths import start
from test_library import AEROSOL, QUENCHLAB, SPEED, short_library

SAFE = {"pump": "stopped", "valve_port": 10, "shutter": "closed", "collector": "145.00 mm, 90.00 mm"}  # on waste
SAFE_TEXT = "the line is in its safe state (read back: " + ", ".join(f"{k} {v}" for k, v in SAFE.items()) + ")"


class SignalAt(Interrupts):
    """Sends this process `number` once, as the RunEngine takes a message with `command`."""

    def __init__(self, command: str, number: int = signal.SIGINT):
        super().__init__()
        self.command, self.number, self.sent = command, number, False

    def _follow(self, msg) -> None:
        super()._follow(msg)
        if msg.command == self.command and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.number)


def kill_self(number: int = signal.SIGINT) -> None:
    os.kill(os.getpid(), number)


@pytest.fixture
def line(tmp_path):
    """(reactor, run(progress, interrupts, count)) for a short aerosol library on in-process twins."""
    config = load_aerosol_config(AEROSOL)[0]
    reactor = AerosolReactor(config, simulate=True, speed=SPEED, twins_in_process=True)

    def run(progress=Progress(), interrupts=None, count=3):
        library = short_library(tmp_path, count)
        slots = aerosol_slots(load_library(library, "aerosol"), config, str(library))
        return run_library(reactor, slots, library=library, data_dir=tmp_path, resume=False, md={},
                           progress=progress, interrupts=interrupts)
    with reactor:
        yield reactor, run


def manifest(directory: Path) -> list[dict]:
    return list(csv.DictReader((directory / "manifest.csv").open()))


def journal_entries(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "journal.jsonl").read_text().splitlines()]


def exit_status(path: Path) -> tuple[str, str]:
    with h5py.File(path, "r") as f:
        reason = f["entry/reason"][()].decode() if "reason" in f["entry"] else ""
        return f["entry/exit_status"][()].decode(), reason


# --- where the signal lands -------------------------------------------------------------------
@pytest.mark.parametrize("number, reason", [(signal.SIGINT, "interrupted by the user"), (signal.SIGTERM, "terminated")])
def test_a_signal_mid_sample_interrupts_it_and_stops_the_library_safe(line, tmp_path, number, reason):
    reactor, run = line
    before = signal.getsignal(number)
    with pytest.raises(LibraryStopped, match=rf"^{reason}: sample S01 interrupted; stopped after 0 samples completed; "
                                             + re.escape(SAFE_TEXT)):
        run(Progress(phase=lambda phase: kill_self(number) if phase == "settle" else None))
    rows = manifest(tmp_path / "short")
    assert [(r["sample_id"], r["state"]) for r in rows] == [("S01", "interrupted"), ("S02", "pending"),
                                                            ("S03", "pending")]
    assert exit_status(tmp_path / "short" / rows[0]["file"]) == ("abort", reason)
    assert journal_entries(tmp_path / "short")[-1]["safe_state"] == SAFE
    assert signal.getsignal(number) == before  # handed back


def test_a_signal_after_the_end_mark_lets_the_sample_complete_and_no_next_one_start(line, tmp_path):
    reactor, run = line
    with pytest.raises(LibraryStopped, match=r"^interrupted by the user: stopped after 1 sample completed; the line"):
        run(interrupts=SignalAt("clear_checkpoint"))
    rows = manifest(tmp_path / "short")
    assert [(r["sample_id"], r["state"]) for r in rows] == [("S01", "done"), ("S02", "pending"), ("S03", "pending")]
    assert exit_status(tmp_path / "short" / rows[0]["file"]) == ("success", "")
    with h5py.File(tmp_path / "short" / rows[0]["file"], "r") as f:
        assert f["entry/process/reactor_time"].shape[0] >= 60  # its last page was collected


def test_a_signal_between_samples_stops_before_the_next_one(line, tmp_path):
    reactor, run = line
    with pytest.raises(LibraryStopped, match=r"^interrupted by the user: stopped after 1 sample completed"):
        run(Progress(done=lambda sample_id, state: kill_self() if sample_id == "S01" else None))
    assert [r["state"] for r in manifest(tmp_path / "short")] == ["done", "pending", "pending"]


def test_a_signal_before_the_run_began_leaves_nothing_begun():
    interrupts, starts = Interrupts(), []
    with interrupts, run_engine() as engine, interrupts.running(engine):
        engine.subscribe(lambda name, doc: starts.append(doc), "start")
        interrupts.received = signal.SIGINT  # as the handler notes it, just before the run
        outcome = run_once(engine, bps.open_run(), interrupts)
    assert outcome.state == "pending" and not starts


def test_a_ctrl_c_after_the_last_pulse_lets_the_run_complete(tmp_path):
    config, config_text = load_config(CONFIGS / "fjh-sim.yaml")
    recipe, recipe_text = load_recipe(CONFIGS / "recipes" / "thin-film-2000K.yaml")
    inputs = Inputs(config, config_text, "fjh-sim.yaml", recipe, recipe_text, "thin-film-2000K.yaml")
    with pytest.raises(QuenchlabError, match=r"^interrupted by the user after the last pulse: the run completed; "
                                             r"the supply output is off \(read back: supply_output off"):
        run_recipe(inputs, simulate=True, data_dir=tmp_path, interrupts=SignalAt("clear_checkpoint"))
    record, = tmp_path.glob("*.h5")
    assert exit_status(record) == ("success", "")
    with h5py.File(record, "r") as f:
        assert f["entry/pulse/peak_temperature"].shape == (3,)


# --- the instruments are not the terminal's ---------------------------------------------------
def test_dry_run_twins_live_in_a_session_of_their_own():
    config = load_aerosol_config(AEROSOL)[0]
    from quenchlab.clock import ReactorClock
    twins = TwinProcess(AerosolTwins, config, ReactorClock(SPEED))
    try:
        child = twins._process.pid
        assert os.getsid(child) == child != os.getsid(0) and os.getpgid(child) != os.getpgid(0)
    finally:
        twins.close()


def test_ctrl_c_to_the_process_group_then_retry_into_a_new_record(tmp_path):
    """As a user would: Ctrl-C in the terminal mid-sample, then the sample run again."""
    library = short_library(tmp_path, count=3)
    command = [QUENCHLAB, "library", AEROSOL, library.name, "--sim", "--speed", str(SPEED), "--data-dir", "data"]
    directory = tmp_path / "data" / "short"
    process = start(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
            e["sample_id"] == "S02" and e["state"] == "running" for e in _entries(directory)):
        time.sleep(0.01)
    time.sleep(0.2)  # into the sample
    os.killpg(process.pid, signal.SIGINT)
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == 2 and "Traceback" not in stderr, stderr
    assert stderr.startswith("error: interrupted by the user: sample S02 interrupted; stopped after 1 sample "
                             f"completed; {SAFE_TEXT}")
    assert journal_entries(directory)[-1]["safe_state"] == SAFE
    first = {r["sample_id"]: r for r in manifest(directory)}["S02"]
    assert (first["state"] == "interrupted"
            and exit_status(directory / first["file"]) == ("abort", "interrupted by the user"))
    kept = (directory / first["file"]).read_bytes()

    again = subprocess.run(command + ["--retry", "S02"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    rows = [(r["sample_id"], r["attempt"], r["current"], r["state"]) for r in manifest(directory)]
    assert rows == [("S01", "1", "yes", "done"), ("S02", "1", "no", "interrupted"), ("S02", "2", "yes", "done"),
                    ("S03", "", "no", "pending")]
    files = sorted(p.name for p in directory.glob("*.h5"))
    assert [name.split("_")[1] for name in files] == ["scan0001", "scan0002", "scan0003"]  # numbers go on
    assert (directory / first["file"]).read_bytes() == kept
    resumed = subprocess.run(command + ["--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0 and "3 done" in resumed.stdout, resumed.stderr
    wide = {**os.environ, "COLUMNS": "250"}  # a terminal wide enough that no cell wraps
    shown = subprocess.run([QUENCHLAB, "inspect", directory], capture_output=True, text=True, timeout=60,
                           env=wide).stdout
    shown = " ".join(shown.split())
    assert "3 samples, 4 attempts (3 done, 1 interrupted)" in shown
    assert re.search(r"S02 \(.* @ A2\) │ 1 │ no │ interrupted │.*│ interrupted by the user", shown), shown
    assert re.search(r"S02 #2 \(.* @ A3\) │ 2 │ yes │ done │", shown), shown


def _entries(directory: Path) -> list[dict]:
    try:
        return journal_entries(directory)
    except (FileNotFoundError, json.JSONDecodeError):  # not yet written, or a line being written
        return []
