"""Runs side by side in one PNG: their traces (one colour per run) beside their figures. Pulses of
like length share one panel; a run ten times longer than another (a second-long anneal beside a
millisecond flash) gets its own row with its own time axis, or the flash would be a line."""
from pathlib import Path

import numpy as np

from quenchlab.cli.plots.common import (
    held_figures,
    metric_panels,
    plt,
    pulse_span,
    readable,
    run_colours,
    save,
    time_scale,
)
from quenchlab.cli.plots.pulses import mark_range
from quenchlab.record.reader import RunRecord, read_run
from quenchlab.record.summary import run_labels, summarise

COMPARED = ["peak_temperature", "cooling_rate_500K", "equivalent_time", "diffusion_length",
            "grain_size_n2", "grain_size_n3", "flame_temperature", "filter_pressure_rise"]
APART = 10.0  # runs whose pulse spans differ more than this factor are drawn in rows of their own


def compare_runs(runs: list[RunRecord | str | Path], png: str | Path) -> Path:
    """Runs (records or their files) in one PNG (`comparison_figure`)."""
    return save(comparison_figure([run if isinstance(run, RunRecord) else read_run(run) for run in runs]), png)


def comparison_figure(records: list[RunRecord]):
    """Left: temperature and power of every pulse (the flame temperature of aerosol samples);
    right: each run's summary figures, in the same colours."""
    labels, colours = run_labels(records), run_colours(len(records))
    style = {id(r): (label, colour) for r, label, colour in zip(records, labels, colours)}
    rows = [summarise(r) for r in records]
    names = held_figures(rows, COMPARED)
    groups = _groups([r for r in records if r.pulses])
    flames = [r for r in records if "flame_temperature" in r.process]
    columns = 2 if any(_powered(r) for group in groups for r in group) else 1
    height = 2.2 * max((len(groups) + bool(flames)) * 1.5, len(names), 2) + 1
    figure = plt.figure(figsize=(14, height), constrained_layout=True)
    left, right = figure.subfigures(1, 2, width_ratios=(3, 2))
    if len(groups) == 1:  # one group: its panels stacked, then the flames
        axes = left.subplots(columns + bool(flames), 1, squeeze=False)[:, 0]
        _draw_pulses(axes[:columns], groups[0], style)
        if flames:
            _draw_flames(axes[-1], flames, style)
    elif groups or flames:  # a row per group, its panels side by side; the flames below
        axes = left.subplots(len(groups) + bool(flames), columns, squeeze=False)
        for row, group in zip(axes, groups):
            _draw_pulses(row, group, style)
        if flames:
            _draw_flames(axes[-1, 0], flames, style)
            for spare in axes[-1, 1:]:
                spare.set_axis_off()
    if names:
        metric_panels(right.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0], labels, rows, names, colours)
    figure.suptitle("  vs  ".join(labels), fontsize=9)
    return figure


def _groups(records: list[RunRecord]) -> list[list[RunRecord]]:
    """One group of all runs if their pulse spans are alike, else one group per run."""
    spans = [np.ptp(pulse_span(r.pulses) or (0.0, 1.0)) for r in records]
    return [records] if not spans or max(spans) <= APART * min(spans) else [[r] for r in records]


def _powered(record: RunRecord) -> bool:
    return any(np.isfinite(p.voltage).any() for p in record.pulses)


def _draw_pulses(row, group: list[RunRecord], style: dict) -> None:
    """Temperature (and power, if any run measured it) of every pulse of the group's runs."""
    pulses = [p for r in group for p in r.pulses]
    span = pulse_span(pulses) or (0.0, 1.0)
    unit, scale = time_scale(span[1] - span[0])
    for record in group:
        label, colour = style[id(record)]
        for i, pulse in enumerate(record.pulses):
            name = label if i == 0 else None
            row[0].plot(pulse.time * scale, pulse.temperature, lw=1, color=colour, label=name)
            if pulse.programmed is not None:
                row[0].plot(pulse.time * scale, pulse.programmed, lw=1, ls="--", color=colour)
            if len(row) > 1 and _powered(record):
                row[1].plot(pulse.supply_time * scale, pulse.power, lw=1, color=colour, label=name)
    ranges = {r.measuring_range for r in group}
    mark_range(row[0], ranges.pop() if len(ranges) == 1 else None, pulses)
    row[0].set_ylabel("temperature (K)")
    row[0].legend(fontsize=7, loc="upper right")
    for axis in row:
        axis.set_xlim(span[0] * scale, span[1] * scale)
        axis.set_xlabel(f"time from pulse start ({unit})")
    if len(row) > 1:
        row[1].set_ylabel("power V*I (W)")
        readable(row[1], 5.0)
        unpowered = [style[id(r)][0] for r in group if not _powered(r)]
        if len(unpowered) == len(group):
            row[1].set_axis_off()
            row[1].text(0.5, 0.5, "no power: no voltage measured\n(a capacitor bank measures only its current)",
                        transform=row[1].transAxes, ha="center", fontsize=8, color="0.3")
        elif unpowered:
            row[1].text(0.99, 0.5, f"no voltage measured: {', '.join(unpowered)}", transform=row[1].transAxes,
                        ha="right", fontsize=7, color="0.3")


def _draw_flames(axis, records: list[RunRecord], style: dict) -> None:
    """Each aerosol sample's flame temperature from its valve switch."""
    for record in records:
        label, colour = style[id(record)]
        time = record.process["reactor_time"]
        origin = record.phases[0][1] if record.phases else time[0]  # the valve switch
        axis.plot(time - origin, record.process["flame_temperature"], lw=1, color=colour, label=label)
    axis.set_ylabel("flame temperature (K)")
    axis.set_xlabel("reactor time from the valve switch (s)")
    axis.legend(fontsize=7)
    readable(axis, 50.0)
