"""The emissivity check against a melting plateau: found in a trace, and on a twin whose sample
has another emissivity than the pyrometer is set to, the emissivity it gives back is the
sample's."""
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from bluesky import RunEngine

from quenchlab.emissivity import emissivity_at, melting_plateau
from quenchlab.errors import QuenchlabError
from quenchlab.plans.pulses import pulse_train
from quenchlab.reactor import FJHReactor
from quenchlab.recipe import compile_recipe, load_recipe
from quenchlab.writer import HDF5Writer

from conftest import CONFIGS

QUENCHLAB = str(Path(sys.executable).parent / "quenchlab")


def test_the_longest_flat_stretch_is_the_plateau():
    time = np.arange(0, 0.05, 1e-5)
    temperature = np.interp(time, [0, 0.01, 0.02, 0.03, 0.05], [300, 1700, 1701, 2500, 1000])
    temperature[time < 0.002] = np.nan  # under range
    start, end, level = melting_plateau(time, temperature + np.random.default_rng(0).normal(0, 1, time.size))
    assert start == pytest.approx(0.01, abs=5e-4) and end == pytest.approx(0.02, abs=5e-4)
    assert level == pytest.approx(1700.5, abs=1)
    with pytest.raises(QuenchlabError, match="no plateau"):
        melting_plateau(time, np.linspace(300, 2500, time.size))
    with pytest.raises(QuenchlabError, match="within 15% of 2896 K"):  # molybdenum's: not this plateau
        melting_plateau(time, temperature, near=2896.0)


def test_wien_correction_matches_the_bias_of_domain_md():
    # 10 % emissivity error -> ~27 K at 2000 K and 1 um (domain.md)
    assert emissivity_at(2000 - 27.2, 2000, 0.9, 1.0) == pytest.approx(0.9 * 0.9, rel=0.01)


def test_on_the_twin_the_check_finds_the_samples_emissivity(sim_config, tmp_path):
    pyrometer = sim_config.instruments.pyrometer.model_copy(update={"emissivity": 0.95})  # the film's is 0.85
    config = sim_config.model_copy(update={"instruments": sim_config.instruments.model_copy(update={"pyrometer": pyrometer})})
    program = compile_recipe(load_recipe(CONFIGS / "recipes" / "thin-film-2000K.yaml")[0], config.limits)
    with FJHReactor(config, simulate=True) as reactor:
        engine, writer = RunEngine({}), HDF5Writer(tmp_path)
        engine.subscribe(writer)
        engine(pulse_train(reactor.flyer, program, pulses=1, off_time=1.0, detectors=reactor.detectors(),
                           md={"reactor_config": (CONFIGS / "fjh-sim.yaml").read_text()}))
        with h5py.File(writer.path, "r") as f:
            start, end, _ = melting_plateau(f["entry/pulse_0001/time"][()], f["entry/pulse_0001/temperature"][()])
        world = reactor.twins.world
        fired = world.trigger_line[-1]
        true = world.history(fired + start, fired + end)["temperature"]
    checked = subprocess.run([QUENCHLAB, "emissivity", writer.path, "--melting", f"{np.median(true)} K"],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    with h5py.File(writer.path, "r") as f:
        assert f["entry/emissivity_check/emissivity"][()] == pytest.approx(0.85, abs=0.01)
        assert f["entry/emissivity_check/emissivity_set"][()] == pytest.approx(0.95)
    assert "emissivity 0.8" in checked.stdout
    below = subprocess.run([QUENCHLAB, "emissivity", writer.path, "--melting", f"{np.median(true) - 200} K"],
                           capture_output=True, text=True, timeout=60)  # would need an emissivity above 1
    assert below.returncode == 2 and "an emissivity lies in (0, 1]" in below.stderr, below.stderr
    with h5py.File(writer.path, "r") as f:
        assert "emissivity_check_2" not in f["entry"]  # nothing written
