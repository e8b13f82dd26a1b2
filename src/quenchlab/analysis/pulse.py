"""Per-pulse figures of a flash Joule heating shot, computed from the pyrometer trace and the supply output.

Temperatures are in K and times in s. A NaN temperature means the pyrometer was under range.
Every temperature figure is taken from the lightly smoothed trace (see `smooth_trace`), and a
figure the data cannot support honestly is NaN rather than a guess; no function here raises on
poor data (only on arrays of mismatched shape, which is a caller error).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

GAS_CONSTANT = 8.314462618  # J/(mol K)
SMOOTHING_SAMPLES = 5  # width of the running median, samples (odd)
EDGE_OFFSET = 20.0  # K below the peak where the falling edge starts
PEAK_RATE_DROP = 100.0  # K below the peak where the cooling rate at the peak stops
FIRST_DROP = 500.0  # K below the peak for the mean cooling rate over the first 500 K
FIXED_HALF_BAND = 25.0  # K either side of the fixed temperature

FIGURES: dict[str, str] = {
    "peak_temperature": "K",
    "time_above_threshold": "s",
    "heating_rate": "K/s",
    "cooling_rate_peak": "K/s",
    "cooling_rate_fixed": "K/s",
    "cooling_rate_500K": "K/s",
    "energy": "J",
    "equivalent_time": "s",
    "diffusion_length": "m",
    "grain_growth_n2": "m^2",
    "grain_growth_n3": "m^3",
    "grain_size_n2": "m",
    "grain_size_n3": "m",
}

DEFINITIONS: dict[str, str] = {
    "peak_temperature": "maximum of the trace after a 5-sample running median",
    "time_above_threshold": "total time the smoothed trace is >= threshold (under-range samples count as below)",
    "heating_rate": (
        "0.8*(peak - baseline)/(t90 - t10), t10/t90 = interpolated rising-edge crossings of 10 %/90 % of the rise;"
        " baseline = lowest valid temperature before the peak"
    ),
    "cooling_rate_peak": (
        "least-squares -dT/dt of the falling edge between its last crossings of peak-20 K and peak-100 K"
    ),
    "cooling_rate_fixed": (
        "least-squares -dT/dt of the falling edge between its last crossings of T_fixed+25 K and T_fixed-25 K"
    ),
    "cooling_rate_500K": "480 K / (time the falling edge crosses peak-500 K - time it leaves peak-20 K)",
    "energy": "trapezoidal integral of V*I over the supply time base",
    "equivalent_time": "integral of exp[-(Ea/R)(1/T - 1/T_ref)] dt; under-range samples contribute nothing",
    "diffusion_length": "sqrt(integral of D0*exp(-Ea/(R*T)) dt); under-range samples contribute nothing",
    "grain_growth_n2": (
        "d^2 - d0^2 = k0_n2 * integral of exp(-Ea/(R*T)) dt, Ea of grain growth (normal growth);"
        " under-range samples contribute nothing"
    ),
    "grain_growth_n3": (
        "d^3 - d0^3 = k0_n3 * integral of exp(-Ea/(R*T)) dt, Ea of grain growth (growth pinned by second phases);"
        " under-range samples contribute nothing"
    ),
    "grain_size_n2": "(d0^2 + grain_growth_n2)^(1/2): the grain size after this pulse alone, from the initial size d0",
    "grain_size_n3": "(d0^3 + grain_growth_n3)^(1/3): the grain size after this pulse alone, from the initial size d0",
}


@dataclass(frozen=True)
class KineticParameters:
    """Arrhenius parameters of the diffusion process of interest (default: Cu in Cu)."""

    activation_energy: float = 211e3  # J/mol
    d0: float = 7.8e-5  # m^2/s
    reference_temperature: float = 2000.0  # K, for the Arrhenius-equivalent time


@dataclass(frozen=True)
class GrainGrowth:
    """d^n - d0^n = k0_n * integral exp(-Ea/(R T)) dt; the defaults are placeholders of a plausible
    order for metal nanoparticles, to be replaced by the user's own fit."""

    initial_size: float = 5e-9  # m, d0
    k0_n2: float = 1e-9  # m^2/s, normal growth
    k0_n3: float = 1e-17  # m^3/s, growth pinned by second phases or pores
    activation_energy: float = 211e3  # J/mol

    def k0(self, n: int) -> float:
        """The rate constant for exponent n (2 or 3), m^n/s."""
        return {2: self.k0_n2, 3: self.k0_n3}[n]


@dataclass(frozen=True)
class AnalysisSettings:
    """User choices for the per-pulse figures."""

    threshold: float = 1500.0  # K, for the time above threshold
    fixed_temperature: float = 1500.0  # K, where the cooling rate is also reported
    kinetics: KineticParameters = KineticParameters()
    grain: GrainGrowth = GrainGrowth()


