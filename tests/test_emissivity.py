"""The emissivity check against a melting plateau: found in a trace, and on a twin whose sample
has another emissivity than the pyrometer is set to, the emissivity it gives back is the
sample's."""
import subprocess
from dataclasses import astuple
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
from bluesky import RunEngine

from conftest import CONFIGS, QUENCHLAB
from quenchlab.analysis.plateau import phase_change, plateaus
from quenchlab.errors import QuenchlabError
from quenchlab.plans.pulses import pulse_train
from quenchlab.reactor.fjh import FJHReactor
from quenchlab.recipes.load import load_recipe
from quenchlab.recipes.pulse import compile_recipe
from quenchlab.record.emissivity import emissivity_at
from quenchlab.record.writer import HDF5Writer


def test_the_longest_flat_stretch_is_the_plateau():
    time = np.arange(0, 0.05, 1e-5)
    temperature = np.interp(time, [0, 0.01, 0.02, 0.03, 0.05], [300, 1700, 1701, 2500, 1000])
    temperature[time < 0.002] = np.nan  # under range
    start, end, level = astuple(plateaus(time, temperature + np.random.default_rng(0).normal(0, 1, time.size))[0])
    assert start == pytest.approx(0.01, abs=5e-4) and end == pytest.approx(0.02, abs=5e-4)
    assert level == pytest.approx(1700.5, abs=1)
    with pytest.raises(QuenchlabError, match="no plateau"):
        plateaus(time, np.linspace(300, 2500, time.size))
    with pytest.raises(QuenchlabError, match="between 2500 and 3000 K"):  # molybdenum's: not this plateau
        plateaus(time, temperature, within=(2500, 3000))


def test_wien_correction_matches_the_bias_of_domain_md():
    # 10 % emissivity error -> ~27 K at 2000 K and 1 um (domain.md)
    assert emissivity_at(2000 - 27.2, 2000, 0.9, 1.0) == pytest.approx(0.9 * 0.9, rel=0.01)


def recorded(config, recipe: str, tmp_path, **settings) -> Path:
    """One pulse of `recipe` on the twins of `config` changed by `settings` (section: {field: value})."""
    for section, fields in settings.items():
        part = config.instruments if section == "pyrometer" else config
        changed = getattr(part, section).model_copy(update=fields)
        config = config.model_copy(update={"instruments": config.instruments.model_copy(update={section: changed})}
                                   if section == "pyrometer" else {section: changed})
    program = compile_recipe(load_recipe(CONFIGS / "recipes" / recipe)[0], config.limits)
    with FJHReactor(config, simulate=True) as reactor:
        engine, writer = RunEngine({}), HDF5Writer(tmp_path)
        engine.subscribe(writer)
        engine(pulse_train(reactor.flyer, program, pulses=1, off_time=1.0, detectors=reactor.detectors(),
                           md={"reactor_config": (CONFIGS / "fjh-sim.yaml").read_text()}))
    return Path(writer.path)


def emissivity(path: Path, melting: str) -> subprocess.CompletedProcess:
    return subprocess.run([QUENCHLAB, "emissivity", str(path), "--melting", melting],
                          capture_output=True, text=True, timeout=60)


def test_on_the_twin_the_check_finds_the_samples_emissivity(sim_config, tmp_path):
    """A platinum strip (emissivity 0.30) melts under a pyrometer set to 0.60, which reads its plateau
    ~280 K low: the check gives 0.30."""
    path = recorded(sim_config, "platinum-melt.yaml", tmp_path, pyrometer={"emissivity": 0.60},
                    simulation={"sample": "platinum_strip"})
    checked = emissivity(path, "2041.3 K")
    assert checked.returncode == 0, checked.stderr
    with h5py.File(path, "r") as f:
        check = f["entry/emissivity_check"]
        assert check["emissivity"][()] == pytest.approx(0.30, abs=0.01)
        assert check["emissivity_set"][()] == pytest.approx(0.60)
        assert check["plateau_kind"][()].decode() in ("melting", "freezing")
        assert 0.5 < check["latent_fraction"][()] <= 1
        assert check.attrs["added_after_run"] and check.attrs["run_uid"] == f["entry/entry_identifier"][()].decode()
        ended = datetime.fromisoformat(f["entry/end_time"][()].decode())
        assert datetime.fromisoformat(check.attrs["added_time"]) > ended
    assert "emissivity 0.30" in checked.stdout or "emissivity 0.29" in checked.stdout, checked.stdout
    below = emissivity(path, "1550 K")  # would need an emissivity above 1
    assert below.returncode == 2 and "nothing was added" in below.stderr, below.stderr
    with h5py.File(path, "r") as f:
        assert "emissivity_check_2" not in f["entry"]  # nothing written


def test_the_check_finds_the_melting_on_the_rise(sim_config, tmp_path):
    """Stopped before the strip has melted through, the pulse leaves its plateau on the rise."""
    path = recorded(sim_config, "platinum-melt.yaml", tmp_path, simulation={"sample": "platinum_strip"})
    with h5py.File(path, "r") as f:
        pulse = f["entry/pulse_0001"]
        trace = {k: pulse[k][()] for k in ("time", "temperature", "supply_time", "current", "voltage")}
    driven = trace["supply_time"][trace["current"] > 1.0]
    early = trace["time"] < driven[-1]
    first = plateaus(trace["time"][early], trace["temperature"][early], within=(1500, 2100))[0]
    change = phase_change(**trace, plateau=first)
    assert change.kind == "melting" and change.latent_fraction > 0.5


def test_a_hold_is_not_a_melting_plateau(sim_config, tmp_path):
    """The thin film held near 2000 K never melts: its hold is refused, with nothing written."""
    path = recorded(sim_config, "thin-film-2000K.yaml", tmp_path)
    with h5py.File(path, "r") as f:
        level = plateaus(f["entry/pulse_0001/time"][()], f["entry/pulse_0001/temperature"][()])[0].level
    checked = emissivity(path, f"{level:.1f} K")
    assert checked.returncode == 2 and "a hold or a steady state, not a melting" in checked.stderr, checked.stderr
    assert "Traceback" not in checked.stderr
    with h5py.File(path, "r") as f:
        assert "emissivity_check" not in f["entry"]
