"""The aerosol line as a 288-sample machine: each sample on its own plate position behind a
shutter, liquid that runs out (a syringe refilled through check valves, or an HPLC pump), and
pre-flight that refuses what cannot fit. Twins over real pseudo-terminals, records read back."""
import subprocess

import h5py
import pytest

from conftest import CONFIGS
from quenchlab.config.aerosol import load_aerosol_config
from quenchlab.config.plate import PlateLedger
from quenchlab.devices.ne1000_device import SyringeShortfall
from quenchlab.errors import ConfigError
from quenchlab.library.preflight import aerosol_forecast, aerosol_slots
from quenchlab.library.rows import load_library
from quenchlab.library.runner import LibraryStopped, Progress, run_library
from quenchlab.reactor.aerosol import AerosolReactor
from test_interrupts import manifest
from test_library import AEROSOL, QUENCHLAB, SPEED, SYRINGE, short_library, write_library


def line(config_path, library):
    """(reactor, slots) of `library` on in-process twins (tests reach into them)."""
    config = load_aerosol_config(config_path)[0]
    slots = aerosol_slots(load_library(library, "aerosol"), config, str(library))
    return AerosolReactor(config, simulate=True, speed=SPEED, twins_in_process=True), slots


def run(reactor, slots, library, tmp_path, progress=Progress(), **options):
    return run_library(reactor, slots, library=library, data_dir=tmp_path, resume=False, md={}, progress=progress,
                       **options)


def record(tmp_path, row) -> dict:
    """What a sample's record says (a run cut short has no collection, or no process data)."""
    with h5py.File(tmp_path / "short" / row["file"], "r") as f:
        entry = f["entry"]
        phases = [p.decode() for p in entry["phases/marker_phase"][()]] if "phases" in entry else []
        return {"exit_status": entry["exit_status"][()].decode(), "phases": phases,
                "marks": dict(zip(phases, entry["phases/marker_reactor_time"][()])) if phases else {},
                "position": entry["sample/position"][()].decode(),
                "powder": entry["collection/collection_powder"][()][0] if "collection" in entry else None,
                "process": {k: entry["process"][k][()] for k in entry["process"]} if "process" in entry else {}}


@pytest.mark.parametrize("config_path, phases", [
    (AEROSOL, ["waste", "switch", "flush", "settle", "position", "collect", "close", "end"]),
    (SYRINGE, ["waste", "switch", "prime", "refill", "flush", "settle", "position", "collect", "close", "end"])],
    ids=["hplc", "syringe"])
def test_each_sample_lands_on_its_own_position_and_nowhere_else(tmp_path, config_path, phases):
    library = short_library(tmp_path, 3, dwell="150 s")  # a syringe's change-over takes a minute
    reactor, slots = line(config_path, library)
    with reactor:
        result = run(reactor, slots, library, tmp_path)
    assert set(result.states.values()) == {"done"}
    deposits = reactor.twins.world.deposits
    for row, position, port in zip(manifest(tmp_path / "short"), ("A1", "A2", "A3"), (2, 3, 4)):
        sample = record(tmp_path, row)
        assert sample["exit_status"] == "success" and sample["phases"] == phases and sample["position"] == position
        tally = deposits[position]  # the world's own tally: powder lands only while this sample collects
        assert sample["marks"]["collect"] <= tally["first"] and tally["last"] <= sample["marks"]["close"]
        # the rest: the last precursor's tail at the nozzle (mixing)
        assert tally["ports"][port] / tally["grams"] > 0.99
        assert sample["powder"] == pytest.approx(tally["grams"] * 1e3, rel=0.05)  # what quenchlab reckons from its log
    assert set(deposits) == {"A1", "A2", "A3", "shutter"}  # flushes and transitions went onto the closed shutter