def analyse_pulse(
    time: ArrayLike,
    temperature: ArrayLike,
    supply_time: ArrayLike | None = None,
    current: ArrayLike | None = None,
    voltage: ArrayLike | None = None,
    settings: AnalysisSettings = AnalysisSettings(),
) -> dict[str, float]:
    """Return every figure in FIGURES (same order) for one pulse; NaN where the data cannot support it."""
    time = np.asarray(time, dtype=float)
    temperature = np.asarray(temperature, dtype=float)
    if time.ndim != 1 or time.shape != temperature.shape:
        raise ValueError("time and temperature must be 1-D arrays of the same length")
    figures = dict.fromkeys(FIGURES, math.nan)
    figures["energy"] = pulse_energy(supply_time, current, voltage)
    smooth = smooth_trace(temperature)
    if np.isfinite(smooth).any():
        figures.update(_trace_figures(time, smooth, settings))
    return figures


def _trace_figures(time: np.ndarray, smooth: np.ndarray, settings: AnalysisSettings) -> dict[str, float]:
    """The figures that come from the (smoothed, not all-NaN) temperature trace."""
    peak_index = int(np.nanargmax(smooth))
    peak = float(smooth[peak_index])
    fixed = settings.fixed_temperature
    return {
        "peak_temperature": peak,
        "time_above_threshold": time_above(time, smooth, settings.threshold),
        "heating_rate": _heating_rate(time, smooth, peak_index),
        "cooling_rate_peak": _cooling_rate(time, smooth, peak - EDGE_OFFSET, peak - PEAK_RATE_DROP),
        "cooling_rate_fixed": _cooling_rate(time, smooth, fixed + FIXED_HALF_BAND, fixed - FIXED_HALF_BAND),
        "cooling_rate_500K": _first_drop_rate(time, smooth, peak),
        "equivalent_time": equivalent_time(time, smooth, settings.kinetics),
        "diffusion_length": diffusion_length(time, smooth, settings.kinetics),
        **_grain_figures(time, smooth, settings.grain),
    }


def _grain_figures(time: np.ndarray, smooth: np.ndarray, grain: GrainGrowth) -> dict[str, float]:
    """d^n - d0^n and the grain size d, for n = 2 and 3."""
    figures = {}
    for n in (2, 3):
        growth = grain_growth(time, smooth, n, grain)
        figures[f"grain_growth_n{n}"] = growth
        figures[f"grain_size_n{n}"] = grain_size(growth, n, grain.initial_size)
    return figures


