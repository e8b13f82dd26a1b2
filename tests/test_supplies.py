"""The FJH rig on each of its supplies: a Genesys stepped by the host and a capacitor bank fired
by its controller, end to end on their twins (pseudo-terminals and TCP, no mocks) from the
command line, the record read back; every exit path leaves the output off or the bank dumped;
bad configs and recipes are refused before any instrument is touched."""
import socket
import subprocess
import threading
import time
from pathlib import Path

import bluesky.plan_stubs as bps
import h5py
import numpy as np
import pytest
import yaml
from bluesky import RunEngine
from bluesky.utils import FailedStatus, RunEngineInterrupted

from conftest import CONFIGS, QUENCHLAB, wall_timed
from quenchlab.analysis.pulse import pulse_energy
from quenchlab.config.fjh import load_config
from quenchlab.devices.flyers.host_timed_pulse import minimum_step
from quenchlab.errors import ConfigError, InstrumentError, LimitError
from quenchlab.plans.pulses import pulse_train
from quenchlab.plans.recipe import checked_plan
from quenchlab.plans.supply import compile_host_timed
from quenchlab.reactor.fjh import FJHReactor
from quenchlab.recipes.load import load_recipe
from quenchlab.recipes.shot import compile_shot
from quenchlab.run.engine import abort_run

GENESYS, CAPBANK = CONFIGS / "fjh-genesys-sim.yaml", CONFIGS / "fjh-capbank-sim.yaml"
HOST_TIMED, SHOT = CONFIGS / "recipes" / "thin-film-host-timed.yaml", CONFIGS / "recipes" / "carbon-paper-shot.yaml"


