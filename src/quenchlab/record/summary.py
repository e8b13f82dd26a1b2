"""One row per recorded run: what a sample went through, for library overviews and comparisons.

A pulse run is reduced over its pulses (means of the per-pulse figures, sums of the kinetic
integrals, which add from pulse to pulse); an aerosol sample over its collection phase.
"""
from __future__ import annotations

import math

import numpy as np

from quenchlab.record.reader import RunRecord

# name: (unit, how it is obtained)
RUN_FIGURES: dict[str, tuple[str, str]] = {
    "pulses": ("", "number of pulses recorded"),
    "peak_temperature": ("K", "mean over the pulses"),
    "cooling_rate_500K": ("K/s", "mean over the pulses of the mean rate over the first 500 K below the peak"),
    "energy": ("J", "total over the pulses"),
    "equivalent_time": ("s", "total over the pulses"),
    "diffusion_length": ("m", "sqrt of the sum of the pulses' L^2"),
    "grain_size_n2": ("m", "after every pulse, from d0: (d0^2 + sum of d^2 - d0^2)^(1/2)"),
    "grain_size_n3": ("m", "after every pulse, from d0: (d0^3 + sum of d^3 - d0^3)^(1/3)"),
    "flame_temperature": ("K", "mean over the collection phase"),
    "filter_pressure_rise": ("kPa", "slope of a least-squares line through the filter pressure over the collection"
                                    " phase, times its duration"),
    "collect_time": ("s", "duration of the collection phase"),
}


def summarise(record: RunRecord) -> dict[str, float]:
    """Every RUN_FIGURES entry for the run; NaN where the record does not hold it."""
    row = dict.fromkeys(RUN_FIGURES, math.nan)
    row.update(_pulse_row(record.figures))
    row.update(_aerosol_row(record))
    return row


def _pulse_row(figures: dict[str, np.ndarray]) -> dict[str, float]:
    if not figures:
        return {}
    row = {"pulses": float(len(next(iter(figures.values()))))}
    for name in ("peak_temperature", "cooling_rate_500K"):
        row[name] = _mean(figures.get(name))
    for name in ("energy", "equivalent_time"):
        row[name] = _total(figures.get(name))
    if "diffusion_length" in figures:
        row["diffusion_length"] = math.sqrt(_total(np.square(figures["diffusion_length"])))
    for n in (2, 3):
        row[f"grain_size_n{n}"] = _train_grain_size(figures.get(f"grain_size_n{n}"),
                                                    figures.get(f"grain_growth_n{n}"), n)
    return row


def _train_grain_size(size: np.ndarray | None, growth: np.ndarray | None, n: int) -> float:
    """Grain size after all the pulses: d0^n is any pulse's d^n - (d^n - d0^n); the growths add."""
    if size is None or growth is None:
        return math.nan
    known = np.isfinite(size) & np.isfinite(growth)
    if not known.all() or not known.any():
        return math.nan
    initial = float(np.median(size**n - growth))
    return max(initial + float(np.sum(growth)), 0.0) ** (1 / n)


def _aerosol_row(record: RunRecord) -> dict[str, float]:
    window = _collection(record)
    if window is None or "reactor_time" not in record.process:
        return {}
    start, end = window
    time = record.process["reactor_time"]
    inside = (time >= start) & (time <= end)
    row = {"collect_time": end - start}
    if "flame_temperature" in record.process:
        row["flame_temperature"] = _mean(record.process["flame_temperature"][inside])
    if "filter_pressure" in record.process:
        row["filter_pressure_rise"] = _rise(time[inside], record.process["filter_pressure"][inside], end - start)
    return row


def _rise(time: np.ndarray, values: np.ndarray, duration: float) -> float:
    """Least-squares slope of values over time, times duration (robust to the gauge's noise)."""
    keep = np.isfinite(time) & np.isfinite(values)
    if keep.sum() < 2 or np.ptp(time[keep]) == 0:
        return math.nan
    t = time[keep] - time[keep].mean()
    return float(np.sum(t * values[keep]) / np.sum(t * t) * duration)


def _collection(record: RunRecord) -> tuple[float, float] | None:
    """(start, end) reactor time of the collection phase, if the record marks both."""
    times = {phase: t for phase, t, _ in record.phases}
    if "collect" not in times or "end" not in times:
        return None
    return times["collect"], times["end"]


def collection_note(record: RunRecord) -> str:
    """The note the collection phase was marked with (e.g. a flame that did not settle)."""
    return next((note for phase, _, note in record.phases if phase == "collect"), "")


def _mean(values: np.ndarray | None) -> float:
    if values is None or not np.isfinite(values).any():
        return math.nan
    return float(np.nanmean(values))


def _total(values: np.ndarray | None) -> float:
    """Sum, or NaN if any value is unknown (a partial total would pass for a whole one)."""
    if values is None or values.size == 0 or not np.isfinite(values).all():
        return math.nan
    return float(np.sum(values))


def run_labels(records: list[RunRecord]) -> list[str]:
    """A short name per run: its sample, or its file name where samples repeat or are missing."""
    return unique_labels([r.sample for r in records], [r.path.stem for r in records])


def unique_labels(samples: list[str], fallbacks: list[str]) -> list[str]:
    """Each sample name, or its fallback where the name is missing or repeated."""
    return [s if s and samples.count(s) == 1 else f for s, f in zip(samples, fallbacks)]