def smooth_trace(temperature: ArrayLike) -> np.ndarray:
    """Centred running median over SMOOTHING_SAMPLES samples, ignoring missing ones; missing samples stay NaN."""
    values = np.asarray(temperature, dtype=float)
    values = np.where(np.isfinite(values), values, np.nan)
    if values.size == 0:
        return values
    half = SMOOTHING_SAMPLES // 2
    padded = np.pad(values, half, constant_values=np.nan)
    windows = np.sort(np.lib.stride_tricks.sliding_window_view(padded, SMOOTHING_SAMPLES), axis=1)
    count = np.isfinite(windows).sum(axis=1)  # NaNs sort last, so the valid values lead each row
    rows = np.arange(values.size)
    lower = windows[rows, np.maximum((count - 1) // 2, 0)]
    upper = windows[rows, count // 2]
    return np.where(np.isfinite(values), 0.5 * (lower + upper), np.nan)


def time_above(time: ArrayLike, temperature: ArrayLike, threshold: float) -> float:
    """Total time with T >= threshold, s (sum of sample intervals; NaN samples count as below)."""
    temperature = np.asarray(temperature, dtype=float)
    if not np.isfinite(temperature).any():
        return math.nan
    widths = _sample_widths(np.asarray(time, dtype=float))
    return float(widths[temperature >= threshold].sum())


def pulse_energy(supply_time: ArrayLike | None, current: ArrayLike | None, voltage: ArrayLike | None) -> float:
    """Energy delivered, J: trapezoidal integral of V*I over supply_time (missing samples skipped)."""
    if supply_time is None or current is None or voltage is None:
        return math.nan
    supply_time = np.asarray(supply_time, dtype=float)
    power = np.asarray(current, dtype=float) * np.asarray(voltage, dtype=float)
    if supply_time.ndim != 1 or power.shape != supply_time.shape:
        raise ValueError("supply_time, current and voltage must be 1-D arrays of the same length")
    keep = np.isfinite(supply_time) & np.isfinite(power)
    if keep.sum() < 2:
        return math.nan
    return float(np.sum(_sample_widths(supply_time[keep]) * power[keep]))


def arrhenius_integral(time: ArrayLike, temperature: ArrayLike, activation_energy: float) -> float:
    """Integral of exp(-Ea/(R T)) dt, s; NaN samples (under range) add nothing, NaN if none is valid."""
    temperature = np.asarray(temperature, dtype=float)
    valid = temperature > 0  # False for NaN
    if not valid.any():
        return math.nan
    factor = np.zeros_like(temperature)
    factor[valid] = np.exp(-activation_energy / (GAS_CONSTANT * temperature[valid]))
    return float(np.sum(_sample_widths(np.asarray(time, dtype=float)) * factor))


def equivalent_time(time: ArrayLike, temperature: ArrayLike,
                    kinetics: KineticParameters = KineticParameters()) -> float:
    """Arrhenius-equivalent time at T_ref, s: integral of exp[-(Ea/R)(1/T - 1/T_ref)] dt."""
    ea = kinetics.activation_energy
    reference = math.exp(ea / (GAS_CONSTANT * kinetics.reference_temperature))
    return arrhenius_integral(time, temperature, ea) * reference


def diffusion_length(time: ArrayLike, temperature: ArrayLike,
                     kinetics: KineticParameters = KineticParameters()) -> float:
    """Diffusion length, m: sqrt(integral of D0 exp(-Ea/(R T)) dt)."""
    return math.sqrt(kinetics.d0 * arrhenius_integral(time, temperature, kinetics.activation_energy))


def grain_growth(time: ArrayLike, temperature: ArrayLike, n: int, grain: GrainGrowth = GrainGrowth()) -> float:
    """d^n - d0^n, m^n: k0_n * integral of exp(-Ea/(R T)) dt (n = 2 or 3)."""
    return grain.k0(n) * arrhenius_integral(time, temperature, grain.activation_energy)


def grain_size(growth: float, n: int, initial_size: float) -> float:
    """Grain size d, m, from d^n - d0^n and d0; NaN if the growth is unknown."""
    return (initial_size**n + growth) ** (1 / n) if math.isfinite(growth) else math.nan


def _sample_widths(time: np.ndarray) -> np.ndarray:
    """Half the span to each neighbour, so that sum(widths * f) is the trapezoidal integral of f."""
    half_steps = np.diff(time) / 2
    widths = np.zeros_like(time)
    widths[:-1] += half_steps
    widths[1:] += half_steps
    return widths


def _heating_rate(time: np.ndarray, smooth: np.ndarray, peak_index: int) -> float:
    """0.8*(peak - baseline)/(t90 - t10), baseline = lowest valid temperature before the peak."""
    before = smooth[:peak_index]
    if not np.isfinite(before).any():
        return math.nan
    baseline = float(np.nanmin(before))
    rise = float(smooth[peak_index]) - baseline
    if rise <= 0:
        return math.nan
    t10 = _rising_crossing(time, smooth, baseline + 0.1 * rise, peak_index)
    t90 = _rising_crossing(time, smooth, baseline + 0.9 * rise, peak_index)
    return _rate(0.8 * rise, t10, t90)


def _cooling_rate(time: np.ndarray, smooth: np.ndarray, upper: float, lower: float) -> float:
    """-dT/dt of a least-squares line through the falling-edge samples between its crossings of upper and lower."""
    start = _falling_crossing(time, smooth, upper)
    end = _falling_crossing(time, smooth, lower)
    if not end > start:  # also False when either is NaN
        return math.nan
    inside = (time >= start) & (time <= end) & np.isfinite(smooth)
    if inside.sum() < 2:
        return math.nan
    t = time[inside] - time[inside].mean()
    return float(-np.sum(t * smooth[inside]) / np.sum(t * t))


def _first_drop_rate(time: np.ndarray, smooth: np.ndarray, peak: float) -> float:
    """Mean cooling rate from peak-20 K down to peak-500 K; NaN if the trace goes under range first."""
    start = _falling_crossing(time, smooth, peak - EDGE_OFFSET)
    end = _falling_crossing(time, smooth, peak - FIRST_DROP)
    return _rate(FIRST_DROP - EDGE_OFFSET, start, end)


def _rate(change: float, start: float, end: float) -> float:
    """change / (end - start); NaN unless end is a known time after start."""
    return change / (end - start) if end > start else math.nan


def _falling_crossing(time: np.ndarray, smooth: np.ndarray, level: float) -> float:
    """Time the trace last falls through level; NaN if it never reaches it or goes under range first."""
    at_or_above = np.flatnonzero(smooth >= level)
    if at_or_above.size == 0:
        return math.nan
    last = int(at_or_above[-1])
    if last + 1 == smooth.size or np.isnan(smooth[last + 1]):
        return math.nan
    return _interpolate(time, smooth, last, level)


def _rising_crossing(time: np.ndarray, smooth: np.ndarray, level: float, peak_index: int) -> float:
    """Time the trace last rises through level before the peak; NaN if the rise is not visible."""
    below = np.flatnonzero(smooth[:peak_index] < level)
    if below.size == 0:
        return math.nan
    last = int(below[-1])
    if np.isnan(smooth[last + 1]):
        return math.nan
    return _interpolate(time, smooth, last, level)


def _interpolate(time: np.ndarray, values: np.ndarray, index: int, level: float) -> float:
    """Time where the straight segment from sample index to index+1 meets level."""
    fraction = (level - values[index]) / (values[index + 1] - values[index])
    return float(time[index] + fraction * (time[index + 1] - time[index]))
