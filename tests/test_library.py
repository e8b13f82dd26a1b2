"""Sample libraries: files, pre-flight, a valve-switched run on the twins, failures, resume."""
import csv
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from conftest import CONFIGS, QUENCHLAB
from quenchlab.config.aerosol import load_aerosol_config
from quenchlab.errors import ConfigError, QuenchlabError
from quenchlab.library.preflight import aerosol_forecast, aerosol_slots
from quenchlab.library.rows import load_library
from quenchlab.library.runner import Progress, run_library
from quenchlab.reactor.aerosol import AerosolReactor

AEROSOL = CONFIGS / "aerosol-sim.yaml"
SYRINGE = CONFIGS / "aerosol-syringe-sim.yaml"
SPEED = 100.0
LATENCY = 0.05 * SPEED  # reactor seconds that 50 ms of host latency (a busy 2-core machine) become


def write_library(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def short_library(tmp_path: Path, count: int = 3, dwell: str = "90 s") -> Path:
    return write_library(tmp_path / "short.csv", [{"sample_id": f"S{i:02d}", "port": str(i % 9 + 1), "dwell": dwell}
                                                  for i in range(1, count + 1)])


@pytest.fixture
def config():
    return load_aerosol_config(AEROSOL)[0]


@pytest.fixture
def syringe_config():
    return load_aerosol_config(SYRINGE)[0]


# --- files and pre-flight ----------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("sample_id,port\nA1,1\nA1,2\n", r"row 3 \(sample_id A1\): field sample_id: 'A1' is already used by row 2"),
    ("sample_id,port,colour\nA1,1,red\n",
     r"row 2 \(sample_id A1\): field colour: unknown key; allowed keys: sample_id"),
    ("sample_id\nA1\n", r"field port: missing \(required\)"),
    ("sample_id,port,dwell\nA1,1,5\n", r"field dwell: needs a unit, e.g. '5 s'"),
    ("sample_id,port,dwell\nA1,1,5 kg\n", r"field dwell: '5 kg' is not convertible to s"),
    ("sample_id,port\nA 1,1\n", r"field sample_id: String should match pattern"),
    ("sample_id,port\nA1,1,extra\n", r"row 2: more cells than the header has columns"),
    ("", r"empty file"),
])
def test_bad_library_rows_are_named(tmp_path, text, expected):
    path = tmp_path / "lib.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected) as error:
        load_library(path, "aerosol")
    assert str(error.value).startswith(str(path))


def test_yaml_library_matches_csv(tmp_path):
    path = tmp_path / "lib.yaml"
    path.write_text(yaml.safe_dump({"samples": [{"sample_id": "Y1", "port": 3, "dwell": "4 min",
                                                 "liquid_flow": "4 mL/min"}]}))
    row, = load_library(path, "aerosol")
    assert (row.port, row.dwell, row.liquid_flow) == (3, 240.0, 4.0)


def test_preflight_forecasts_duration_liquid_and_gas(config, tmp_path):
    rows = load_library(CONFIGS / "libraries" / "aerosol-day-288.csv", "aerosol")
    slots = aerosol_slots(rows, config, "day")
    forecast = aerosol_forecast(slots, config, "day")
    assert len(slots) == 288 and forecast.duration == pytest.approx(24 * 3600)
    assert forecast.liquid[1] == pytest.approx(32 * 299 / 60 * 5)  # 32 slots spraying all but the valve's turn
    assert sum(forecast.gas.values()) == pytest.approx((5 + 1.5 + 3.2 + 5) * 24 * 60)
    assert slots[0].flush == pytest.approx(4 * (0.2 + 0.3) / 5 * 60)  # 4 dead volumes (line, head, damper)
    assert [s.position for s in slots[:3]] == ["A1", "A2", "A3"] and slots[-1].position == "L24"
    assert forecast.moves == pytest.approx(sum(s.budget.moves for s in slots)) and 0 < forecast.moves / 288 < 10


