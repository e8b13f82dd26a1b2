"""Shared fixtures: the simulated FJH reactor's config, its twins and an assembled reactor; a
serial twin (a test module's `twin` fixture) served on a pseudo-terminal.

`pytest --busy-core` runs the suite while another process keeps one core busy, as on a shared
CI machine: a test that fails only then has found a race.

`pytest --rig RIG.yaml` runs the tests marked `rig` against the instruments RIG.yaml names
(tests/test_on_rig.py); without it they run on twins, and no test can open a connection beyond
this machine (loopback only)."""
import ipaddress
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from quenchlab.config.fjh import load_config
from quenchlab.reactor.fjh import FJHReactor
from quenchlab.sim.fjh_twins import FJHTwins
from quenchlab.sim.servers import PtyServer

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
QUENCHLAB = str(Path(sys.executable).parent / "quenchlab")  # the command line, as a user types it

# A test whose assertions hold the host's wall-clock timing against a twin in another process
# (host-timed steps, a closed loop's ticks) runs again, up to twice, if it fails: a shared
# machine can stop a process for tens of ms. A fault in quenchlab fails all three runs.
wall_timed = pytest.mark.flaky(reruns=2)


def wait_until(condition, wall_seconds: float = 3.0) -> None:
    """Poll `condition` until it holds; fail the test if it does not within `wall_seconds`."""
    deadline = time.monotonic() + wall_seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.002)


def pytest_addoption(parser):
    parser.addoption("--busy-core", action="store_true",
                     help="keep one core busy with another process for the whole session")
    parser.addoption("--rig", metavar="RIG.yaml", type=Path,
                     help="run the tests marked rig against the instruments this reactor config names")


def pytest_configure(config):
    config.addinivalue_line("markers", "rig: safe on a real rig; pytest --rig RIG.yaml runs them there")
    if config.getoption("--busy-core"):
        config.busy_core = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    if config.getoption("--rig") is None:
        _loopback_only()


def pytest_collection_modifyitems(config, items):
    """With --rig, only the tests marked rig run."""
    if config.getoption("--rig") is not None:
        items[:] = [item for item in items if item.get_closest_marker("rig")]


def _loopback_only() -> None:
    """Refuse every connection to an address beyond this machine (only --rig may reach one)."""
    for name in ("connect", "connect_ex"):
        original = getattr(socket.socket, name)

        def guarded(sock, address, original=original):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
                raise PermissionError(f"a test tried to reach {address[0]} without --rig: tests stay on loopback")
            return original(sock, address)
        setattr(socket.socket, name, guarded)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: every address it resolves to
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))


def pytest_unconfigure(config):
    if busy := getattr(config, "busy_core", None):
        busy.kill()
        busy.wait()


@pytest.fixture
def sim_config():
    return load_config(CONFIGS / "fjh-sim.yaml")[0]


@pytest.fixture
def twins(sim_config):
    with FJHTwins(sim_config) as running:
        yield running


@pytest.fixture
def reactor(sim_config):
    with FJHReactor(sim_config, simulate=True) as assembled:
        yield assembled


@pytest.fixture
def server(twin):
    server = PtyServer(twin)
    yield server
    server.close()
