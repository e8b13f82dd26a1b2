"""Temperature recipes: the profile, the sample model identified from a calibration pulse, the
current that realises a profile, learning from pulse to pulse, the limits; and a kelvin recipe
run on the thin-film twin from the command line, its record read back."""
import subprocess

import h5py
import numpy as np
import pytest
import yaml

from conftest import CONFIGS, QUENCHLAB, wall_timed
from quenchlab.config.fjh import load_config
from quenchlab.control.hold import HoldController
from quenchlab.control.profile import learned
from quenchlab.control.thermal_model import AMBIENT, SampleModel, identify
from quenchlab.errors import ConfigError, LimitError
from quenchlab.files import validate
from quenchlab.plans.recipe import checked_plan
from quenchlab.reactor.fjh import FJHReactor
from quenchlab.recipes.kelvin import TemperatureRecipe, profile, program_for
from quenchlab.recipes.load import load_recipe

KELVIN = CONFIGS / "recipes" / "thin-film-2000K-kelvin.yaml"
TRUTH = SampleModel(r0=2.3, r1=-7e-4, r2=2e-7, heat_capacity=4e-3, radiative=1.9e-11, conductive=6e-3,
                    t_low=300.0, t_high=3000.0)


def recipe(**changes) -> TemperatureRecipe:
    data = {**yaml.safe_load(KELVIN.read_text()), **changes}
    return validate(TemperatureRecipe, data, "recipe.yaml")


def simulate(model: SampleModel, amps: np.ndarray, dt: float, floor: float = 1100.0, noise: float = 2.0):
    """A pulse on `model` driven by `amps` (one value per dt): the pyrometer trace (NaN below
    `floor`, Gaussian noise) and the supply's V and I, all on the same time base."""
    rng = np.random.default_rng(1)
    temperature = np.empty(amps.size)
    t = AMBIENT
    for i, current in enumerate(amps):
        temperature[i] = t
        t += dt * (current ** 2 * model.resistance(t) - model.loss(t)) / model.heat_capacity
    time = np.arange(amps.size) * dt
    sensed = temperature + rng.normal(0, noise, amps.size)
    return time, np.where(temperature < floor, np.nan, sensed), amps * model.resistance(temperature), temperature


def test_the_profile_of_a_ramp_and_a_hold():
    shape = profile(recipe())
    ramp = (2000 - AMBIENT) / 1e5
    assert shape.duration == pytest.approx(ramp + 0.055)
    assert shape.temperatures[0] == AMBIENT and shape.temperatures[-1] == 2000
    assert shape.holds == ((pytest.approx(ramp), pytest.approx(ramp + 0.055), 2000),)
    assert shape.ramps == ((0.0, pytest.approx(ramp)),)
    assert np.isnan(shape.at(np.array([-1e-3, shape.duration + 1e-3]))).all()
    assert len(shape.times) - 1 <= 500


def test_the_calibration_pulse_identifies_the_sample():
    dt = 10e-6
    amps = np.where(np.arange(25000) * dt < 0.03, 16.0, 0.0)
    time, sensed, volts, _ = simulate(TRUTH, amps, dt)
    model = identify(time, sensed, time, amps, volts)
    for t in (1300.0, 1700.0, 2000.0):
        assert model.resistance(t) == pytest.approx(TRUTH.resistance(t), rel=0.01)
        assert model.loss(t) == pytest.approx(float(TRUTH.loss(t)), rel=0.05)
    assert model.heat_capacity == pytest.approx(TRUTH.heat_capacity, rel=0.05)
    assert 1080 <= model.t_low < 1150 and model.t_high > 1900


def test_a_calibration_pulse_that_stays_under_range_is_refused_with_what_to_change():
    dt = 10e-6
    amps = np.where(np.arange(5000) * dt < 0.005, 8.0, 0.0)
    time, sensed, volts, _ = simulate(TRUTH, amps, dt)
    with pytest.raises(Exception, match="raise calibration.level or calibration.dwell"):
        identify(time, sensed, time, amps, volts)


def test_the_current_computed_for_a_profile_takes_the_model_along_it():
    shape = profile(recipe())
    amps = TRUTH.current_for(shape.times, shape.temperatures)
    dt = 1e-6
    steps = np.searchsorted(shape.times, np.arange(0, shape.duration, dt), side="right") - 1
    time, _, _, temperature = simulate(TRUTH, amps[steps], dt, noise=0.0)
    error = temperature - shape.at(time)
    assert np.nanmax(np.abs(error[time > 0.005])) < 0.01 * 2000


def test_learning_moves_the_reference_by_the_error_where_the_pyrometer_saw_it():
    shape = profile(recipe())
    time = np.linspace(0, shape.duration, 7000)
    measured = shape.at(time) - 20.0  # 20 K short everywhere ...
    measured[time < 0.01] = np.nan  # ... but under range at first
    reference = learned(shape, shape.temperatures, time, measured, gain=0.5)
    late, early = shape.times > 0.012, shape.times < 0.0095
    assert np.allclose((reference - shape.temperatures)[late], 10.0)
    assert np.allclose((reference - shape.temperatures)[early], 0.0)