@pytest.mark.parametrize("rows, expected", [
    ([{"sample_id": "A", "port": "11"}], r"field port: Input should be less than or equal to|holds no reservoir"),
    ([{"sample_id": "A", "port": "1", "liquid_flow": "9 mL/min"}],
     r"liquid_flow: 9 mL/min is outside the allowed band 1-8 mL/min"),
    ([{"sample_id": "A", "port": "1", "liquid_flow": "0.1 mL/min"}],
     r"liquid_flow: 0.1 mL/min is outside the allowed band"),
    ([{"sample_id": "A", "port": "1", "dwell": "30 s"}], r"field dwell: 30 s leaves no time to collect"),
    ([{"sample_id": f"A{i}", "port": "1", "dwell": "60 min"} for i in range(4)],
     r"reservoir 1 \(Fe\(NO3\)3 .*\) would run dry: the library needs 1199.7 mL, it holds 1000.0 mL"),
])
def test_preflight_refuses_a_library_that_cannot_run(config, tmp_path, rows, expected):
    config = config.model_copy(update={"plate": config.plate.model_copy(update={"capacity": 1e6})})  # checked apart
    path = write_library(tmp_path / "bad.csv", rows)
    with pytest.raises(ConfigError, match=expected):
        slots = aerosol_slots(load_library(path, "aerosol"), config, str(path))
        aerosol_forecast(slots, config, str(path))


