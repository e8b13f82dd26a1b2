"""Reading a recorded run back: metadata, the per-pulse table and the traces."""
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .analysis import FIGURES
from .errors import QuenchlabError

PULSE_STREAM = "pulse"


@dataclass
class PulseTrace:
    name: str
    time: np.ndarray
    temperature: np.ndarray
    supply_time: np.ndarray
    current: np.ndarray
    voltage: np.ndarray


@dataclass
class RunRecord:
    path: Path
    title: str
    sample: str
    exit_status: str
    figures: dict[str, np.ndarray]  # one value per pulse
    pulses: list[PulseTrace]


def _text(group, name: str, default: str = "") -> str:
    if name not in group:
        return default
    value = group[name][()]
    return value.decode() if isinstance(value, bytes) else str(value)


def read_run(path: str | Path) -> RunRecord:
    """The run recorded in an HDF5 file written by quenchlab."""
    path = Path(path)
    try:
        handle = h5py.File(path, "r")
    except (OSError, FileNotFoundError) as error:
        raise QuenchlabError(f"{path}: cannot open as HDF5 ({error})") from None
    with handle:
        if "entry" not in handle:
            raise QuenchlabError(f"{path}: no /entry group: not a quenchlab record")
        entry = handle["entry"]
        table = entry.get(PULSE_STREAM, {})
        figures = {name: np.asarray(table[name]) for name in FIGURES if name in table}
        pulses = []
        for name in sorted(k for k in entry if k.startswith(PULSE_STREAM + "_")):
            group = entry[name]
            pulses.append(PulseTrace(name, *(np.asarray(group[k]) for k in
                                             ("time", "temperature", "supply_time", "current", "voltage"))))
        return RunRecord(path, _text(entry, "title"), _text(entry["sample"], "name") if "sample" in entry else "",
                         _text(entry, "exit_status", "incomplete"), figures, pulses)