def quenchlab(*args, cwd):
    return subprocess.run([QUENCHLAB, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


def edited(source: Path, path: Path, edit) -> Path:
    """A copy of the YAML file `source` at `path`, changed by `edit(data)`."""
    data = yaml.safe_load(source.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data))
    return path


def run_recorded(cwd: Path, config: Path, recipe: Path, model: bytes, timing: bytes) -> h5py.File:
    """`quenchlab run CONFIG RECIPE --sim` in `cwd`; its record, open, once it names the supply
    model and the pulse timing of a successful run."""
    result = quenchlab("run", config, recipe, "--sim", cwd=cwd)
    assert result.returncode == 0, result.stderr
    (path,) = (cwd / "data").glob("*.h5")
    record = h5py.File(path, "r")
    assert record["entry/exit_status"][()] == b"success"
    assert record["entry/instrument/supply_model"][()] == model
    assert record["entry/instrument/pulse_timing"][()] == timing
    return record


# --- end to end from the command line ------------------------------------------------------------
@wall_timed
def test_a_genesys_recipe_runs_host_timed_and_is_recorded(tmp_path):
    recipe = load_recipe(HOST_TIMED)[0]
    with run_recorded(tmp_path, GENESYS, HOST_TIMED, b"tdk-genesys", b"host-timed") as f:
        entry = f["entry"]
        assert entry["instrument/supply/supply_ovp"][()] == 55.0
        levels, dwells = entry["instrument/pulse/pulse_levels"][()], entry["instrument/pulse/pulse_dwells"][()]
        assert list(levels[:2]) == [16.0, 11.0] and np.all(dwells >= minimum_step(19200))
        for n in (1, 2):
            pulse = entry[f"pulse_{n:04d}"]
            time_, temperature = pulse["time"][()], pulse["temperature"][()]
            supply_time, current, voltage = (pulse[k][()] for k in ("supply_time", "current", "voltage"))
            steps = pulse["step_time"][()]
            # each level was sent at its host-timed instant (within 5 ms), OUT 0 at the end
            assert steps == pytest.approx(np.concatenate(([0], np.cumsum(dwells))) + steps[0], abs=5e-3)
            assert 0 <= steps[0] < 0.01
            # host-polled readings with their times: the hold at 11 A, off after OUT 0
            hold = (supply_time > steps[1] + 0.005) & (supply_time < steps[2] - 0.005)
            assert hold.sum() > 10 and np.all(current[hold] == 11.0) and np.all(voltage[hold] > 0)
            assert current[0] == current[-1] == 0.0 and supply_time[0] < steps[0] and supply_time[-1] > steps[-1]
            # the pyrometer trace on the digitizer's time base: heated from the output going on
            assert np.nanmax(temperature) == pytest.approx(2120, abs=60)
            assert time_[np.argmax(np.isfinite(temperature))] == pytest.approx(steps[0], abs=0.01)
            assert entry["pulse/energy"][n - 1] == pytest.approx(pulse_energy(supply_time, current, voltage))
        assert np.all(entry["pulse/energy"][()] == pytest.approx(73, rel=0.1))
        assert entry["pulse/peak_temperature"].shape == (recipe.pulses,)


def test_a_capacitor_bank_shot_runs_and_is_recorded(tmp_path):
    with run_recorded(tmp_path, CAPBANK, SHOT, b"capbank", b"capacitor discharge") as f:
        entry = f["entry"]
        assert entry["instrument/pulse/pulse_capacitance"][()] == 0.06
        table = entry["pulse"]
        before, after = table["bank_voltage_before"][()], table["bank_voltage_after"][()]
        assert np.all(before == pytest.approx(40.0, abs=0.05)) and np.all((10 < after) & (after < 30))
        assert table["energy"][()] == pytest.approx(0.5 * 0.06 * (before**2 - after**2))
        for n in (1, 2):
            pulse = entry[f"pulse_{n:04d}"]
            supply_time, current = pulse["supply_time"][()], pulse["current"][()]
            assert np.all(np.isnan(pulse["voltage"][()]))  # not measured on a capacitor-bank rig
            assert np.array_equal(supply_time, pulse["time"][()])  # one digitizer, one time base
            firing = (supply_time > 0.001) & (supply_time < 0.029)
            assert np.median(current[firing]) == pytest.approx(32, rel=0.2)  # ~40 V / R of the paper
            assert np.all(np.abs(current[supply_time > 0.032]) < 2)  # the switch opened after 30 ms
            # the charge the probe saw flow is the charge the bank lost: C (V0 - V1)
            charge = np.sum(np.diff(supply_time) * (current[1:] + current[:-1]) / 2)
            assert charge == pytest.approx(0.06 * (before[n - 1] - after[n - 1]), rel=0.03)
            temperature = pulse["temperature"][()]
            peak = pulse["time"][()][np.nanargmax(temperature)]
            assert np.nanmax(temperature) > 2000 and 0.02 < peak < 0.035


def test_a_shot_over_the_current_limit_is_recorded_and_the_next_refused(tmp_path):
    """The discharge current (V0 / R of the sample) is only known once the bank has fired."""
    rig = edited(CAPBANK, tmp_path / "rig.yaml", lambda d: d["limits"].update(max_current="30 A"))
    run = quenchlab("run", rig, SHOT, "--sim", "--data-dir", tmp_path, cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "the last shot peaked at" in run.stderr and "max_current of 30 A" in run.stderr
    assert "the bank is dumped" in run.stderr
    record, = tmp_path.glob("*.h5")
    with h5py.File(record, "r") as f:
        assert f["entry/pulse/energy"].shape == (1,)  # the first shot, recorded; no second


# --- exit paths: the twins' own state ---------------------------------------------------------
def genesys_is_off(reactor) -> bool:
    reactor.twins.world.advance()
    return not reactor.twins.supply.output and reactor.twins.world.amps == 0.0


def bank_is_dumped(reactor) -> bool:
    """Dumping or dumped: never charged, armed or firing, and no current flows."""
    twin = reactor.twins.supply
    twin.last_shot()  # brings the twin to the present
    return twin.state in ("DUMPING", "IDLE") and reactor.twins.world.amps == 0.0


@pytest.fixture(params=["genesys", "capbank"])
def rig(request):
    """(reactor on its twins, one pulse's program, its recipe, the test of a safe supply)."""
    if request.param == "genesys":
        config, recipe = load_config(GENESYS)[0], load_recipe(HOST_TIMED)[0]
        program, safe = compile_host_timed(recipe, config, "recipe"), genesys_is_off
    else:
        config, recipe = load_config(CAPBANK)[0], load_recipe(SHOT)[0]
        program, safe = compile_shot(recipe, config), bank_is_dumped
    with FJHReactor(config, simulate=True) as reactor:
        yield reactor, program, recipe, safe


def delivering(reactor) -> bool:
    return reactor.twins.world.amps > 1.0


def test_a_run_interrupted_mid_pulse_leaves_the_supply_safe(rig):
    """A pause requested from another thread (as Ctrl-C does) while current flows, then abort."""
    reactor, program, recipe, safe = rig
    engine, hit = RunEngine({}), threading.Event()

    def watch():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not hit.is_set():
            if delivering(reactor):
                hit.set()
            time.sleep(0.0005)
        engine.request_pause()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with pytest.raises(RunEngineInterrupted):
        engine(pulse_train(reactor.flyer, program, recipe.pulses, recipe.off_time, reactor.detectors()))
    watcher.join()
    reason = abort_run(engine, "operator abort")  # as quenchlab run does: the cut pulse may fail as it stops
    assert reason.startswith("operator abort") and hit.is_set() and safe(reactor)
    time.sleep(0.2)
    assert safe(reactor)  # and nothing comes back on by itself


def failing_plan(flyer, program):
    flyer.load(program)
    yield from bps.stage(flyer)
    yield from bps.open_run()
    yield from bps.kickoff(flyer, wait=True)  # the output is on, the bank firing
    raise RuntimeError("plan bug in the middle of a pulse")


def test_an_exception_mid_pulse_leaves_the_supply_safe(rig):
    reactor, program, _, safe = rig
    with pytest.raises(RuntimeError, match="plan bug"):
        RunEngine({})(failing_plan(reactor.flyer, program))
    assert safe(reactor)


def test_stop_while_the_bank_charges_dumps_it():
    config = load_config(CAPBANK)[0]
    with FJHReactor(config, simulate=True) as reactor:
        flyer, twin = reactor.flyer, reactor.twins.supply
        flyer.load(compile_shot(load_recipe(SHOT)[0], config))
        status = flyer.kickoff()
        deadline = time.monotonic() + 5
        while twin.state != "CHARGING" and time.monotonic() < deadline:
            time.sleep(0.001)
        assert twin.state == "CHARGING"
        flyer.stop()
        with pytest.raises(Exception, match="cancelled"):
            status.wait(10)
        assert bank_is_dumped(reactor) and twin.shots == 0


def test_a_genesys_whose_ovp_was_changed_refuses_to_fire():
    config = load_config(GENESYS)[0]
    recipe = load_recipe(HOST_TIMED)[0]
    with FJHReactor(config, simulate=True) as reactor:
        reactor.twins.supply.ovp, reactor.twins.supply.ovp_text = 30.0, "30"  # changed behind quenchlab's back
        program = compile_host_timed(recipe, config, "recipe")
        with pytest.raises(FailedStatus) as failure:
            RunEngine({})(pulse_train(reactor.flyer, program, 1, 0.0, reactor.detectors()))
        assert ("reads back 30 V, not the configured 55 V (instruments.supply.ovp): changed since it was set"
                in str(failure.value.args[0].exception()))
        assert genesys_is_off(reactor) and reactor.twins.world.temperature < 400


def test_a_bank_of_another_capacitance_is_refused_at_connect(tmp_path):
    config = load_config(edited(CAPBANK, tmp_path / "rig.yaml",
                                lambda d: d["instruments"]["supply"].update(capacitance="50 mF")))[0]
    with pytest.raises(InstrumentError, match=r"supply at .*: the controller reports 0\.06 F, not the "
                                              r"0\.05 F of instruments\.supply\.capacitance.*\(command 'CAP\?'\)"):
        FJHReactor(config, simulate=True)


# --- bad configs and recipes ------------------------------------------------------------------------
@pytest.mark.parametrize("source, edit, expected", [
    (GENESYS, lambda d: d["instruments"]["supply"].update(model="lambda-zup"),
     "field instruments.supply.model: 'lambda-zup' is not allowed; allowed: keysight-n6900, tdk-genesys, capbank"),
    (GENESYS, lambda d: d["instruments"]["supply"].update(baudrate=38400),
     "instruments.supply.baudrate: Input should be 1200"),
    (GENESYS, lambda d: d["instruments"]["supply"].update(unit=31),
     "instruments.supply.unit: Input should be less than or equal to 30"),
    (GENESYS, lambda d: d["instruments"]["supply"].update(ovp="52 V"),
     "must be at least limits.max_voltage / 0.95 (52.63 V)"),
    (GENESYS, lambda d: d["instruments"]["supply"].update(watchdog="5 s"),
     "field instruments.supply.watchdog: unknown key; allowed keys: model, address, unit, baudrate"),
    (CAPBANK, lambda d: d["instruments"]["supply"].update(baudrate=9600),
     "instruments.supply.baudrate: Input should be 115200"),
    (CAPBANK, lambda d: d["instruments"]["supply"].update(watchdog="2.5 s"),
     "field instruments.supply.watchdog: 2.5 s: the watchdog is set in whole seconds"),
    (CAPBANK, lambda d: d["instruments"]["supply"].pop("capacitance"),
     "instruments.supply.capacitance: missing (required)"),
    (CAPBANK, lambda d: d["instruments"]["digitizer"].pop("current_channel"),
     "current_channel and current_sensitivity go together"),
    (CAPBANK, lambda d: [d["instruments"]["digitizer"].pop(k) for k in ("current_channel", "current_sensitivity")],
     "a capacitor bank's current is measured by a current probe on a second digitizer channel"),
    (GENESYS, lambda d: d["instruments"]["digitizer"].update(current_channel=2, current_sensitivity="10 mV/A"),
     "only a capacitor bank's current is taken from the digitizer"),
])
def test_bad_supply_config_is_refused(tmp_path, source, edit, expected):
    path = edited(source, tmp_path / "rig.yaml", edit)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(str(path)) and expected in str(error.value)


def short_steps(data):
    data["segments"][0]["dwell"] = "20 ms"


@pytest.mark.parametrize("config, recipe, edit, error, expected", [
    (GENESYS, HOST_TIMED, short_steps, LimitError,
     "field segments.0.dwell: a step of 20 ms is shorter than the 36.4 ms a host-timed step needs on "
     "instruments.supply (a step must hold its setting and one MV?/MC? reading: 41 characters of 10 bits at "
     "19200 baud, plus 5 ms for each of the three answers)"),
    (GENESYS, HOST_TIMED, lambda d: d["segments"][2].update(steps=6), LimitError,
     "field segments.2.steps: a step of 20 ms is shorter than the 36.4 ms"),
    (GENESYS, HOST_TIMED, lambda d: d["segments"][1].update(level="0.5 A", dwell="4.4 s"), LimitError,
     "the pulse lasts 4.58 s in constant current; with foldback on the supply shuts it down after 4.25 s"),
    (GENESYS, SHOT, lambda d: None, ConfigError,
     "field control: a discharge recipe cannot run on the tdk-genesys supply of the reactor config "
     "(instruments.supply.model); it runs current, voltage and temperature recipes"),
    (CAPBANK, HOST_TIMED, lambda d: None, ConfigError,
     "field control: a current recipe cannot run on the capbank supply of the reactor config "
     "(instruments.supply.model); it runs discharge recipes"),
    (CAPBANK, SHOT, lambda d: d.update(charge_voltage="120 V"), LimitError,
     "field charge_voltage: 120 V exceeds instruments.supply.max_charge_voltage (100 V)"),
    (CAPBANK, SHOT, lambda d: d.update(charge_voltage="60 V"), LimitError,
     "the bank charged to 60 V holds 108 J (1/2 C V^2 with C = 0.06 F), above the configured "
     "max_energy_per_pulse of 80 J"),
    (CAPBANK, SHOT, lambda d: d.update(fire="300 ms"), LimitError, "lengthen instruments.digitizer.record"),
])
def test_bad_recipe_for_the_supply_is_refused(tmp_path, config, recipe, edit, error, expected):
    path = edited(recipe, tmp_path / "recipe.yaml", edit)
    with pytest.raises(error) as refused:
        checked_plan(load_recipe(path)[0], load_config(config)[0], str(path))
    assert str(refused.value).startswith(str(path)) and expected in str(refused.value)


def test_a_shot_fires_whole_milliseconds(tmp_path):
    path = edited(SHOT, tmp_path / "recipe.yaml", lambda d: d.update(fire="2.5 ms"))
    with pytest.raises(ConfigError, match="field fire: the switch closes for whole milliseconds"):
        load_recipe(path)


def test_a_recipe_of_the_wrong_kind_is_refused_before_any_instrument_is_touched(tmp_path):
    """A listening socket stands where the supply is: it must never see a connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    rig = edited(CONFIGS / "fjh-lab.example.yaml", tmp_path / "lab.yaml", lambda d: [
        d["instruments"][name].update(address=f"TCPIP::127.0.0.1::{listener.getsockname()[1]}::SOCKET")
        for name in ("supply", "digitizer")])
    result = quenchlab("run", rig, SHOT, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    assert f"{SHOT}: field control: a discharge recipe cannot run on the keysight-n6900 supply" in result.stderr
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()
