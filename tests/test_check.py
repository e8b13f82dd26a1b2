"""quenchlab check: every instrument answers, is the configured model, and how it differs from the
config; it reads only (the twins' links say what was sent)."""
import os
import re
import socket
import subprocess

import pytest
import yaml

from conftest import CONFIGS, QUENCHLAB
from quenchlab.config.reactor import load_reactor_config
from quenchlab.reactor.check import check
from quenchlab.sim.aerosol_twins import AerosolTwins
from quenchlab.sim.fjh_twins import FJHTwins
from test_rig import running_twins

WIDE = {**os.environ, "COLUMNS": "250"}

# what a query looks like in each protocol: anything else would set or switch something
QUERIES = {
    "keysight-n6900": r".*\?", "keysight-infiniivision": r".*\?", "capbank": r".*\?",
    "tdk-genesys": r"(.*\?|ADR \d+|)",  # ADR selects the unit on the bus; a bare CR is the manual's ping
    "impac-upp": r"\d\d[a-z]{2}",  # a command without a value reads it
    "vici-universal": r"(CP|NP|VR)", "ssi-hplc": r"(CS|ID|PR|CC|RF|PI|RC)",
    "alicat-bus": r"[A-Z](VE|FPF \d+)?",  # a poll, the firmware, a full scale
    "zaber-ascii": r"/1 [0-2] \d\d (get \S+|warnings|):[0-9A-F]{2}",
}


@pytest.mark.parametrize("name, twins", [("fjh-sim", FJHTwins), ("fjh-genesys-sim", FJHTwins),
                                         ("fjh-capbank-sim", FJHTwins), ("aerosol-sim", AerosolTwins)])
def test_check_finds_every_twin_ready_and_sends_only_queries(name, twins):
    config, _ = load_reactor_config(CONFIGS / f"{name}.yaml")
    with twins(config) as running:
        results = check(config, running.config_addresses())
        sent = running.messages()
    assert [found.status for found in results] == ["OK"] * len(results)
    assert all(found.identity and found.round_trip > 0 for found in results)
    for instrument, messages in sent.items():
        pattern = QUERIES[running.models[instrument]]
        assert messages and [m for m in messages if not re.fullmatch(pattern, m.decode())] == [], instrument


def test_check_sim_prints_a_row_per_instrument_as_a_user_runs_it():
    result = subprocess.run([QUENCHLAB, "check", CONFIGS / "aerosol-sim.yaml", "--sim"], capture_output=True,
                            text=True, timeout=120, env=WIDE)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split("│")[1:-1] for line in result.stdout.splitlines() if line.startswith("│")]
    named = {row[0].strip(): row for row in rows if row[0].strip()}
    assert {"valve", "pump", "collector", "gases.sheath", "filter_gauge", "pyrometer"} <= named.keys()
    assert (named["pyrometer"][4].strip() == "OK"
            and "emissivity: 1, config 0.3 (a run programs it)" in named["pyrometer"][5])
    assert "SR3O" in named["pump"][2]


def test_check_exits_2_naming_a_dead_instrument_and_another_model(tmp_path):
    rig = tmp_path / "rig.yaml"
    with running_twins(CONFIGS / "fjh-sim.yaml", "--write-config", rig) as lines:
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            dead = f"TCPIP::127.0.0.1::{unused.getsockname()[1]}::SOCKET"  # nothing listens there
        config = yaml.safe_load(rig.read_text())
        config["instruments"]["digitizer"]["address"] = dead
        config["instruments"]["supply"]["address"] = lines["digitizer"]["address"]  # a scope where the supply is
        rig.write_text(yaml.safe_dump(config))
        result = subprocess.run([QUENCHLAB, "check", rig], capture_output=True, text=True, timeout=120, env=WIDE)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    rows = {row[0].strip(): row for row in (line.split("│")[1:-1] for line in result.stdout.splitlines()
                                            if line.startswith("│")) if row[0].strip()}
    assert rows["digitizer"][4].strip() == "no answer" and "cannot connect" in rows["digitizer"][5]
    assert rows["supply"][4].strip() == "another model" and "DSO-X" in rows["supply"][2]
    assert rows["pyrometer"][4].strip() == "OK"


def test_check_says_a_socket_gateway_holds_the_serial_line(tmp_path):
    rig = tmp_path / "rig.yaml"
    with running_twins(CONFIGS / "fjh-sim.yaml", "--gateway", "socket", "--write-config", rig):
        result = subprocess.run([QUENCHLAB, "check", rig], capture_output=True, text=True, timeout=120, env=WIDE)
    assert result.returncode == 0, result.stdout + result.stderr
    pyrometer = next(line for line in result.stdout.splitlines() if line.startswith("│ pyrometer"))
    assert "socket://127.0.0.1:" in pyrometer and "serial line: set on the gateway" in result.stdout


def test_check_of_a_twin_config_without_sim_says_so():
    result = subprocess.run([QUENCHLAB, "check", CONFIGS / "fjh-sim.yaml"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "address is 'twin': check with --sim" in result.stderr
    assert "Traceback" not in result.stderr