def test_a_syringe_refills_for_each_slot_and_never_runs_dry(tmp_path):
    library = short_library(tmp_path, 2, dwell="150 s")
    reactor, slots = line(SYRINGE, library)
    with reactor:
        result = run(reactor, slots, library, tmp_path)
    assert set(result.states.values()) == {"done"}
    pump = reactor.config.instruments.pump
    for row in manifest(tmp_path / "short"):
        sample = record(tmp_path, row)
        content = sample["process"]["pump_content"]
        assert 0 <= content.min() and content.max() <= pump.capacity
        assert content.max() > 5.0  # a slot's charge: what it sprays after its change-over, at 5 mL/min
    assert reactor.twins.pump.content < pump.margin + 0.5  # the margin, and the spray's last seconds not sprayed


def test_a_syringe_that_runs_empty_fails_the_sample(tmp_path):
    """The plunger slips while collecting: the syringe meets the end of its travel before the
    counters say it should, the pump stalls (alarm S); the sample is failed, never recorded as
    delivered, and the next one, its syringe emptied to the end of travel again, runs."""
    def slip(phase):
        if phase == "collect" and not slipped:
            reactor.twins.pump.slip(reactor.twins.pump.content - 0.2)
            slipped.append(True)
    slipped = []
    library = short_library(tmp_path, 2, dwell="150 s")
    reactor, slots = line(SYRINGE, library)
    with reactor:
        result = run(reactor, slots, library, tmp_path, Progress(phase=slip))
    rows = manifest(tmp_path / "short")
    assert result.states == {"S01": "failed", "S02": "done"}
    assert "alarm S (motor stalled)" in rows[0]["note"] and record(tmp_path, rows[0])["exit_status"] != "success"


def test_a_dry_reservoir_fails_the_sample_its_flame_falls(tmp_path):
    """An HPLC pump draws air from a dry reservoir and cannot tell: the flame loses its liquid."""
    def dry(phase):
        if phase == "collect" and reactor.twins.world.reservoirs[3] > 0:
            reactor.twins.world.reservoirs[3] = 0.0
    library = write_library(tmp_path / "short.csv", [{"sample_id": "D1", "port": "3", "dwell": "120 s"},
                                                     {"sample_id": "D2", "port": "4", "dwell": "120 s"}])
    reactor, slots = line(AEROSOL, library)
    with reactor:
        result = run(reactor, slots, library, tmp_path, Progress(phase=dry))
    assert result.states == {"D1": "failed", "D2": "done"}
    assert "the flame fell to" in manifest(tmp_path / "short")[0]["note"]


def test_a_syringe_is_never_asked_to_draw_air_or_give_what_it_does_not_hold(tmp_path):
    config = load_aerosol_config(SYRINGE)[0]
    with AerosolReactor(config, simulate=True, speed=SPEED, twins_in_process=True) as reactor:
        pump = reactor.pump
        before = reactor.pump_driver.dispensed()
        with pytest.raises(SyringeShortfall, match=r"withdrawing 61 mL into a syringe holding 0 mL would pass its "
                                                   r"60 mL capacity: it would draw air"):
            pump.dispense("WDR", 61.0, 15.0)
        with pytest.raises(SyringeShortfall, match=r"infusing 1 mL from a syringe holding 0 mL would run it empty"):
            pump.dispense("INF", 1.0, 5.0)
        assert reactor.pump_driver.dispensed() == before  # nothing moved


@pytest.mark.parametrize("when, safe_state", [
    ("collect", r"reaching the safe state failed: .*check the line by hand \(read back: pump stopped, valve_port 10, "
                r"shutter closed"),  # stalled on the sample's position: the stage cannot go back to waste
    ("position", r"the line is in its safe state \(read back: pump stopped, valve_port 10, shutter closed, "
                 r"collector 145.00 mm, 90.00 mm\)"),  # stalled before it left waste: it is where it parks
])
def test_a_collector_that_stalls_stops_the_night_with_the_shutter_closed(tmp_path, when, safe_state):
    def stall(phase):
        if phase == when:
            reactor.twins.collector.stall()
    library = short_library(tmp_path, 2)
    reactor, slots = line(AEROSOL, library)
    with reactor:
        with pytest.raises(LibraryStopped, match=r"^sample S01 failed: collector at \S+: stalled .*the library stops: "
                                                 r"a failure of the line.*" + safe_state):
            run(reactor, slots, library, tmp_path, Progress(phase=stall))
        assert not reactor.twins.collector.where(reactor.clock.now())[2]  # the shutter is closed


