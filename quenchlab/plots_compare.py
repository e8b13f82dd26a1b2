"""Runs side by side in one PNG: their traces overlaid (one colour per run) beside their figures."""
from pathlib import Path

from .plots import held_figures, metric_panels, plt, pulse_span, run_colours, save
from .record import RunRecord, read_run
from .summary import run_labels, summarise

COMPARED = ["peak_temperature", "cooling_rate_500K", "equivalent_time", "diffusion_length",
            "grain_size_n2", "grain_size_n3", "flame_temperature", "filter_pressure_rise"]
TRACE_AXES = {"temperature": ("temperature (K)", "time from pulse start (ms)"),
              "power": ("power V*I (W)", "time from pulse start (ms)"),
              "flame": ("flame temperature (K)", "reactor time from the valve switch (s)")}


def compare_runs(runs: list[RunRecord | str | Path], png: str | Path) -> Path:
    """Runs (records or their files) in one PNG. Left: temperature and power of every pulse (the
    flame temperature of aerosol samples); right: each run's summary figures, in the same colours."""
    records = [run if isinstance(run, RunRecord) else read_run(run) for run in runs]
    labels, colours = run_labels(records), run_colours(len(records))
    rows = [summarise(r) for r in records]
    names = held_figures(rows, COMPARED)
    traces = (["temperature", "power"] if any(r.pulses for r in records) else []) + \
             (["flame"] if any("flame_temperature" in r.process for r in records) else [])
    height = 2.2 * max(len(traces) * 1.5, len(names), 2) + 1
    figure = plt.figure(figsize=(14, height), constrained_layout=True)
    left, right = figure.subfigures(1, 2, width_ratios=(3, 2))
    if traces:
        axes = left.subplots(len(traces), 1, squeeze=False)[:, 0]
        panels = dict(zip(traces, axes))
        if "power" in panels:
            panels["power"].sharex(panels["temperature"])
            if span := pulse_span([p for r in records for p in r.pulses]):
                panels["power"].set_xlim(span[0] * 1e3, span[1] * 1e3)
        for record, label, colour in zip(records, labels, colours):
            _draw_traces(panels, record, label, colour)
        for key, axis in panels.items():
            axis.set_ylabel(TRACE_AXES[key][0])
            axis.set_xlabel(TRACE_AXES[key][1])
            axis.legend(fontsize=7)
    if names:
        metric_panels(right.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0], labels, rows, names, colours)
    figure.suptitle("  vs  ".join(labels), fontsize=9)
    return save(figure, png)


def _draw_traces(panels: dict, record: RunRecord, label: str, colour) -> None:
    """Every pulse of the run in its colour (labelled once); an aerosol sample's flame temperature."""
    for i, pulse in enumerate(record.pulses):
        name = label if i == 0 else None
        panels["temperature"].plot(pulse.time * 1e3, pulse.temperature, lw=1, color=colour, label=name)
        if pulse.programmed is not None:
            panels["temperature"].plot(pulse.time * 1e3, pulse.programmed, lw=1, ls="--", color=colour)
        panels["power"].plot(pulse.supply_time * 1e3, pulse.power, lw=1, color=colour, label=name)
    if "flame" in panels and "flame_temperature" in record.process:
        time = record.process["reactor_time"]
        origin = record.phases[0][1] if record.phases else time[0]  # the valve switch
        panels["flame"].plot(time - origin, record.process["flame_temperature"], lw=1, color=colour, label=label)
