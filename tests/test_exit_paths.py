"""Exit paths of `quenchlab run` on a rig played by twins in another process, checked on the
supply twin's own state after the run's process is gone: Ctrl-C, SIGTERM, SIGKILL (where the
supply's watchdog must switch the output off by itself).

Signals go to the run's whole process group, as a terminal sends Ctrl-C, and the run starts
with SIGINT at its default disposition: a background job of a non-interactive shell (how CI
starts the suite) ignores SIGINT, and a test that kept that would pass without any handling."""
import json
import os
import signal
import subprocess
import time

import h5py
import pytest
import yaml

from conftest import CONFIGS, QUENCHLAB
from quenchlab.devices.n6900_driver import N6900

WATCHDOG = 2.0  # s, as programmed from the test's config


@pytest.fixture
def faults(tmp_path):
    """A fault scenario for the twins (none unless a test writes one)."""
    return tmp_path / "faults.yaml"


@pytest.fixture
def rig(tmp_path, faults):
    """(config, recipe) for a rig whose instruments are twins served by `quenchlab twins`."""
    extra = ["--faults", faults] if faults.exists() else []
    twins = subprocess.Popen([QUENCHLAB, "twins", CONFIGS / "fjh-sim.yaml", *extra], stdout=subprocess.PIPE, text=True)
    try:
        addresses = {line["name"]: line["address"] for line in (json.loads(twins.stdout.readline()) for _ in range(3))}
        config = yaml.safe_load((CONFIGS / "fjh-sim.yaml").read_text())
        for name, address in addresses.items():
            config["instruments"][name]["address"] = address
        config["instruments"]["supply"]["watchdog"] = f"{WATCHDOG} s"
        config["instruments"]["digitizer"]["record"] = "0.6 s"
        config["limits"].update(max_energy_per_pulse="400 J", max_energy_per_minute="20 kJ")
        (tmp_path / "rig.yaml").write_text(yaml.safe_dump(config))
        (tmp_path / "long.yaml").write_text("name: long\ncompliance: 50 V\npulses: 20\noff_time: 0.5 s\n"
                                            "segments:\n  - {level: 14.5 A, dwell: 400 ms}\n")
        yield tmp_path / "rig.yaml", tmp_path / "long.yaml", addresses["supply"]
    finally:
        twins.send_signal(signal.SIGTERM)
        twins.wait(timeout=10)


def start(command, **options) -> subprocess.Popen:
    """`command` as a job of its own (its own process group), SIGINT at its default."""
    return subprocess.Popen(command, process_group=0, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                            **options)


def start_run(tmp_path, config, recipe):
    process = start([QUENCHLAB, "run", config, recipe, "--data-dir", tmp_path / "data"], cwd=tmp_path,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list((tmp_path / "data").glob("*.h5")) and time.monotonic() < deadline:
        assert process.poll() is None, f"the run ended before its first pulse: {process.stderr.read()}"
        time.sleep(0.02)
    time.sleep(1.5)  # into the pulse train
    return process


def supply_state(address):
    supply = N6900(address)
    try:
        return {"current": supply.measure()[1], "list": supply.list_running(), "trips": supply.trips()}
    finally:
        supply.close()


@pytest.mark.parametrize("signals", [[signal.SIGINT], [signal.SIGINT, signal.SIGINT], [signal.SIGTERM]],
                         ids=["ctrl-c", "ctrl-c-twice", "sigterm"])
def test_interrupt_or_terminate_is_recorded_as_such_with_the_output_off(rig, tmp_path, signals):
    config, recipe, supply = rig
    process = start_run(tmp_path, config, recipe)
    for how in signals:
        os.killpg(process.pid, how)
        time.sleep(0.1)
    stderr = process.communicate(timeout=60)[1]
    reason = "terminated" if signals == [signal.SIGTERM] else "interrupted by the user"
    assert process.returncode == 2 and "Traceback" not in stderr and stderr.startswith(f"error: {reason}"), stderr
    assert "read back: supply_output off, supply_current 0 A" in stderr
    state = supply_state(supply)
    assert state["current"] == 0.0 and not state["list"] and "watchdog" not in state["trips"]
    record, = (tmp_path / "data").glob("*.h5")
    with h5py.File(record, "r") as f:  # the run was closed by its cleanup, not cut off
        assert f["entry/exit_status"][()].decode() == "abort"
        assert f["entry/reason"][()].decode() == reason


def test_sigkill_leaves_the_watchdog_to_switch_the_output_off(rig, tmp_path):
    config, recipe, supply = rig
    process = start_run(tmp_path, config, recipe)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    time.sleep(WATCHDOG + 0.5)
    state = supply_state(supply)
    assert state["current"] == 0.0 and "watchdog" in state["trips"]


@pytest.fixture
def silent_pyrometer(faults):
    faults.write_text("faults:\n  - {instrument: pyrometer, fault: no_reply, at: 10 s, count: 100000}\n")
    return faults


def test_an_instrument_that_stops_answering_mid_train_ends_the_run_with_the_output_off(silent_pyrometer, rig,
                                                                                      tmp_path):
    config, recipe, supply = rig
    process = start_run(tmp_path, config, recipe)
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == 2 and "Traceback" not in stderr, stderr
    assert "pyrometer" in stderr and "no complete reply" in stderr  # seen by the interlock or by the pulse
    state = supply_state(supply)
    assert state["current"] == 0.0 and not state["list"]
    record, = (tmp_path / "data").glob("*.h5")
    with h5py.File(record, "r") as f:
        assert f["entry/exit_status"][()].decode() in ("abort", "fail")
