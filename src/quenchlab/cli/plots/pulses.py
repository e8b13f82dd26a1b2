"""PNG of one run's pulses: temperature (and its programme), current and power over a shared time
axis, each pulse of a train in its own shade of one colour scale. Marked on the temperature: the
pyrometer's measuring range (under-range readings are absent, not cold), the temperatures the
figures were computed at, the hottest pulse's peak and its cooling rates."""
from pathlib import Path

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from quenchlab.analysis.pulse import smooth_trace
from quenchlab.cli.plots.common import plt, pulse_span, readable, save, short_number, time_scale, title_of
from quenchlab.record.reader import RunRecord

PULSE_MAP = plt.get_cmap("viridis")
NAMED = 6  # pulses named in a legend; more get a colour bar
LABEL_BOX = {"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8}
MARKS = {"threshold": ("threshold", "tab:red", "-."), "fixed_temperature": ("cooling rate at", "tab:blue", ":"),
         "reference_temperature": ("t_eq reference", "tab:purple", ":")}


def plot_pulses(record: RunRecord, png: str | Path) -> Path:
    return save(pulse_figure(record), png)


def pulse_figure(record: RunRecord):
    """Every pulse of the run, marked; the power panel only where the supply measured its voltage."""
    pulses = record.pulses
    powered = any(np.isfinite(p.voltage).any() for p in pulses)
    heights = [2.0, 1.0, 1.0][: 3 if powered else 2]
    figure, axes = plt.subplots(len(heights), 1, sharex=True, figsize=(8, 2.6 * len(heights) + 1),
                                height_ratios=heights, constrained_layout=True)
    temp, amps = axes[0], axes[1]
    span = pulse_span(pulses) or (0.0, 1.0)
    unit, scale = time_scale(span[1] - span[0])
    colours = pulse_colours(len(pulses))
    for i, (pulse, colour) in enumerate(zip(pulses, colours)):
        temp.plot(pulse.time * scale, pulse.temperature, lw=1, color=colour,
                  label=pulse.name if len(pulses) <= NAMED else None)
        if pulse.programmed is not None:
            temp.plot(pulse.time * scale, pulse.programmed, lw=1, ls="--", color=colour,
                      label="programmed" if i == 0 else None)
        amps.plot(pulse.supply_time * scale, pulse.current, lw=1, color=colour)
        if powered:
            axes[2].plot(pulse.supply_time * scale, pulse.power, lw=1, color=colour)
    temp.set_xlim(span[0] * scale, span[1] * scale)
    mark_range(temp, record.measuring_range, pulses)
    _mark_analysis(temp, record.analysed_at)
    _mark_peak(temp, record, scale)
    if len(pulses) > NAMED:
        figure.colorbar(ScalarMappable(Normalize(1, len(pulses)), PULSE_MAP), ax=axes, label="pulse", shrink=0.6)
    if temp.get_legend_handles_labels()[0]:
        temp.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside: the marks stay readable
    temp.set_ylabel("temperature (K)")
    temp.set_title(title_of(record), fontsize=9)
    amps.set_ylabel("current (A)")
    if powered:
        axes[2].set_ylabel("power V*I (W)")
        readable(axes[2], 5.0)
    else:
        amps.text(0.99, 0.95, "no power panel: the supply measured no voltage (a capacitor bank measures only "
                  "its current)", transform=amps.transAxes, ha="right", va="top", fontsize=7, color="0.3")
    readable(amps, 0.5)
    axes[-1].set_xlabel(f"time from pulse start ({unit})")
    return figure


def pulse_colours(count: int) -> list:
    """One colour for a single pulse; shades of one scale, first to last, for a train."""
    if count == 1:
        return [plt.get_cmap("tab10")(0)]
    return [PULSE_MAP(0.9 * i / max(count - 1, 1)) for i in range(count)]


def mark_range(axis, measuring_range, pulses) -> None:
    """The pyrometer's floor (shaded below) and ceiling, the ceiling named only if far above the
    data; the view from just under the floor (a programme starting below it enters from there)."""
    measured = np.concatenate([p.temperature for p in pulses])
    measured = measured[np.isfinite(measured)]
    if measuring_range is None or not measured.size:
        readable(axis, 50.0)
        return
    floor, ceiling = measuring_range
    programmed = [p.programmed[np.isfinite(p.programmed)] for p in pulses if p.programmed is not None]
    low, high = floor, max([measured.max(), *(values.max() for values in programmed if values.size)])
    margin = 0.06 * max(high - low, 50.0)
    shown_ceiling = ceiling <= high + 0.4 * (high - low)
    top = max(high, ceiling if shown_ceiling else high) + margin
    axis.set_ylim(low - margin, top)
    axis.axhspan(low - margin, floor, color="0.9", zorder=0)
    axis.axhline(floor, color="0.5", lw=0.8)
    off_scale = "" if shown_ceiling else f"; its ceiling, {ceiling:.0f} K, is off the scale"
    axis.text(0.01, floor, f"below {floor:.0f} K: no reading (the pyrometer's floor{off_scale})",
              transform=axis.get_yaxis_transform(), va="top", fontsize=7, color="0.35")
    if shown_ceiling:
        axis.axhline(ceiling, color="0.5", lw=0.8)
        axis.text(0.01, ceiling, f"above {ceiling:.0f} K: over range (the pyrometer's ceiling)",
                  transform=axis.get_yaxis_transform(), va="bottom", fontsize=7, color="0.35")
    readable(axis, 50.0)


def _mark_analysis(axis, analysed_at: dict[str, float]) -> None:
    """A line at each temperature the figures were computed at (named once if two coincide)."""
    low, high = axis.get_ylim()
    names: dict[float, list[str]] = {}
    for key, value in analysed_at.items():
        names.setdefault(value, []).append(key)
    for value, keys in names.items():
        if low < value < high:
            _, colour, style = MARKS[keys[0]]
            axis.axhline(value, color=colour, lw=0.8, ls=style)
            words = ", ".join(MARKS[k][0] for k in keys)
            axis.text(0.99, value, f"{words} {value:.0f} K", transform=axis.get_yaxis_transform(), ha="right",
                      va="bottom", fontsize=7, color=colour)


def _mark_peak(axis, record: RunRecord, scale: float) -> None:
    """The hottest pulse's peak, and its cooling: a tangent at the fixed temperature and the mean
    rate over its first 500 K down (the figures the table reports)."""
    peaks = record.figures.get("peak_temperature")
    if peaks is None or not np.isfinite(peaks).any() or len(peaks) != len(record.pulses):
        return
    i = int(np.nanargmax(peaks))
    pulse, figures = record.pulses[i], {k: v[i] for k, v in record.figures.items()}
    smooth = smooth_trace(pulse.temperature)
    top = int(np.nanargmax(smooth))
    words = [f"peak {figures['peak_temperature']:.0f} K" + (f" ({pulse.name})" if len(record.pulses) > 1 else "")]
    if np.isfinite(rate := figures.get("cooling_rate_500K", np.nan)):
        words.append(f"first 500 K down at {short_number(rate)} K/s")
    axis.plot(pulse.time[top] * scale, smooth[top], "v", color="k", ms=5)
    axis.annotate("\n".join(words), (pulse.time[top] * scale, smooth[top]), xytext=(8, -4),
                  textcoords="offset points", fontsize=7, va="top", bbox=LABEL_BOX)
    fixed, rate = record.analysed_at.get("fixed_temperature"), figures.get("cooling_rate_fixed", np.nan)
    after = np.flatnonzero(smooth[top:] <= fixed) + top if fixed is not None and np.isfinite(rate) else []
    if len(after):
        t = float(pulse.time[after[0]])
        reach = 40.0 / rate  # s: a tangent 80 K long
        axis.plot(np.array([t - reach, t + reach]) * scale, [fixed + 40.0, fixed - 40.0], color="k", lw=1.5)
        axis.annotate(f"{short_number(rate)} K/s at {fixed:.0f} K", (t * scale, fixed), xytext=(-10, -8),
                      textcoords="offset points", fontsize=7, ha="right", va="top", bbox=LABEL_BOX)