def test_a_retried_sample_gets_a_new_position(tmp_path):
    library = short_library(tmp_path, 1)
    reactor, slots = line(AEROSOL, library)
    with reactor:
        first = run(reactor, slots, library, tmp_path, Progress(sample=lambda *_: reactor.twins.pump.clog()))
        reactor.twins.pump.unclog()
        again = run(reactor, slots, library, tmp_path, retry=["S01"])
    assert first.states == {"S01": "failed"} and again.states == {"S01": "done"}
    rows = manifest(tmp_path / "short")
    assert [record(tmp_path, row)["position"] for row in rows] == ["A1", "A2"]
    ledger = PlateLedger(tmp_path, reactor.config.plate).used
    assert [(p, e["sample_id"], e["attempt"]) for p, e in ledger.items()] == [("A1", "S01", 1), ("A2", "S01", 2)]


# --- pre-flight ------------------------------------------------------------------------------------
@pytest.mark.parametrize("rows, used, expected", [
    ([{"sample_id": "P1", "port": "1", "position": "M1"}], set(), r"sample P1: field position: 'M1' is not a position "
                                                                  r"of plate sim-plate-001 \(A1 to L24\)"),
    ([{"sample_id": "P1", "port": "1", "position": "B7"}], {"B7"}, r"sample P1: field position: B7 of plate "
                                                                   r"sim-plate-001 is already used"),
    ([{"sample_id": f"P{i}", "port": "1"} for i in range(3)], {p for p in [f"{r}{c}" for r in "ABCDEFGHIJKL"
                                                                            for c in range(1, 25)]} - {"L24"},
     r"the library needs 3 new positions; plate sim-plate-001 has 1 free of 288"),
    ([{"sample_id": "P1", "port": "1", "dwell": "60 min", "liquid_flow": "8 mL/min"}], set(),
     r"sample P1: about \S+ mg of powder would land on position A1, which holds 400 mg \(plate.capacity\)"),
])
def test_preflight_refuses_positions_that_cannot_take_the_sample(tmp_path, rows, used, expected):
    config = load_aerosol_config(AEROSOL)[0]
    path = write_library(tmp_path / "lib.csv", rows)
    with pytest.raises(ConfigError, match=expected):
        aerosol_slots(load_library(path, "aerosol"), config, str(path), used=used)


def test_preflight_refuses_a_slot_the_syringe_cannot_hold(tmp_path):
    path = write_library(tmp_path / "long.csv", [{"sample_id": "LONG", "port": "1", "dwell": "20 min"},
                                                 {"sample_id": "OK", "port": "2", "dwell": "3 min"}])
    result = subprocess.run([QUENCHLAB, "library", SYRINGE, path, "--preflight"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "OK" not in result.stderr.split("LONG", 1)[1]
    assert "sample LONG: the slot needs 0.75 mL to prime and" in result.stderr
    assert "more than the 60 mL syringe (instruments.pump.capacity) holds" in result.stderr


def test_preflight_forecasts_the_day(tmp_path):
    result = subprocess.run([QUENCHLAB, "library", AEROSOL, CONFIGS / "libraries" / "aerosol-day-288.csv",
                             "--preflight", "--data-dir", tmp_path], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert ("288 samples, 24.00 h of reactor time" in text and "liquid per reservoir" in text
            and "gas per controller" in text)
    assert "plate sim-plate-001: positions A1 to L24 (288); powder" in text and "stage moves" in text
    config = load_aerosol_config(AEROSOL)[0]
    slots = aerosol_slots(load_library(CONFIGS / "libraries" / "aerosol-day-288.csv", "aerosol"), config, "day")
    assert len({s.position for s in slots}) == 288 and aerosol_forecast(slots, config, "day").refills == 0
