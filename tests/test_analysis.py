"""Per-pulse figures checked against synthetic traces whose figures are known analytically."""
import math
import re

import numpy as np
import pytest
import yaml

from conftest import CONFIGS
from quenchlab.analysis.pulse import (
    DEFINITIONS,
    FIGURES,
    GAS_CONSTANT,
    AnalysisSettings,
    GrainGrowth,
    KineticParameters,
    analyse_pulse,
    diffusion_length,
    equivalent_time,
    grain_growth,
    grain_size,
    pulse_energy,
    smooth_trace,
)
from quenchlab.config.fjh import load_config
from quenchlab.errors import ConfigError

pytestmark = pytest.mark.filterwarnings("error")  # no RuntimeWarnings on NaN-laden traces

DT = 1e-5  # 100 kS/s
AMBIENT = 300.0
PEAK = 2000.0
RATE_UP = 1.5e5  # K/s
HOLD = 0.055  # s
FLOOR = 1100.0  # pyrometer under range below this
RATE_DOWN = 4e4  # K/s, linear cool
TAU = 0.036  # s, exponential cool towards AMBIENT


def program(cool, peak=PEAK, hold=HOLD, tail=0.05):
    """Linear ramp from AMBIENT at RATE_UP, a hold at peak, then cool(seconds since the hold ended)."""
    t_rise = (peak - AMBIENT) / RATE_UP
    t_end = t_rise + hold
    time = np.arange(round((t_end + tail) / DT)) * DT
    temperature = np.where(time < t_rise, AMBIENT + RATE_UP * time, peak)
    after = time > t_end
    temperature[after] = cool(time[after] - t_end, peak)
    return time, temperature


def linear_cool(s, peak):
    return peak - RATE_DOWN * s


def exponential_cool(s, peak):
    return AMBIENT + (peak - AMBIENT) * np.exp(-s / TAU)


def exp_time_to(temperature):
    """Time after the hold at which exponential_cool from PEAK reaches temperature."""
    return TAU * math.log((PEAK - AMBIENT) / (temperature - AMBIENT))


def pyrometer(temperature, noise=0.0, floor=FLOOR, seed=1):
    """Gaussian noise of `noise` K at PEAK growing fourfold towards the floor; NaN under range."""
    rng = np.random.default_rng(seed)
    sigma = noise * (1 + 3 * np.clip((PEAK - temperature) / (PEAK - floor), 0, 1))
    reading = temperature + sigma * rng.standard_normal(temperature.size)
    return np.where(reading >= floor, reading, np.nan)


def rectangle(level, duration=HOLD):
    """A trace at `level` for exactly `duration`, under range elsewhere."""
    time = np.arange(10_000) * DT
    temperature = np.full(time.size, np.nan)
    start = 1000
    temperature[start : start + round(duration / DT)] = level
    return time, temperature


def test_figures_come_in_the_announced_order_as_floats():
    time, temperature = program(linear_cool)
    figures = analyse_pulse(time, pyrometer(temperature))
    assert list(figures) == list(FIGURES)
    assert list(DEFINITIONS) == list(FIGURES)
    assert all(type(value) is float for value in figures.values())


def test_linear_program_without_noise():
    time, temperature = program(linear_cool)
    figures = analyse_pulse(time, pyrometer(temperature))
    assert figures["peak_temperature"] == pytest.approx(PEAK)
    assert figures["heating_rate"] == pytest.approx(RATE_UP, rel=1e-3)
    assert figures["cooling_rate_peak"] == pytest.approx(RATE_DOWN, rel=1e-3)
    assert figures["cooling_rate_fixed"] == pytest.approx(RATE_DOWN, rel=1e-3)
    assert figures["cooling_rate_500K"] == pytest.approx(RATE_DOWN, rel=1e-3)
    above = (PEAK - 1500) / RATE_UP + HOLD + (PEAK - 1500) / RATE_DOWN
    assert figures["time_above_threshold"] == pytest.approx(above, abs=2 * DT)
    assert math.isnan(figures["energy"])  # no supply data


