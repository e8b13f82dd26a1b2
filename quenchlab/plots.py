"""PNG of one recorded run: per pulse, temperature (and its programme), current and power over a
shared time axis; for an aerosol sample, its process data. Shared helpers for the other plots."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from .record import RunRecord  # noqa: E402

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


def plot_run(record: RunRecord, png: str | Path) -> Path:
    """The pulses of a run (or, without pulses, its process data) as one PNG."""
    if not record.pulses and "reactor_time" in record.process:
        return plot_process(record, png)
    figure, (temp, amps, watts) = plt.subplots(3, 1, sharex=True, figsize=(8, 8), constrained_layout=True)
    count = len(record.pulses)
    for i, (pulse, colour) in enumerate(zip(record.pulses, run_colours(count))):
        named = count <= 10 or i in (0, count - 1)  # a long train names its first and last pulse
        temp.plot(pulse.time * 1e3, pulse.temperature, lw=1, color=colour, label=pulse.name if named else None)
        if pulse.programmed is not None:
            temp.plot(pulse.time * 1e3, pulse.programmed, lw=1, ls="--", color=colour,
                      label="programmed" if i == 0 else None)
        amps.plot(pulse.supply_time * 1e3, pulse.current, lw=1, color=colour)
        watts.plot(pulse.supply_time * 1e3, pulse.power, lw=1, color=colour)
    if span := pulse_span(record.pulses):
        temp.set_xlim(span[0] * 1e3, span[1] * 1e3)
    temp.set_ylabel("temperature (K)")
    temp.set_title(_title(record), fontsize=9)
    if record.pulses:
        temp.legend(fontsize=8)
    else:
        temp.text(0.5, 0.5, "no pulse in this record", ha="center", transform=temp.transAxes)
    amps.set_ylabel("current (A)")
    watts.set_ylabel("power V*I (W)")
    watts.set_xlabel("time from pulse start (ms)")
    return save(figure, png)


def plot_process(record: RunRecord, png: str | Path) -> Path:
    """An aerosol sample's process data over reactor time, its phases marked: the flame, the gas
    flows, the liquid flow (an HPLC pump's, or a syringe's from its counters: negative while it
    refills), the filter pressure and the valve's port."""
    process, time = record.process, record.process["reactor_time"]
    panels = [(label, {name: process[name] for name in names if name in process})
              for label, names in (("flame temperature (K)", ["flame_temperature"]),
                                   ("gas flow (L/min)", [n for n in process if n.endswith("_flow") and n != "pump_flow"]),
                                   ("filter pressure (kPa)", ["filter_pressure"]), ("valve port", ["valve_port"]))]
    liquid = process.get("pump_flow")
    if liquid is None and "pump_content" in process and time.size > 1:
        liquid = -np.gradient(process["pump_content"], time) * 60
    if liquid is not None:
        panels.insert(2, ("liquid flow (mL/min)", {"liquid": liquid}))
    panels = [panel for panel in panels if panel[1]] or [("reactor time (s)", {"reactor_time": time})]
    figure, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(8, 2.1 * len(panels) + 1),
                                constrained_layout=True, squeeze=False)
    for axis, (label, curves) in zip(axes[:, 0], panels):
        for name, values in curves.items():
            axis.plot(time, values, lw=1, label=name.removesuffix("_flow"))
        if len(curves) > 1:
            axis.legend(fontsize=7, ncol=len(curves), loc="lower right")
        axis.set_ylabel(label, fontsize=8)
        for _, when, _ in record.phases:
            axis.axvline(when, color="grey", lw=0.8, ls=":")
    for phase, when, _ in record.phases:
        axes[0, 0].annotate(phase, (when, 1), xycoords=("data", "axes fraction"), fontsize=7, rotation=90,
                            va="top", ha="right")
    axes[0, 0].set_title(_title(record), fontsize=9)
    axes[-1, 0].set_xlabel("reactor time (s)")
    return save(figure, png)


def pulse_span(pulses) -> tuple[float, float] | None:
    """(start, end) in s for a pulse plot: from the record's start to a little after the last
    measured temperature or current (above 1 % of its peak) of any pulse: no idle tail."""
    ends = []
    for pulse in pulses:
        for time, values in ((pulse.time, pulse.temperature), (pulse.supply_time, pulse.current)):
            finite = np.isfinite(values)
            if not finite.any():
                continue
            active = np.flatnonzero(finite & (np.abs(values) > 0.01 * np.abs(values[finite]).max()))
            if active.size:
                ends.append(float(time[active[-1]]))
    if not ends:
        return None
    start = min(min(float(p.time[0]), float(p.supply_time[0])) for p in pulses)
    return start, max(ends) + 0.15 * (max(ends) - start)


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


def _title(record: RunRecord) -> str:
    return f"{record.title}  ({record.path.name})"