def test_a_minutes_long_hold_is_held_on_the_pyrometer_with_a_wrong_model():
    """The loop corrects a model 5-20 % off; below the pyrometer's range the model alone drives."""
    wrong = SampleModel(r0=2.3 * 1.05, r1=-7e-4, r2=2e-7, heat_capacity=4.4e-3, radiative=1.7e-11,
                        conductive=8e-3, t_low=1100.0, t_high=2100.0)
    shape = profile(recipe(segments=[{"ramp_to": "1400 K", "over": "2 s"}, {"hold": "30 s"}]))
    control, rng = HoldController(shape, wrong, max_current=40.0), np.random.default_rng(2)
    temperature, amps, dt, rows = AMBIENT, 0.0, 5e-4, []
    for tick in range(int(shape.duration / 0.1)):
        for _ in range(200):  # 0.1 s of the sample between ticks
            temperature += dt * (amps ** 2 * TRUTH.resistance(temperature)
                                 - TRUTH.loss(temperature)) / TRUTH.heat_capacity
        read = temperature + rng.normal(0, 2.0) if temperature > 1100 else np.nan
        amps = control.current(tick * 0.1 + 0.1, read)
        rows.append((tick * 0.1 + 0.1, temperature))
    time, achieved = np.array(rows).T
    assert shape.tracking(time, achieved)["hold_rms_relative"] < 0.005
    late = control.current(shape.duration + 0.01, 1400.0)  # the last tick, a little late
    assert 0 < late < 10


def run_quenchlab(tmp_path, config, recipe_path):
    return subprocess.run([QUENCHLAB, "run", config, recipe_path, "--sim", "--data-dir", tmp_path],
                          capture_output=True, text=True, timeout=120)


@wall_timed
@pytest.mark.parametrize("config", ["fjh-genesys-sim", "fjh-sim"])
def test_an_anneal_is_held_on_the_pyrometer_by_either_supply(tmp_path, config):
    anneal = CONFIGS / "recipes" / "thin-film-anneal-kelvin.yaml"
    if config == "fjh-sim":  # the N6900 rig's energy limit (60 J) takes a shorter anneal and calibration
        data = {**yaml.safe_load(anneal.read_text()), "pulses": 1, "calibration": {"level": "12 A", "dwell": "100 ms"},
                "segments": [{"ramp_to": "1200 K", "over": "0.3 s"}, {"hold": "0.6 s"}]}
        anneal = tmp_path / "anneal.yaml"
        anneal.write_text(yaml.safe_dump(data))
    run = run_quenchlab(tmp_path, CONFIGS / f"{config}.yaml", anneal)
    assert run.returncode == 0, run.stderr
    record, = tmp_path.glob("*.h5")
    with h5py.File(record, "r") as f:
        assert "closed loop on the pyrometer" in f["entry/metadata"][()].decode()
        assert f["entry/sample_model/sample_model_r0"][0] > 0
        assert f["entry/pulse/hold_rms_relative"][()].max() <= 0.02
        pulse = f["entry/pulse_0001"]
        held = pulse["time"][()] > 0.6
        assert np.nanmax(np.abs(pulse["temperature"][()][held] - 1200)) < 40
        assert np.all(np.isfinite(pulse["current"][()])) and pulse["current"][()].max() < 12


@pytest.mark.parametrize("config, changes, expected", [
    ("fjh-sim", {"segments": [{"ramp_to": "2800 K", "over": "20 ms"}]},
     r"segments\.0\.ramp_to: 2800 K is above the configured max_temperature"),
    ("fjh-sim", {"segments": [{"ramp_to": "900 K", "over": "20 ms"}]},
     r"outside the pyrometer's range \(1100-2773\.15 K\)"),
    ("fjh-sim", {"calibration": {"level": "45 A", "dwell": "30 ms"}}, r"\(calibration\): list step 0 at 45 A exceeds"),
    ("fjh-sim", {"compliance": "60 V", "segments": [{"ramp_to": "1400 K", "over": "1 s"}]},
     r"compliance: 60 V exceeds the configured limit of 50 V"),
    ("fjh-genesys-sim", {"calibration": {"level": "16 A", "dwell": "20 ms"}},
     r"calibration.*shorter than the 36\.4 ms"),
    ("fjh-genesys-sim", {"calibration": {"level": "16 A", "dwell": "80 ms"}},
     r"calibration\.dwell: 80 ms is shorter than the 109 ms a host-timed calibration needs"),
    ("fjh-genesys-sim", {"calibration": {"level": "16 A", "dwell": "150 ms"}, "control_period": "20 ms"},
     r"control_period: 20 ms is shorter than the 49\.4 ms"),
    ("fjh-genesys-sim", {"calibration": {"level": "16 A", "dwell": "150 ms"},
                         "segments": [{"ramp_to": "1400 K", "over": "1 s"}, {"hold": "5 s"}]},
     r"raise instruments\.supply\.foldback_delay"),
    ("fjh-capbank-sim", {}, r"a temperature recipe cannot run on the capbank supply"),
])
def test_what_can_be_checked_before_the_sample_is_known_is_checked(config, changes, expected):
    with pytest.raises(ConfigError, match=expected):
        checked_plan(recipe(**changes), load_config(CONFIGS / f"{config}.yaml")[0], "recipe.yaml")