def test_exponential_cool_without_noise():
    time, temperature = program(exponential_cool)
    figures = analyse_pulse(time, pyrometer(temperature))
    peak_rate = 80 / (exp_time_to(PEAK - 100) - exp_time_to(PEAK - 20))
    first_drop = 480 / (exp_time_to(PEAK - 500) - exp_time_to(PEAK - 20))
    assert figures["cooling_rate_peak"] == pytest.approx(peak_rate, rel=2e-3)
    assert figures["cooling_rate_fixed"] == pytest.approx((1500 - AMBIENT) / TAU, rel=2e-3)
    assert figures["cooling_rate_500K"] == pytest.approx(first_drop, rel=2e-3)
    above = (PEAK - 1500) / RATE_UP + HOLD + exp_time_to(1500)
    assert figures["time_above_threshold"] == pytest.approx(above, abs=2 * DT)


def test_exponential_cool_with_noise():
    time, temperature = program(exponential_cool)
    figures = analyse_pulse(time, pyrometer(temperature, noise=2.0))
    assert figures["peak_temperature"] == pytest.approx(PEAK, abs=6.0)
    assert figures["heating_rate"] == pytest.approx(RATE_UP, rel=0.03)
    peak_rate = 80 / (exp_time_to(PEAK - 100) - exp_time_to(PEAK - 20))
    first_drop = 480 / (exp_time_to(PEAK - 500) - exp_time_to(PEAK - 20))
    assert figures["cooling_rate_peak"] == pytest.approx(peak_rate, rel=0.03)
    # a 50 K band at ~6 K of noise pins the slope to a few per cent only
    assert figures["cooling_rate_fixed"] == pytest.approx((1500 - AMBIENT) / TAU, rel=0.05)
    assert figures["cooling_rate_500K"] == pytest.approx(first_drop, rel=0.03)
    above = (PEAK - 1500) / RATE_UP + HOLD + exp_time_to(1500)
    assert figures["time_above_threshold"] == pytest.approx(above, rel=2e-3)


def test_sag_inside_the_hold_is_not_the_falling_edge():
    time, temperature = program(linear_cool)
    middle = np.searchsorted(time, (PEAK - AMBIENT) / RATE_UP + HOLD / 2)
    temperature[middle : middle + 20] -= 50.0  # dips below peak-20 K but recovers
    figures = analyse_pulse(time, pyrometer(temperature, noise=2.0))
    assert figures["cooling_rate_peak"] == pytest.approx(RATE_DOWN, rel=0.02)
    assert figures["cooling_rate_500K"] == pytest.approx(RATE_DOWN, rel=0.01)


def test_noise_spike_does_not_set_the_peak():
    noise = 3.0
    time, temperature = program(linear_cool)
    clean = pyrometer(temperature, noise=noise)
    spiked = clean.copy()
    spiked[np.searchsorted(time, 0.03)] += 300.0
    peak_clean = analyse_pulse(time, clean)["peak_temperature"]
    peak_spiked = analyse_pulse(time, spiked)["peak_temperature"]
    assert abs(peak_spiked - peak_clean) <= noise
    assert abs(peak_spiked - PEAK) <= 3 * noise


def test_floor_above_peak_minus_500_gives_nan_not_a_guess():
    time, temperature = program(linear_cool)
    figures = analyse_pulse(time, pyrometer(temperature, floor=1600.0))
    assert math.isnan(figures["cooling_rate_500K"])
    assert math.isnan(figures["cooling_rate_fixed"])  # 1475-1525 K is under range
    assert figures["cooling_rate_peak"] == pytest.approx(RATE_DOWN, rel=1e-3)
    assert figures["heating_rate"] == pytest.approx(RATE_UP, rel=1e-3)


def test_pulse_not_exceeding_fixed_temperature_band():
    time, temperature = program(linear_cool, peak=1510.0)
    figures = analyse_pulse(time, pyrometer(temperature))
    assert math.isnan(figures["cooling_rate_fixed"])
    assert figures["time_above_threshold"] == pytest.approx(10 / RATE_UP + HOLD + 10 / RATE_DOWN, abs=2 * DT)


def test_pulse_below_threshold_spends_no_time_above_it():
    time, temperature = program(linear_cool, peak=1400.0)
    figures = analyse_pulse(time, pyrometer(temperature))
    assert figures["time_above_threshold"] == 0.0
    assert figures["peak_temperature"] == pytest.approx(1400.0)


