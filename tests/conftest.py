"""Shared fixtures: the simulated FJH reactor's config, its twins and an assembled reactor; a
serial twin (a test module's `twin` fixture) served on a pseudo-terminal."""
from pathlib import Path

import pytest

from quenchlab.config import load_config
from quenchlab.reactor import FJHReactor
from quenchlab.sim.fjh_twins import FJHTwins
from quenchlab.sim.servers import PtyServer

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"

# A test whose assertions hold the host's wall-clock timing against a twin in another process
# (host-timed steps, a closed loop's ticks) runs again, up to twice, if it fails: a shared
# machine can stop a process for tens of ms. A fault in quenchlab fails all three runs.
wall_timed = pytest.mark.flaky(reruns=2)


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
