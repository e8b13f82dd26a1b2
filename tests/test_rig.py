"""Meeting a rig: the twins served as a rig's instruments (serial ones behind TCP gateways too),
a rig file pointing at them, and quenchlab run on it through the code path a real rig takes."""
import json
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import h5py
import pytest
import serial
import yaml

from conftest import CONFIGS, QUENCHLAB, ROOT

SERVED = {"fjh-sim.yaml": 3, "aerosol-sim.yaml": 5}  # twins a config's `quenchlab twins` serves


@contextmanager
def running_twins(config: Path, *options: str):
    """`quenchlab twins CONFIG OPTIONS` as a user starts it; yields its JSON lines by name."""
    twins = subprocess.Popen([QUENCHLAB, "twins", str(config), *map(str, options)], stdout=subprocess.PIPE, text=True)
    try:
        lines = [twins.stdout.readline() for _ in range(SERVED[config.name])]
        assert all(lines), f"quenchlab twins ended before serving: {lines}"
        yield {line["name"]: line for line in map(json.loads, lines)}
    finally:
        twins.send_signal(signal.SIGTERM)
        twins.communicate(timeout=30)
    assert twins.returncode == 0


def test_a_library_runs_on_a_rig_file_with_a_serial_instrument_behind_a_tcp_gateway(tmp_path):
    rig = tmp_path / "rig.yaml"
    library = tmp_path / "fjh.csv"
    library.write_text("sample_id,recipe\nG1,recipe.yaml\nG2,recipe.yaml\n")
    (tmp_path / "recipe.yaml").write_text("name: quick\ncompliance: 50 V\nsegments:\n"
                                          "  - {level: 24 A, dwell: 6.5 ms}\n  - {level: 14.5 A, dwell: 20 ms}\n")
    with running_twins(CONFIGS / "fjh-sim.yaml", "--gateway", "socket", "--write-config", rig) as lines:
        assert lines["pyrometer"]["address"].startswith("socket://127.0.0.1:")
        assert lines["pyrometer"]["parity"] == "E"  # what the gateway's serial side is set to
        written = yaml.safe_load(rig.read_text())["instruments"]
        assert {name: written[name]["address"] for name in lines} == {n: line["address"] for n, line in lines.items()}
        result = subprocess.run([QUENCHLAB, "library", rig, library, "--data-dir", tmp_path / "data"], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "data" / "fjh").glob("*.h5"))
    assert [f.name.rsplit("_", 1)[1] for f in files] == ["G1.h5", "G2.h5"]
    with h5py.File(files[1], "r") as f:
        assert f["entry/pulse/peak_temperature"][0] > 1500  # the pyrometer, read through the gateway
        connections = {name: {field: value[()].decode() for field, value in group.items()}
                       for name, group in f["entry/instrument/connections"].items()}
    assert connections["pyrometer"] == {"model": "impac-upp", "identity": "IGA 6/23 Advanced s/n 23041",
                                        "address": lines["pyrometer"]["address"], "address_kind": "gateway (socket)"}
    assert connections["supply"]["address_kind"] == "LAN socket"
    assert connections["digitizer"]["identity"].startswith("KEYSIGHT TECHNOLOGIES,DSO-X 3024T,")


def test_an_aerosol_rig_file_gives_the_gas_bus_to_every_unit_on_it(tmp_path):
    rig = tmp_path / "rig.yaml"
    with running_twins(CONFIGS / "aerosol-sim.yaml", "--write-config", rig) as lines:
        written = yaml.safe_load(rig.read_text())["instruments"]
    bus = lines["gases"]["address"]
    assert {role: entry["address"] for role, entry in written["gases"].items()} == dict.fromkeys(written["gases"], bus)
    assert written["filter_gauge"]["address"] == bus
    assert written["valve"]["address"] == lines["valve"]["address"].strip() != "twin"


def test_write_config_replaces_only_a_file_it_wrote(tmp_path):
    mine = tmp_path / "rig.yaml"
    mine.write_text("reactor: my-notes\n")
    result = subprocess.run([QUENCHLAB, "twins", CONFIGS / "fjh-sim.yaml", "--write-config", mine],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "exists and quenchlab did not write it" in result.stderr
    assert mine.read_text() == "reactor: my-notes\n"
    written = tmp_path / "written.yaml"
    for _ in range(2):  # the second time over its own file
        with running_twins(CONFIGS / "fjh-sim.yaml", "--write-config", written):
            assert written.read_text().startswith("# written by `quenchlab twins`")


def test_pytest_rig_runs_the_rig_tests_on_the_instruments_a_rig_file_names(tmp_path):
    rig = tmp_path / "rig.yaml"
    with running_twins(CONFIGS / "fjh-sim.yaml", "--write-config", rig):
        result = subprocess.run([Path(sys.executable).parent / "pytest", "-q", "-p", "no:cacheprovider", "--rig", rig,
                                 ROOT / "tests" / "test_on_rig.py", ROOT / "tests" / "test_check.py"],
                                cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 passed, 2 skipped" in result.stdout  # the FJH ones; the aerosol ones skipped; none unmarked


def test_without_rig_no_test_reaches_beyond_loopback():
    with pytest.raises(PermissionError, match="without --rig"):
        socket.create_connection(("192.0.2.7", 5025), timeout=0.1)  # TEST-NET-1: never routed


def test_an_rfc2217_gateway_takes_the_line_settings_from_its_client(tmp_path):
    """RFC 2217: the client sets baud rate and parity over Telnet; at settings other than the
    pyrometer's (19200 8E1) it hears nothing, as the instrument's UART would see garbage."""
    rig = tmp_path / "rig.yaml"
    with running_twins(CONFIGS / "fjh-sim.yaml", "--gateway", "rfc2217", "--write-config", rig) as lines:
        address = lines["pyrometer"]["address"]
        assert address.startswith("rfc2217://127.0.0.1:")
        for baudrate, parity, heard in ((19200, "E", b"IGA 6/23 Advanced\r"), (9600, "E", b""), (19200, "N", b"")):
            with serial.serial_for_url(address, baudrate=baudrate, parity=parity, timeout=5 if heard else 0.5) as port:
                port.write(b"00na\r")
                assert port.read_until(b"\r") == heard, (baudrate, parity)
        result = subprocess.run([QUENCHLAB, "check", rig], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
