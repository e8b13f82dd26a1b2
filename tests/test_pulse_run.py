"""A pulse train end to end on the twins: RunEngine, flyer, HDF5 record read back; safe exits."""
import threading
import time

import bluesky.plan_stubs as bps
import h5py
import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.utils import FailedStatus, RunEngineInterrupted

from conftest import CONFIGS
from quenchlab.errors import InstrumentError
from quenchlab.plans.pulses import heat_quench_pulse, pulse_train
from quenchlab.reactor.fjh import FJHReactor
from quenchlab.recipes.load import load_recipe
from quenchlab.recipes.pulse import compile_recipe
from quenchlab.record.writer import HDF5Writer


@pytest.fixture
def program(sim_config):
    recipe = load_recipe(CONFIGS / "recipes" / "thin-film-2000K.yaml")[0]
    return compile_recipe(recipe, sim_config.limits)


def supply_is_off(reactor):
    """The twin's own state, not the driver's belief, once the twin has handled what was sent
    before (the reply to a query sent after it: the last write may still be on its way)."""
    reactor.supply_driver.io.query("OUTP?")
    twin = reactor.twins.supply
    reactor.twins.world.advance()
    return not twin.output and reactor.twins.world.amps == 0.0 and twin.transient == "idle"


def test_pulse_train_is_recorded_in_one_nexus_file(reactor, program, tmp_path):
    engine = RunEngine({})
    writer = HDF5Writer(tmp_path)
    engine.subscribe(writer)
    engine(pulse_train(reactor.flyer, program, pulses=2, off_time=0.6, detectors=reactor.detectors(),
                       md={"sample": "film-7", "recipe": "name: thin-film-2000K\n"}))
    assert supply_is_off(reactor)
    with h5py.File(writer.path, "r") as f:
        entry = f[f.attrs["default"]]
        assert entry.attrs["NX_class"] == "NXentry"
        assert entry["recipe"][()].decode().startswith("name: thin-film")
        assert entry["sample/name"][()].decode() == "film-7"
        data = entry[entry.attrs["default"]]
        assert data.attrs["NX_class"] == "NXdata" and data.attrs["signal"] == "temperature"
        time, temperature = data[data.attrs["axes"]][()], data["temperature"][()]
        assert time.shape == temperature.shape == (25000,)
        assert data["temperature"].attrs["units"] == "K"
        assert np.nanmax(temperature) == pytest.approx(2015, abs=40)
        assert np.isnan(temperature[0])  # cold before the pulse: under range, never a number
        table = entry["pulse"]
        assert table["peak_temperature"].shape == (2,)
        assert np.all(table["heating_rate"][()] >= 1e5)
        assert np.all(table["cooling_rate_peak"][()] >= 1e4)
        assert np.all(table["energy"][()] == pytest.approx(22, rel=0.15))
        assert "supply" in entry["instrument"] and "pyrometer" in entry["instrument"]
        assert entry["primary/pyrometer_temperature"].shape == (1,)  # read before the train
        period = program.duration + 0.6
        assert np.diff(table["pulse_start"][()]) == pytest.approx([period], rel=1e-3)  # the supply's own timing
        assert entry["train/train_achieved_period"][0] == pytest.approx(period, rel=1e-3)
        assert entry["train/train_programmed_period"][0] == pytest.approx(period)
        assert entry["exit_status"][()].decode() == "success"


def test_heat_quench_pulse_records_current_and_voltage(reactor, program, tmp_path):
    engine = RunEngine({})
    writer = HDF5Writer(tmp_path)
    engine.subscribe(writer)
    engine(heat_quench_pulse(reactor.flyer, program))
    with h5py.File(writer.path, "r") as f:
        group = f["entry/pulse_0001"]
        current, supply_time = group["current"][()], group["supply_time"][()]
        assert np.median(current[(supply_time > 0.001) & (supply_time < 0.006)]) == pytest.approx(24.0)
        assert np.median(current[(supply_time > 0.01) & (supply_time < 0.05)]) == pytest.approx(14.5)
        assert np.all(current[supply_time > 0.056] == 0.0)


def failing_plan(reactor, program):
    reactor.flyer.load(program)
    yield from bps.stage(reactor.flyer)
    yield from bps.open_run()
    yield from bps.kickoff(reactor.flyer, wait=True)
    raise RuntimeError("plan bug in the middle of a pulse")