def test_preflight_command_touches_no_instrument(tmp_path):
    """The config's instruments are twins that are never started: pre-flight needs none."""
    result = subprocess.run([QUENCHLAB, "library", AEROSOL, CONFIGS / "libraries" / "aerosol-few.csv", "--preflight"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "5 samples, 24.0 min of reactor time" in result.stdout and "no instrument was touched" in result.stdout
    assert not (tmp_path / "data").exists()


# --- a run on the twins ------------------------------------------------------------------
def run_short(config, tmp_path, count=3, twins_in_process=True):
    library = short_library(tmp_path, count)
    slots = aerosol_slots(load_library(library, "aerosol"), config, str(library))
    reactor = AerosolReactor(config, simulate=True, speed=SPEED, twins_in_process=twins_in_process)
    return reactor, slots, library


def test_valve_switched_library_records_every_sample(config, tmp_path):
    """Twins in their own process, as for a dry run from the command line."""
    reactor, slots, library = run_short(config, tmp_path, twins_in_process=False)
    with reactor:
        result = run_library(reactor, slots, library=library, data_dir=tmp_path, resume=False, md={})
        assert reactor.safe_readback() == {"pump": "stopped", "valve_port": config.instruments.valve.safe_port,
                                           "shutter": "closed", "collector": "145.00 mm, 90.00 mm"}
    assert set(result.states.values()) == {"done"}
    files = sorted(result.directory.glob("*.h5"))
    assert len(files) == 3
    for slot, path in zip(slots, files):
        with h5py.File(path, "r") as f:
            entry = f["entry"]
            assert entry["sample/name"][()].decode() == slot.sample_id
            metadata = json.loads(entry["metadata"][()])
            assert metadata["port"] == slot.row.port and metadata["speed"] == SPEED
            phases = [p.decode() for p in entry["phases/marker_phase"][()]]
            assert phases == ["waste", "switch", "flush", "settle", "position", "collect", "close", "end"]
            marks = dict(zip(phases, entry["phases/marker_reactor_time"][()]))
            assert marks["flush"] - marks["switch"] < LATENCY  # the pump stopped, the valve moved and was confirmed
            assert marks["settle"] - marks["flush"] == pytest.approx(slot.flush, abs=LATENCY)
            assert marks["end"] - marks["switch"] == pytest.approx(slot.dwell, abs=LATENCY)
            assert (entry["sample/position"][()].decode() == slot.position
                    and entry["sample/plate"][()] == b"sim-plate-001")
            collected = entry["collection/collection_collected"][()][0]
            assert collected == pytest.approx(marks["close"] - marks["collect"])
            assert (entry["collection/collection_powder"][()][0]
                    == pytest.approx(5.0 / 60 * collected * 0.02 * 0.6 * 1e3))
            assert {"valve", "pump", "collector", "mfc_dispersion", "filter_gauge",
                    "flame_pyrometer"} <= set(entry["instrument"])
            connected = entry["instrument/connections"]  # what each instrument said it is at connect
            assert set(connected) == {"valve", "pump", "collector", "gases-dispersion", "gases-pilot_fuel",
                                      "gases-pilot_oxidizer", "gases-sheath", "filter_gauge", "pyrometer"}
            assert connected["pump/identity"][()] == b"v2.04 SR3O firmware"
            assert connected["gases-sheath/address_kind"][()] == b"serial port"
            process = entry["process"]
            assert f.attrs["default"] == "entry" and entry.attrs["default"] == "process"
            assert process.attrs["signal"] == "flame_temperature" and process.attrs["axes"] == "reactor_time"
            t = process["reactor_time"][()]
            # 1 Hz in reactor time; a host hiccup (opening a file) shows as a gap of LATENCY at most
            assert np.median(np.diff(t)) == pytest.approx(1.0, abs=0.05) and np.diff(t).max() <= LATENCY
            assert len(t) >= slot.dwell - LATENCY
            collecting = (t > marks["collect"]) & (t < marks["close"])
            assert np.all(process["valve_port"][()][collecting] == slot.row.port)
            assert np.all(process["flame_temperature"][()][collecting] > 1200)
            assert process["reactor_time"].attrs["units"] == "s"
    manifest = list(csv.DictReader((result.directory / "manifest.csv").open()))
    assert [(m["sample_id"], m["state"]) for m in manifest] == [(s.sample_id, "done") for s in slots]
    assert all((result.directory / m["file"]).exists() for m in manifest)


def fail_on_first_sample(reactor, slots, library, tmp_path, fault):
    """Run the library, injecting `fault` into the twins as the first sample starts."""
    progress = Progress(sample=lambda sample_id, index, total: fault() if index == 0 else None)
    return run_library(reactor, slots, library=library, data_dir=tmp_path, resume=False, md={}, progress=progress)


def test_stuck_valve_fails_the_sample_clearly_and_leaves_the_line_safe(config, tmp_path):
    reactor, slots, library = run_short(config, tmp_path, count=2)
    with reactor:
        with pytest.raises(QuenchlabError, match=r"sample S01 failed: valve at .*did not reach port 2") as error:
            fail_on_first_sample(reactor, slots, library, tmp_path, reactor.twins.valve.stick)
        assert "--resume" in str(error.value)
        reactor.twins.world.advance()
        assert not reactor.twins.pump.flow_at(reactor.clock.now())
    manifest = list(csv.DictReader((tmp_path / "short" / "manifest.csv").open()))
    assert [(m["sample_id"], m["state"]) for m in manifest] == [("S01", "failed"), ("S02", "pending")]


def test_a_clogging_nozzle_fails_the_sample_and_the_library_goes_on(config, tmp_path):
    """The HPLC pump's upper-pressure fault belongs to the sample's liquid: it stops the pump, the
    line is made safe and prepared again (the solvent clears the nozzle), the next sample runs."""
    reactor, slots, library = run_short(config, tmp_path, count=2)
    with reactor:
        progress = Progress(sample=lambda sample_id, index, total: reactor.twins.pump.clog() if index == 0 else None,
                            done=lambda sample_id, state: reactor.twins.pump.unclog())
        result = run_library(reactor, slots, library=library, data_dir=tmp_path, resume=False, md={},
                             progress=progress)
        assert reactor.safe_readback()["pump"] == "stopped"
    assert result.states == {"S01": "failed", "S02": "done"} and result.completed == 1
    manifest = {m["sample_id"]: m for m in csv.DictReader((tmp_path / "short" / "manifest.csv").open())}
    assert re.search(r"pump at .*pump fault latched: pressure above the upper limit", manifest["S01"]["note"])


def test_a_second_run_refuses_to_overwrite(config, tmp_path):
    (tmp_path / "short").mkdir()
    (tmp_path / "short" / "journal.jsonl").write_text("")
    reactor, slots, library = run_short(config, tmp_path, count=1)
    with reactor, pytest.raises(QuenchlabError, match="already holds a run of this library: continue it with --resume"):
        run_library(reactor, slots, library=library, data_dir=tmp_path, resume=False, md={})


# --- killed and resumed ------------------------------------------------------------------
def journal_states(directory: Path) -> dict[str, str]:
    states = {}
    if (directory / "journal.jsonl").exists():
        for line in (directory / "journal.jsonl").read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                states[entry["sample_id"]] = entry["state"]
    return states


def test_killed_library_resumes_with_every_sample_recorded_once(tmp_path):
    library = short_library(tmp_path, count=4)
    command = [QUENCHLAB, "library", AEROSOL, library.name, "--sim", "--speed", str(SPEED),
               "--data-dir", "data"]  # as typed
    directory = tmp_path / "data" / "short"
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while journal_states(directory).get("S02") != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert journal_states(directory) == {"S01": "done", "S02": "running"}
    resumed = subprocess.run(command + ["--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert journal_states(directory) == {"S01": "done", "S02": "interrupted", "S03": "done", "S04": "done"}
    files = sorted(p.name for p in directory.glob("*.h5"))
    for sample_id in ("S01", "S03", "S04"):
        assert sum(name.endswith(f"_{sample_id}.h5") for name in files) == 1
    assert sum(name.endswith("_S02.h5") for name in files) <= 1  # the partial record, if it was begun
    manifest = {m["sample_id"]: m for m in csv.DictReader((directory / "manifest.csv").open())}
    assert (manifest["S02"]["state"] == "interrupted"
            and "stopped while this sample was running" in manifest["S02"]["note"])
    again = subprocess.run(command + ["--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and sorted(p.name for p in directory.glob("*.h5")) == files


def test_twins_command_serves_an_aerosol_line(tmp_path):
    process = subprocess.Popen([QUENCHLAB, "twins", AEROSOL], stdout=subprocess.PIPE, text=True)
    try:
        lines = [json.loads(process.stdout.readline()) for _ in range(4)]
        assert {line["name"] for line in lines} == {"valve", "pump", "gases", "pyrometer"}
        from quenchlab.devices.vici_driver import ViciValve
        valve = ViciValve(next(line["address"] for line in lines if line["name"] == "valve"))
        assert valve.positions() == 10
        valve.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_fjh_library_runs_one_recipe_per_sample(tmp_path):
    library = tmp_path / "fjh.csv"
    library.write_text("sample_id,recipe\nF1,recipe.yaml\nF2,recipe.yaml\n")
    (tmp_path / "recipe.yaml").write_text("name: quick\ncompliance: 50 V\nsegments:\n"
                                          "  - {level: 24 A, dwell: 6.5 ms}\n  - {level: 14.5 A, dwell: 20 ms}\n")
    result = subprocess.run([QUENCHLAB, "library", CONFIGS / "fjh-sim.yaml", library, "--sim", "--data-dir",
                             tmp_path / "data"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "data" / "fjh").glob("*.h5"))
    assert [f.name.rsplit("_", 1)[1] for f in files] == ["F1.h5", "F2.h5"]
    with h5py.File(files[0], "r") as f:
        assert f["entry/recipe"][()].decode().startswith("name: quick")
        assert f["entry/pulse/peak_temperature"].shape == (1,)


def test_fjh_preflight_forecasts_pulses_energy_duration_and_record_size(tmp_path):
    """Per sample and in total, touching no instrument (there is no --sim: a real rig's config
    would do the same); the record size is an estimate, checked against a real record."""
    library = tmp_path / "fjh.csv"
    library.write_text("sample_id,recipe\nF1,thin-film-2000K.yaml\nF2,thin-film-2000K-kelvin.yaml\n")
    for name in ("thin-film-2000K.yaml", "thin-film-2000K-kelvin.yaml"):
        (tmp_path / name).write_text((CONFIGS / "recipes" / name).read_text())
    result = subprocess.run([QUENCHLAB, "library", CONFIGS / "fjh-sim.yaml", library, "--preflight"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
            for line in result.stdout.splitlines() if line.startswith("│")}
    # thin film: 3 pulses of 6.5 ms at 24 A, 48.5 ms at 14.5 A and a 2 ms ramp, 50 V compliance
    assert rows["F1"][1:4] == ["3", "165.0", "129"]
    assert rows["F2"][1] == "7"  # the calibration pulse and six profile pulses
    assert rows["total"][1] == "10"
    assert "2 samples, 9.8 s of reactor time" in result.stdout and "pre-flight passed" in result.stdout
    recorded = subprocess.run([QUENCHLAB, "run", CONFIGS / "fjh-sim.yaml", tmp_path / "thin-film-2000K.yaml", "--sim",
                               "--data-dir", tmp_path / "data"], capture_output=True, text=True, timeout=120)
    assert recorded.returncode == 0, recorded.stderr
    size, = [path.stat().st_size for path in (tmp_path / "data").glob("*.h5")]
    assert 0.5 < float(rows["F1"][5]) * 1e6 / size < 2


def test_fjh_library_with_a_recipe_over_the_limits_is_refused(tmp_path):
    library = tmp_path / "fjh.csv"
    library.write_text("sample_id,recipe\nF1,hot.yaml\n")
    (tmp_path / "hot.yaml").write_text("name: hot\ncompliance: 50 V\nsegments:\n  - {level: 30 A, dwell: 50 ms}\n")
    result = subprocess.run([QUENCHLAB, "library", CONFIGS / "fjh-sim.yaml", library, "--preflight"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "sample F1: field recipe:" in result.stderr and "75 J" in result.stderr


def test_valve_switched_sequence_with_a_plain_run_engine(config, tmp_path):
    from bluesky import RunEngine

    from quenchlab.plans.sequences import valve_switched_sequence
    from quenchlab.record.writer import HDF5Writer
    reactor, slots, _ = run_short(config, tmp_path, count=2)
    engine = RunEngine({})
    engine.subscribe(HDF5Writer(tmp_path / "records"))
    with reactor:
        reactor.prepare()
        engine(valve_switched_sequence(reactor, slots))
        assert reactor.safe() == []
        reactor.twins.world.advance()
        assert reactor.twins.valve.port_at(reactor.clock.now()) == config.instruments.valve.safe_port
    assert sorted(p.name.rsplit("_", 1)[1] for p in (tmp_path / "records").glob("*.h5")) == ["S01.h5", "S02.h5"]


def test_a_pump_that_does_not_keep_its_safe_mode_timeout_is_refused(syringe_config):
    """The protection quenchlab programs is read back before the line runs unattended."""
    with AerosolReactor(syringe_config, simulate=True, speed=SPEED, twins_in_process=True) as reactor:
        pump = reactor.twins.pump
        keep = pump._cmd_saf
        pump._cmd_saf = lambda argument, now: keep(argument and str(min(int(argument), 5)), now)  # caps it at 5 s
        with pytest.raises(ConfigError, match=r"instruments.pump.safe_mode is 10 s but the pump reports 5 s"):
            reactor.prepare()
        pump.world.advance()
        assert not pump.flow_at(pump.world.time)
