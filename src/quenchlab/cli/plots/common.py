"""What the plots share: the matplotlib backend, saving, time and y axes a scientist can read, the
figures panels of the overview and comparison plots."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from quenchlab.record.reader import RunRecord  # noqa: E402

# a run's summary figures on the overview and comparison plots: (axis label, factor from its unit)
SHOWN = {
    "peak_temperature": ("peak temperature (K)", 1.0),
    "cooling_rate_500K": ("cooling rate, first 500 K (K/s)", 1.0),
    "equivalent_time": ("equivalent time at T_ref (ms)", 1e3),
    "diffusion_length": ("diffusion length (um)", 1e6),
    "grain_size_n2": ("grain size, n = 2 (nm)", 1e9),
    "grain_size_n3": ("grain size, n = 3 (nm)", 1e9),
    "flame_temperature": ("mean flame temperature (K)", 1.0),
    "filter_pressure_rise": ("filter pressure rise (kPa)", 1.0),
}
def save(figure, png: str | Path) -> Path:
    png = Path(png)
    figure.savefig(png, dpi=120)
    plt.close(figure)
    return png


def pulse_span(pulses) -> tuple[float, float] | None:
    """(start, end) in s for a pulse plot: from the record's start to a little after the last
    current (above 1 % of its peak) or the end of the temperature's cooling into the pyrometer's
    floor, whichever is later, of any pulse: no idle tail (a stray reading at the floor is not a
    pulse)."""
    ends = []
    for pulse in pulses:
        finite = np.isfinite(pulse.current)
        if finite.any():
            active = np.flatnonzero(finite & (np.abs(pulse.current) > 0.01 * np.nanmax(np.abs(pulse.current))))
            if active.size:
                ends.append(float(pulse.supply_time[active[-1]]))
        if np.isfinite(pulse.temperature).any():
            top = int(np.nanargmax(pulse.temperature))
            gone = np.flatnonzero(~np.isfinite(pulse.temperature[top:]))
            ends.append(float(pulse.time[top + gone[0] if gone.size else -1]))
    if not ends:
        return None
    start = min(min(float(p.time[0]), float(p.supply_time[0])) for p in pulses)
    return start, max(ends) + 0.05 * (max(ends) - start)


def metric_panels(axes, labels: list[str], rows: list[dict[str, float]], names: list[str], colours=None) -> None:
    """One panel per figure name: its value for each labelled run (a gap where unknown);
    `colours`: one marker colour per run."""
    x = np.arange(len(labels))
    for axis, name in zip(axes, names):
        label, factor = SHOWN[name]
        values = np.array([row[name] for row in rows]) * factor
        if colours is None:
            axis.plot(x, values, "o", ms=4)
        else:
            axis.scatter(x, values, s=60, c=colours, zorder=3)
        axis.set_ylabel(label, fontsize=8)
        axis.grid(alpha=0.3)
        if np.isfinite(values).any():  # samples a hair apart are not spread over the whole panel
            readable(axis, 0.02 * np.nanmax(np.abs(values)))
        axis.margins(x=0.5 / max(len(labels), 1) + 0.02)
    step = max(1, len(labels) // 40)  # at most ~40 labels on the axis
    few = len(labels) <= 8
    axes[-1].set_xticks(x[::step], [labels[i] for i in x[::step]], fontsize=7,
                        rotation=20 if few else 90, ha="right" if few else "center")


def held_figures(rows: list[dict[str, float]], names) -> list[str]:
    """The names some row has a value for."""
    return [n for n in names if any(np.isfinite(row[n]) for row in rows)]


def run_colours(count: int) -> list:
    return [plt.get_cmap("tab10")(i % 10) for i in range(count)]


def readable(axis, least: float) -> None:
    """Plain tick labels (no offset: 2000.015 K reads so, not +2e3 and .015) and a y range of at
    least `least` in the axis's unit, so noise on a steady value does not fill the panel."""
    axis.ticklabel_format(axis="y", useOffset=False, style="plain")
    low, high = axis.get_ylim()
    if high - low < least:
        middle = (low + high) / 2
        axis.set_ylim(middle - least / 2, middle + least / 2)


def time_scale(span: float) -> tuple[str, float]:
    """(unit, factor from s) for a time axis `span` s long: ms up to 2 s, then s."""
    return ("ms", 1e3) if span <= 2.0 else ("s", 1.0)


def short_number(value: float) -> str:
    """Three significant digits, short exponents (1.95e5) so a table fits 80 columns."""
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.0f}" if 100 <= abs(value) < 1e4 else f"{value:.3g}".replace("e+0", "e").replace("e-0", "e-")


def title_of(record: RunRecord) -> str:
    return f"{record.title}  ({record.path.name})"