def test_the_list_for_the_calibrated_sample_is_checked_against_the_limits():
    config = load_config(CONFIGS / "fjh-sim.yaml")[0]
    shape = profile(recipe())
    program = program_for(shape, shape.temperatures, TRUTH, recipe(), config, "recipe.yaml")
    assert len(program.levels) == len(shape.times) - 1 and max(program.levels) < config.limits.max_current
    tight = config.model_copy(update={"limits": config.limits.model_copy(update={"max_energy_per_pulse": 10.0})})
    with pytest.raises(LimitError, match=r"list computed for the calibrated sample.*max_energy_per_pulse of 10 J"):
        program_for(shape, shape.temperatures, TRUTH, recipe(), tight, "recipe.yaml")


def test_a_kelvin_recipe_holds_within_two_percent_on_the_thin_film_twin(tmp_path):
    run = subprocess.run([QUENCHLAB, "run", CONFIGS / "fjh-sim.yaml", KELVIN, "--sim", "--data-dir", tmp_path],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    record, = tmp_path.glob("*.h5")
    with h5py.File(record, "r") as f:
        pulse = f["entry/pulse"]
        held, ramp = pulse["hold_rms_relative"][()], pulse["ramp_rate"][()]
        assert f["entry/calibration/peak_temperature"].shape == (1,)
        assert f["entry/sample_model/sample_model_heat_capacity"].attrs["units"] == "J/K"
        assert pulse["hold_rms_error"].attrs["units"] == "K" and len(held) == 6
        assert held.max() <= 0.02 and held[-1] < held[0] / 2  # after calibration, and better with learning
        assert ramp[-1] >= 0.98e5
        first = f["entry/pulse_0001"]
        programmed, measured = first["programmed_temperature"][()], first["temperature"][()]
        assert np.nanmax(programmed) == pytest.approx(2000)
        assert np.nanmax(measured) == pytest.approx(2000, rel=0.1)
        assert not np.array_equal(first["list_levels"][()], f["entry/pulse_0006/list_levels"][()])  # learned


def test_a_learned_pulse_over_the_limits_stops_the_run_with_the_output_off(tmp_path):
    config = yaml.safe_load((CONFIGS / "fjh-sim.yaml").read_text())
    config["limits"]["max_energy_per_pulse"] = "20 J"  # the calibration pulse fits; the profile does not
    (tmp_path / "rig.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run([QUENCHLAB, "run", tmp_path / "rig.yaml", KELVIN, "--sim", "--data-dir", tmp_path],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "max_energy_per_pulse of 20 J" in run.stderr and "the supply output is off" in run.stderr
    record, = tmp_path.glob("*.h5")
    with h5py.File(record, "r") as f:
        assert f["entry/exit_status"][()].decode() == "fail"
        assert f["entry/calibration/peak_temperature"].shape == (1,) and "pulse" not in f["entry/num_events"]


def test_the_example_recipe_loads_as_a_temperature_recipe():
    loaded, _ = load_recipe(KELVIN)
    assert isinstance(loaded, TemperatureRecipe) and loaded.calibration.level == 16.0


def test_a_closed_loop_that_would_pass_the_energy_limit_stops_with_the_output_off():
    """A model that underrates the losses passes the check before the pulse; the loop, pushing
    the current up to hold the temperature, meets the limit tick by tick and stops."""
    config = load_config(CONFIGS / "fjh-genesys-sim.yaml")[0]
    config = config.model_copy(update={"limits": config.limits.model_copy(update={"max_energy_per_pulse": 50.0})})
    shape = profile(recipe(segments=[{"ramp_to": "1200 K", "over": "0.3 s"}, {"hold": "2 s"}]))
    underrated = SampleModel(r0=1.6, r1=0.0, r2=0.0, heat_capacity=0.0, radiative=0.8e-11, conductive=0.0,
                             t_low=1200.0, t_high=1200.0)
    with FJHReactor(config, simulate=True) as reactor:
        flyer = reactor.closed_loop_flyer
        flyer.load(shape, underrated, 25.0, 0.05)
        flyer.kickoff().wait(timeout=10)
        with pytest.raises(Exception, match="max_energy_per_pulse of 50 J: stopped"):
            flyer.complete().wait(timeout=30)
        reactor.twins.world.advance()
        assert not reactor.twins.supply.output and reactor.twins.world.amps == 0.0
        delivered = sum(v * a * 0.05 for _, _, v, a in flyer._rows)
        assert 30 < delivered <= 50
