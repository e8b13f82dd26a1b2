"""Plateaus in a pulse's temperature trace, and whether one is a phase change.

A flat stretch is a phase change only if latent heat keeps it flat. With heat capacity C, losses
L(T) and electrical power P, the lumped sample of domain.md warms at C dT/dt = P - L + Q, where Q
is the latent heat given out (negative while melting). Just below the plateau, where Q = 0, the
trace gives C and L: on the rise, power P_up heats at r_up = (P_up - L) / C; with the output off
it cools at r_down = -L / C; so C = P_up / (r_up - r_down) and L = -C r_down. At the plateau,
with its own slope r and power P, Q = C r + L - P. A hold, or the steady state of a constant
current, takes just its losses (Q ~ 0); a melting sample takes its latent heat besides, and a
freezing one cools far slower than the solid below it.
"""
from dataclasses import dataclass

import numpy as np

from quenchlab.analysis.pulse import smooth_trace
from quenchlab.errors import QuenchlabError

BAND = 5.0  # K either side of the plateau's median
MIN_PLATEAU = 1e-3  # s
OFF = 0.02  # of the pulse's peak current: the output is off below it
MIN_LATENT = 0.25  # share of the heat flow at a plateau that must be latent for a phase change
BELOW = (0.03, 2 * BAND)  # losses are estimated from level - max(3 %, 20 K) to level - 10 K
MIN_POINTS = 5


@dataclass(frozen=True)
class Plateau:
    start: float  # s, first sample within BAND of the level
    end: float  # s, last such sample
    level: float  # K, the median of the stretch


@dataclass(frozen=True)
class PhaseChange:
    kind: str  # "melting" (heat taken in at the plateau) or "freezing" (given out)
    latent_fraction: float  # of the heat flow at the plateau that is latent heat


def plateaus(time, temperature, within: tuple[float, float] = (0.0, np.inf)) -> list[Plateau]:
    """The stretches of the trace that stay within 2 BAND K for at least MIN_PLATEAU s and read
    `within` (low, high) K, longest first; a QuenchlabError if there is none."""
    time, smooth = np.asarray(time, float), smooth_trace(temperature)
    found = []
    for first, stop in _flat_stretches(smooth, 2 * BAND):
        level = float(np.median(smooth[first:stop]))
        if time[stop - 1] - time[first] >= MIN_PLATEAU and within[0] <= level <= within[1]:
            inside = np.flatnonzero(np.abs(smooth[first:stop] - level) <= BAND) + first
            found.append(Plateau(float(time[inside[0]]), float(time[inside[-1]]), level))
    if not found:
        where = f" between {within[0]:.0f} and {within[1]:.0f} K" if np.isfinite(within[1]) else ""
        raise QuenchlabError(f"no plateau of at least {MIN_PLATEAU * 1e3:g} ms within {BAND:g} K{where} in the trace")
    return sorted(found, key=lambda p: p.start - p.end)


def _flat_stretches(smooth: np.ndarray, width: float) -> list[tuple[int, int]]:
    """(first, stop) index ranges of in-range samples that stay within `width` K of their first."""
    stretches, first = [], 0
    while first < smooth.size:
        if not np.isfinite(smooth[first]):
            first += 1
            continue
        stop = first + 1
        while stop < smooth.size and np.isfinite(smooth[stop]) and abs(smooth[stop] - smooth[first]) <= width:
            stop += 1
        stretches.append((first, stop))
        first = stop
    return stretches


def phase_change(time, temperature, supply_time, current, voltage, plateau: Plateau) -> PhaseChange:
    """Whether `plateau` is melting or freezing; a QuenchlabError saying why not (a hold, a steady
    state, a slow cooling, or a record that cannot tell)."""
    time, temperature = np.asarray(time, float), np.asarray(temperature, float)
    level, at = plateau.level, (time >= plateau.start) & (time <= plateau.end)
    amps = np.interp(time, supply_time, np.abs(current), left=np.nan, right=np.nan)
    power = np.interp(time, supply_time, np.asarray(current, float) * np.asarray(voltage, float),
                      left=np.nan, right=np.nan)
    on = amps > OFF * np.nanmax(np.abs(current))
    if not np.isfinite(power[at]).all():
        raise QuenchlabError(f"the record holds no V x I over the plateau at {level:.1f} K (a capacitor bank measures "
                             "no voltage): the heat taken there, and so a phase change, cannot be told")
    below = (temperature >= level - max(BELOW[0] * level, 4 * BAND)) & (temperature <= level - BELOW[1])
    cooling = below & ~on & np.isfinite(amps) & (time > plateau.end)
    rising = below & on & (time < plateau.start)
    slope = _slope(time, temperature, cooling, f"cooling with the output off just below the plateau at {level:.1f} K")
    if not slope < 0:
        raise QuenchlabError(f"below the plateau at {level:.1f} K the trace does not cool ({slope:.3g} K/s)")
    held, flat = float(np.mean(power[at])), float(np.polyfit(time[at], temperature[at], 1)[0])
    if not on[at].any():  # freezing: Q = C (r - r_down), out of the losses L = -C r_down
        latent = 1 - flat / slope
        if latent < MIN_LATENT:
            raise QuenchlabError(f"the stretch at {level:.1f} K cools at {flat:.3g} K/s with the output off, against "
                                 f"{slope:.3g} K/s just below it: not a freezing arrest")
        return PhaseChange("freezing", min(latent, 1.0))
    up = _slope(time, temperature, rising, f"rising just below the plateau at {level:.1f} K")
    if not up > 0:
        raise QuenchlabError(f"below the plateau at {level:.1f} K the trace does not rise ({up:.3g} K/s)")
    kept = float(np.mean(power[rising])) / (up - slope) * (flat - slope)  # melting: -Q = P - C (r - r_down)
    latent = (held - kept) / held
    if latent < MIN_LATENT:
        raise QuenchlabError(f"the plateau at {level:.1f} K took {held:.3g} W where keeping it costs about "
                             f"{kept:.3g} W (from the rise and the cooling below it): a hold or a steady state, "
                             "not a melting")
    return PhaseChange("melting", min(latent, 1.0))


def _slope(time: np.ndarray, temperature: np.ndarray, where: np.ndarray, what: str) -> float:
    """dT/dt (K/s) fitted over the samples `where`; a QuenchlabError naming `what` if too few."""
    if where.sum() < MIN_POINTS:
        raise QuenchlabError(f"the trace shows fewer than {MIN_POINTS} points {what}: a phase change cannot be told")
    return float(np.polyfit(time[where], temperature[where], 1)[0])
