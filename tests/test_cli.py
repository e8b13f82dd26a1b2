"""The command line, run the way a user types it (the installed `quenchlab` script)."""
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import yaml

from quenchlab.devices.n6900_driver import N6900

from conftest import CONFIGS

QUENCHLAB = str(Path(sys.executable).parent / "quenchlab")


def quenchlab(*args, cwd, timeout=120):
    return subprocess.run([QUENCHLAB, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_demo_records_a_pulse_train_and_plots_it(tmp_path):
    result = quenchlab("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = list((tmp_path / "data").glob("*_pulse_train_thin-film-demo.h5"))
    assert len(records) == 1 and records[0].with_suffix(".png").stat().st_size > 10000
    assert "peak K" in result.stdout and "record:" in result.stdout
    with h5py.File(records[0], "r") as f:
        assert f["entry/pulse/heating_rate"].shape == (3,)
        assert min(f["entry/pulse/heating_rate"][()]) >= 1e5
        assert min(f["entry/pulse/cooling_rate_peak"][()]) >= 1e4
    shown = quenchlab("inspect", records[0], "--png", tmp_path / "again.png", cwd=tmp_path)
    assert shown.returncode == 0 and (tmp_path / "again.png").exists()
    assert "2 pulses" not in shown.stdout and shown.stdout.count("│") > 20


def test_twins_serve_until_sigterm(tmp_path):
    process = subprocess.Popen([QUENCHLAB, "twins", CONFIGS / "fjh-sim.yaml"], stdout=subprocess.PIPE, text=True)
    try:
        lines = [json.loads(process.stdout.readline()) for _ in range(3)]
        assert [line["name"] for line in lines] == ["supply", "pyrometer", "digitizer"]
        assert lines[0]["model"] == "keysight-n6900"
        supply = N6900(lines[0]["address"])
        assert supply.identify().startswith("Keysight")
        supply.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_bad_config_is_one_paragraph_and_exit_2(tmp_path):
    data = yaml.safe_load((CONFIGS / "fjh-sim.yaml").read_text())
    data["limits"]["max_current"] = "40"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    result = quenchlab("run", path, CONFIGS / "recipes" / "thin-film-2000K.yaml", "--sim", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert f"{path}: field limits.max_current: needs a unit" in result.stderr


def loopback_rig(tmp_path, supply_address):
    """The lab example with every address on this machine (a test never reaches the network)."""
    data = yaml.safe_load((CONFIGS / "fjh-lab.example.yaml").read_text())
    data["instruments"]["supply"]["address"] = data["instruments"]["digitizer"]["address"] = supply_address
    data["instruments"]["pyrometer"]["address"] = str(tmp_path / "no-such-serial-port")
    config = tmp_path / "lab.yaml"
    config.write_text(yaml.safe_dump(data))
    return config


def test_pulse_above_the_energy_limit_is_refused_before_anything_is_sent(tmp_path):
    """A listening socket stands where the supply is: it must never see a connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    config = loopback_rig(tmp_path, f"TCPIP::127.0.0.1::{listener.getsockname()[1]}::SOCKET")
    recipe = tmp_path / "hot.yaml"
    recipe.write_text("name: hot\ncompliance: 50 V\nsegments:\n  - {level: 30 A, dwell: 50 ms}\n")
    result = quenchlab("run", config, recipe, cwd=tmp_path)
    assert result.returncode == 2
    assert "up to 75 J" in result.stderr and "max_energy_per_pulse of 60 J" in result.stderr
    with pytest.raises(socket.timeout):
        listener.accept()
    listener.close()


def test_unreachable_instrument_is_a_clear_error(tmp_path):
    port = socket.create_server(("127.0.0.1", 0))
    address = f"TCPIP::127.0.0.1::{port.getsockname()[1]}::SOCKET"
    port.close()  # nothing listens there now
    config = loopback_rig(tmp_path, address)
    result = quenchlab("run", config, CONFIGS / "recipes" / "thin-film-2000K.yaml", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stdout + result.stderr
    assert f"supply at {address}" in result.stderr


def test_inspect_of_a_non_record_is_a_clear_error(tmp_path):
    (tmp_path / "notes.h5").write_text("not hdf5")
    result = quenchlab("inspect", tmp_path / "notes.h5", cwd=tmp_path)
    assert result.returncode == 2 and "cannot open as HDF5" in result.stderr