@pytest.mark.parametrize("temperature", [np.full(500, np.nan), np.array([])])
def test_trace_without_valid_samples_gives_nan_figures(temperature):
    time = np.arange(temperature.size) * DT
    figures = analyse_pulse(time, temperature)
    assert list(figures) == list(FIGURES)
    assert all(math.isnan(value) for value in figures.values())


def test_mismatched_trace_arrays_are_a_caller_error():
    with pytest.raises(ValueError):
        analyse_pulse(np.arange(10) * DT, np.full(9, PEAK))


def test_energy_of_a_rectangular_pulse_on_its_own_time_base():
    supply_time = np.arange(-500, 5000) * 2e-5  # 50 kS/s, not the pyrometer's clock
    on = (supply_time >= 0) & (np.arange(supply_time.size) < 500 + round(HOLD / 2e-5))
    current = np.where(on, 10.0, 0.0)
    voltage = np.where(on, 20.0, 0.0)
    assert pulse_energy(supply_time, current, voltage) == pytest.approx(11.0, rel=1e-3)
    time, temperature = rectangle(PEAK)
    assert analyse_pulse(time, temperature, supply_time, current, voltage)["energy"] == pytest.approx(11.0, rel=1e-3)
    assert math.isnan(pulse_energy(None, current, voltage))


def test_equivalent_time_of_a_rectangle():
    kinetics = KineticParameters()
    time, temperature = rectangle(kinetics.reference_temperature)
    assert equivalent_time(time, temperature, kinetics) == pytest.approx(HOLD, rel=1e-9)
    hotter = 2200.0
    time, temperature = rectangle(hotter)
    boost = math.exp(-(kinetics.activation_energy / GAS_CONSTANT) * (1 / hotter - 1 / kinetics.reference_temperature))
    assert equivalent_time(time, temperature, kinetics) == pytest.approx(HOLD * boost, rel=1e-9)
    figures = analyse_pulse(time, temperature, settings=AnalysisSettings(kinetics=kinetics))
    assert figures["equivalent_time"] == pytest.approx(HOLD * boost, rel=1e-9)


@pytest.mark.parametrize("level, expected", [(2000.0, 3.6e-6), (1500.0, 0.44e-6)])
def test_diffusion_length_of_copper_in_copper(level, expected):
    kinetics = KineticParameters(activation_energy=211e3, d0=7.8e-5)
    time, temperature = rectangle(level)
    exact = math.sqrt(kinetics.d0 * math.exp(-kinetics.activation_energy / (GAS_CONSTANT * level)) * HOLD)
    length = diffusion_length(time, temperature, kinetics)
    assert length == pytest.approx(exact, rel=1e-9)
    assert length == pytest.approx(expected, rel=0.02)
    assert analyse_pulse(time, temperature)["diffusion_length"] == pytest.approx(exact, rel=1e-9)


def arrhenius(level, activation_energy):
    return math.exp(-activation_energy / (GAS_CONSTANT * level))


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("level", [1500.0, 2000.0])
def test_grain_growth_of_an_isothermal_plateau(n, level):
    """d^n - d0^n = k0 exp(-Ea/(R T)) t on a plateau; the under-range samples around it add nothing."""
    grain = GrainGrowth(initial_size=8e-9, k0_n2=3e-9, k0_n3=4e-17, activation_energy=180e3)
    time, temperature = rectangle(level)
    exact = grain.k0(n) * arrhenius(level, grain.activation_energy) * HOLD
    assert grain_growth(time, temperature, n, grain) == pytest.approx(exact, rel=1e-9)
    figures = analyse_pulse(time, temperature, settings=AnalysisSettings(grain=grain))
    assert figures[f"grain_growth_n{n}"] == pytest.approx(exact, rel=1e-9)
    assert figures[f"grain_size_n{n}"] == pytest.approx((grain.initial_size**n + exact) ** (1 / n), rel=1e-9)


