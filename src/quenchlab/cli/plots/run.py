"""PNG of one recorded run: its pulses, or an aerosol sample's process data."""
from pathlib import Path

from quenchlab.cli.plots.common import plt, save, title_of
from quenchlab.cli.plots.process import plot_process
from quenchlab.cli.plots.pulses import plot_pulses
from quenchlab.record.reader import RunRecord


def plot_run(record: RunRecord, png: str | Path) -> Path:
    """The pulses of a run (or, without pulses, its process data) as one PNG."""
    if not record.pulses and "reactor_time" in record.process:
        return plot_process(record, png)
    if not record.pulses:
        figure, axis = plt.subplots(figsize=(8, 2))
        axis.text(0.5, 0.5, "no pulse in this record", ha="center", transform=axis.transAxes)
        axis.set_axis_off()
        axis.set_title(title_of(record), fontsize=9)
        return save(figure, png)
    return plot_pulses(record, png)
