"""Reading a recorded run back: metadata, the per-pulse table, the traces and the process data.

A pulse group (`/entry/pulse_NNNN`) holds `time`, `temperature`, `supply_time`, `current` and
`voltage`; a recipe that programs a temperature adds `programmed_temperature` (K, NaN outside the
profile) on the pulse's own time base `time`.
"""
import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from quenchlab.analysis.pulse import FIGURES
from quenchlab.control.profile import TRACKING
from quenchlab.errors import QuenchlabError

PULSE_STREAM = "pulse"
PROGRAMMED = "programmed_temperature"
TRACES = ("time", "temperature", "supply_time", "current", "voltage")
ANALYSED_AT = ("threshold", "fixed_temperature", "reference_temperature")  # K, of the config's `analysis`
MEASURING_RANGE = "instrument/pyrometer/pyrometer_measuring_range"


@dataclass
class PulseTrace:
    name: str
    time: np.ndarray
    temperature: np.ndarray
    supply_time: np.ndarray
    current: np.ndarray
    voltage: np.ndarray
    programmed: np.ndarray | None = None  # the programmed temperature on `time`, K

    @property
    def power(self) -> np.ndarray:
        """Electrical power V*I on `supply_time`, W."""
        return self.current * self.voltage


@dataclass
class RunRecord:
    path: Path
    title: str
    sample: str
    exit_status: str
    figures: dict[str, np.ndarray]  # one value per pulse
    pulses: list[PulseTrace]
    process: dict[str, np.ndarray] = field(default_factory=dict)  # the process table's numeric columns
    phases: list[tuple[str, float, str]] = field(default_factory=list)  # (phase, reactor time s, note)
    about: dict[str, str] = field(default_factory=dict)  # the sample's precursor, plate and position, if recorded
    train: dict[str, float | str] = field(default_factory=dict)  # programmed_period, achieved_period, note
    analysed_at: dict[str, float] = field(default_factory=dict)  # ANALYSED_AT: the figures' temperatures, K
    measuring_range: tuple[float, float] | None = None  # the pyrometer's, K

    @property
    def label(self) -> str:
        """The sample, with its precursor and plate position where the record has them."""
        extra = " @ ".join(v for v in (self.about.get("precursor"), self.about.get("position")) if v)
        return f"{self.sample} ({extra})" if extra else self.sample


def _text(group, name: str, default: str = "") -> str:
    if name not in group:
        return default
    value = group[name][()]
    return value.decode() if isinstance(value, bytes) else str(value)


def _texts(dataset) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in dataset[()]]


def read_run(path: str | Path, traces: bool = True) -> RunRecord:
    """The run recorded in an HDF5 file written by quenchlab (`traces=False`: without the pulse traces)."""
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
        figures = {name: np.asarray(table[name]) for name in {**FIGURES, **TRACKING} if name in table}
        names = sorted(k for k in entry if k.startswith(PULSE_STREAM + "_"))
        pulses = [_pulse(path, entry[name]) for name in names] if traces else []
        sample = entry.get("sample", {})
        about = {key: _text(sample, key) for key in ("precursor", "plate", "position") if key in sample}
        analysis = json.loads(_text(entry, "metadata", "{}")).get("analysis") or {}
        span = tuple(float(t) for t in entry[MEASURING_RANGE][()]) if MEASURING_RANGE in entry else None
        return RunRecord(path, _text(entry, "title"), _text(sample, "name") if sample else "",
                         _text(entry, "exit_status", "incomplete"), figures, pulses,
                         _process(entry.get("process")), _phases(entry.get("phases")), about,
                         _train(entry.get("train")), {k: float(analysis[k]) for k in ANALYSED_AT if k in analysis},
                         span)


def _pulse(path: Path, group) -> PulseTrace:
    pulse = PulseTrace(group.name.rsplit("/", 1)[-1], *(np.asarray(group[k]) for k in TRACES))
    if PROGRAMMED in group:
        pulse.programmed = np.asarray(group[PROGRAMMED], dtype=float)
        if pulse.programmed.shape != pulse.time.shape:
            raise QuenchlabError(f"{path}: {pulse.name}/{PROGRAMMED} has {pulse.programmed.size} samples but "
                                 f"{pulse.name}/time has {pulse.time.size}: it must be on the pulse's time base")
    return pulse


def _train(group) -> dict[str, float | str]:
    """A pulse train's timing (its "train" stream's one row), if recorded."""
    if group is None:
        return {}
    train = {name: group[f"train_{name}"][0] for name in ("programmed_period", "achieved_period", "note")
             if f"train_{name}" in group}
    return {name: value.decode() if isinstance(value, bytes) else float(value) for name, value in train.items()}


def _process(group) -> dict[str, np.ndarray]:
    if group is None:
        return {}
    return {name: np.asarray(column) for name, column in group.items()
            if isinstance(column, h5py.Dataset) and column.dtype.kind in "fiub"}


def _phases(group) -> list[tuple[str, float, str]]:
    if group is None or "marker_phase" not in group or "marker_reactor_time" not in group:
        return []
    notes = _texts(group["marker_note"]) if "marker_note" in group else []
    phases = _texts(group["marker_phase"])
    times = np.asarray(group["marker_reactor_time"], dtype=float)
    return [(phase, float(t), notes[i] if i < len(notes) else "") for i, (phase, t) in enumerate(zip(phases, times))]
