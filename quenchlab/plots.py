"""PNG of a recorded run: temperature traces over current traces, one colour per pulse."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from .record import RunRecord  # noqa: E402


def plot_run(record: RunRecord, png: str | Path) -> Path:
    figure, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 6), constrained_layout=True)
    for pulse in record.pulses:
        top.plot(pulse.time * 1e3, pulse.temperature, lw=1, label=pulse.name)
        bottom.plot(pulse.supply_time * 1e3, pulse.current, lw=1)
    top.set_ylabel("temperature (K)")
    top.set_title(f"{record.title}  ({record.path.name})", fontsize=9)
    if record.pulses:
        top.legend(fontsize=8)
    bottom.set_ylabel("current (A)")
    bottom.set_xlabel("time from pulse start (ms)")
    png = Path(png)
    figure.savefig(png, dpi=120)
    plt.close(figure)
    return png
