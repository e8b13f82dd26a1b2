"""PNG of an aerosol sample's process data over reactor time, its phases marked."""
from pathlib import Path

import numpy as np

from quenchlab.cli.plots.common import plt, readable, save, title_of
from quenchlab.record.reader import RunRecord

# the least y range of a process panel, in its unit (a steady flame reads as steady)
LEAST = {"flame temperature (K)": 50.0, "gas flow (L/min)": 0.5, "liquid flow (mL/min)": 0.5,
         "filter pressure (kPa)": 1.0, "valve port": 2.0}


def plot_process(record: RunRecord, png: str | Path) -> Path:
    """An aerosol sample's process data over reactor time, its phases marked: the flame, the gas
    flows, the liquid flow (an HPLC pump's, or a syringe's from its counters: negative while it
    refills), the filter pressure and the valve's port."""
    process, time = record.process, record.process["reactor_time"]
    panels = [(label, {name: process[name] for name in names if name in process})
              for label, names in (("flame temperature (K)", ["flame_temperature"]),
                                   ("gas flow (L/min)",
                                    [n for n in process if n.endswith("_flow") and n != "pump_flow"]),
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
        readable(axis, LEAST.get(label, 0.0))
        if len(curves) > 1:
            axis.legend(fontsize=7, ncol=len(curves), loc="lower right")
        axis.set_ylabel(label, fontsize=8)
        for _, when, _ in record.phases:
            axis.axvline(when, color="grey", lw=0.8, ls=":")
    for phase, when, _ in record.phases:
        axes[0, 0].annotate(phase, (when, 1), xycoords=("data", "axes fraction"), fontsize=7, rotation=90,
                            va="top", ha="right")
    axes[0, 0].set_title(title_of(record), fontsize=9)
    axes[-1, 0].set_xlabel("reactor time (s)")
    return save(figure, png)