def test_grain_growth_adds_over_two_plateaus_and_uses_its_own_activation_energy():
    grain = GrainGrowth(initial_size=0.0, k0_n2=1e-9, k0_n3=1e-17, activation_energy=150e3)
    time = np.arange(20_000) * DT
    temperature = np.full(time.size, np.nan)
    temperature[1000:6000] = 1800.0  # 50 ms
    temperature[9000:11000] = 2200.0  # 20 ms
    integral = 0.05 * arrhenius(1800.0, 150e3) + 0.02 * arrhenius(2200.0, 150e3)
    settings = AnalysisSettings(kinetics=KineticParameters(activation_energy=250e3), grain=grain)
    figures = analyse_pulse(time, temperature, settings=settings)
    assert figures["grain_growth_n2"] == pytest.approx(1e-9 * integral, rel=1e-3)  # smoothing rounds each edge
    assert figures["grain_growth_n3"] == pytest.approx(1e-17 * integral, rel=1e-3)
    assert figures["grain_size_n2"] == pytest.approx(math.sqrt(1e-9 * integral), rel=1e-3)  # from d0 = 0
    assert figures["grain_size_n3"] == pytest.approx((1e-17 * integral) ** (1 / 3), rel=1e-3)


def test_grain_size_of_an_unknown_growth_is_unknown():
    assert math.isnan(grain_size(math.nan, 2, 5e-9))
    assert grain_size(0.0, 3, 5e-9) == pytest.approx(5e-9)
    time = np.arange(100) * DT
    assert math.isnan(grain_growth(time, np.full(100, np.nan), 2))


def write_analysis(tmp_path, analysis: dict):
    text = (CONFIGS / "fjh-sim.yaml").read_text().split("\nanalysis:")[0]
    path = tmp_path / "rig.yaml"
    path.write_text(text + "\n" + yaml.safe_dump({"analysis": analysis}))
    return path


def test_grain_growth_parameters_come_from_the_config_with_units(tmp_path):
    path = write_analysis(tmp_path, {"activation_energy": "200 kJ/mol", "grain_growth": {
        "initial_size": "12 nm", "k0_n2": "2e-3 um^2/s", "k0_n3": "3e-17 m^3/s"}})
    settings = load_config(path)[0].analysis.settings()
    assert settings.grain == GrainGrowth(initial_size=pytest.approx(12e-9), k0_n2=pytest.approx(2e-15),
                                         k0_n3=pytest.approx(3e-17), activation_energy=pytest.approx(200e3))
    path = write_analysis(tmp_path, {"grain_growth": {"activation_energy": "35 kcal/mol"}})
    assert load_config(path)[0].analysis.settings().grain.activation_energy == pytest.approx(35 * 4184, rel=1e-3)
    assert load_config(CONFIGS / "fjh-sim.yaml")[0].analysis.settings().grain == GrainGrowth()


@pytest.mark.parametrize("grain, message", [
    ({"k0_n2": "1e-9 m^3/s"}, "field analysis.grain_growth.k0_n2: '1e-9 m^3/s' is not convertible to m^2/s"),
    ({"k0_n3": "1e-17"}, "field analysis.grain_growth.k0_n3: needs a unit, e.g. '1e-17 m^3/s'"),
    ({"k0_n2": "0 m^2/s"}, "field analysis.grain_growth.k0_n2: Input should be greater than 0"),
    ({"initial_size": "-2 nm"}, "field analysis.grain_growth.initial_size: Input should be greater than or equal to 0"),
    ({"k0": "1e-9 m^2/s"}, "field analysis.grain_growth.k0: unknown key; allowed keys: initial_size, k0_n2, k0_n3"),
])
def test_bad_grain_growth_parameters_are_named(tmp_path, grain, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write_analysis(tmp_path, {"grain_growth": grain}))


def test_smoothing_keeps_monotone_edges_and_gaps_and_drops_spikes():
    trace = np.array([np.nan, np.nan, 1100.0, 1200.0, 1300.0, 1400.0, 1500.0, 1600.0, 1700.0, np.nan])
    smooth = smooth_trace(trace)
    assert np.array_equal(np.isnan(smooth), np.isnan(trace))
    assert smooth[4:7] == pytest.approx(trace[4:7])
    flat = np.full(9, PEAK)
    flat[4] += 500.0
    assert smooth_trace(flat) == pytest.approx(np.full(9, PEAK))
