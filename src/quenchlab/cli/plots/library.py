"""Overview PNG of a library: one point per sample for each figure the samples hold."""
from pathlib import Path

from quenchlab.cli.plots.common import held_figures, metric_panels, plt, save

OVERVIEW = ["peak_temperature", "cooling_rate_500K", "equivalent_time", "flame_temperature", "filter_pressure_rise"]


def plot_library(labels: list[str], rows: list[dict[str, float]], png: str | Path, title: str) -> Path:
    """Peak temperature, cooling rate and equivalent time per FJH sample; mean flame temperature
    and filter pressure rise per aerosol sample (the figures no sample holds are left out)."""
    names = held_figures(rows, OVERVIEW)
    if not names:
        raise ValueError("no sample holds a figure to plot")
    width = min(max(8.0, 4 + 0.12 * len(labels)), 30.0)
    figure, axes = plt.subplots(len(names), 1, sharex=True, figsize=(width, 2.2 * len(names) + 1.5),
                                constrained_layout=True, squeeze=False)
    metric_panels(axes[:, 0], labels, rows, names)
    axes[0, 0].set_title(title, fontsize=9)
    return save(figure, png)