def test_an_exception_mid_pulse_leaves_the_output_off(reactor, program):
    engine = RunEngine({})
    with pytest.raises(RuntimeError, match="plan bug"):
        engine(failing_plan(reactor, program))
    assert supply_is_off(reactor)


def test_abort_mid_train_leaves_the_output_off(reactor, program):
    """A pause requested from another thread (as Ctrl-C does) mid-pulse, then abort."""
    engine = RunEngine({})
    threading.Timer(0.3, engine.request_pause).start()
    with pytest.raises(RunEngineInterrupted):
        engine(pulse_train(reactor.flyer, program, pulses=3, off_time=0.6))
    engine.abort("operator abort")
    assert supply_is_off(reactor)


def test_tripped_supply_refuses_to_fire(reactor, program):
    reactor.twins.supply.tripped |= 1  # over-voltage latched
    engine = RunEngine({})
    with pytest.raises(FailedStatus) as failure:
        engine(heat_quench_pulse(reactor.flyer, program))
    assert "protection holds the output off: over-voltage" in str(failure.value.args[0].exception())
    assert supply_is_off(reactor)


def test_stop_during_arming_cancels_the_shot(reactor, program):
    """A stop() that arrives while kickoff is still arming must win: the output never comes on."""
    reactor.flyer.load(program)
    status = reactor.flyer.kickoff()
    reactor.flyer.stop()
    with pytest.raises(InstrumentError, match="pulse cancelled"):
        status.wait(10)
    time.sleep(program.duration + 0.05)
    assert supply_is_off(reactor) and reactor.twins.world.temperature < 400


def test_a_recording_failure_stops_the_train_with_the_output_off(reactor, program):
    """The disk fills up as the first pulse is recorded: the run stops, the supply is off."""
    engine = RunEngine({})

    def full_disk(name, doc):
        if name == "event_page" and "supply_time" in doc["data"]:
            raise OSError(28, "No space left on device")

    engine.subscribe(full_disk)
    with pytest.raises(OSError, match="No space left"):
        engine(pulse_train(reactor.flyer, program, pulses=3, off_time=0.6))
    assert supply_is_off(reactor)


def test_unwritable_data_directory_is_refused_before_connecting(tmp_path):
    """The supply's address is a loopback port nothing listens on: a connection attempt would
    be another error than the one expected."""
    import socket
    import subprocess
    import sys
    from pathlib import Path

    import yaml
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    config = yaml.safe_load((CONFIGS / "fjh-sim.yaml").read_text())
    closed = socket.create_server(("127.0.0.1", 0))
    config["instruments"]["supply"]["address"] = f"TCPIP::127.0.0.1::{closed.getsockname()[1]}::SOCKET"
    closed.close()
    (tmp_path / "rig.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([str(Path(sys.executable).parent / "quenchlab"), "run", tmp_path / "rig.yaml",
                             CONFIGS / "recipes" / "thin-film-2000K.yaml", "--data-dir", blocker / "records"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and f"data directory {blocker / 'records'}: cannot write there" in result.stderr


def test_run_engine_stop_after_a_pause_leaves_the_output_off(reactor, program):
    engine = RunEngine({})
    threading.Timer(0.3, engine.request_pause).start()
    with pytest.raises(RunEngineInterrupted):
        engine(pulse_train(reactor.flyer, program, pulses=3, off_time=0.6))
    engine.stop()
    assert supply_is_off(reactor)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # bluesky warns that halt skipped the finalize plan
def test_run_engine_halt_skips_cleanup_and_the_watchdog_takes_over(sim_config, program):
    """halt() runs no cleanup by design: the supply's own watchdog must end any output."""
    supply = sim_config.instruments.supply.model_copy(update={"watchdog": 1.0})
    config = sim_config.model_copy(update={"instruments": sim_config.instruments.model_copy(update={"supply": supply})})
    with FJHReactor(config, simulate=True) as reactor:
        engine = RunEngine({})
        threading.Timer(0.3, engine.request_pause).start()
        with pytest.raises(RunEngineInterrupted):
            engine(pulse_train(reactor.flyer, program, pulses=3, off_time=0.6))
        twin = reactor.twins.supply
        twin.output = True  # the worst case: halted with the output programmed on
        engine.halt()
        time.sleep(1.3)
        reactor.twins.world.advance()
        assert twin.tripped & 2048 and reactor.twins.world.amps == 0.0
