"""Emissivity check against a known melting point: find the plateau a melting (or freezing) sample
leaves in the pyrometer's trace, and the emissivity that would have read it at the melting point.

A single-colour pyrometer set to emissivity e_set reads T_m for a true temperature T of a
surface of emissivity e (Wien): 1/T_m - 1/T = -(lambda/c2) ln(e/e_set) (domain.md). At a
melting plateau T is the melting point, so e = e_set exp(-(c2/lambda) (1/T_m - 1/T)).
The check is added to the record (`/entry/emissivity_check`, numbered if one is there already;
nothing recorded is replaced), as an analysis of its own after the run: not one of the run's
documents, its group says so (`added_after_run`), when it was added (`added_time`), by which
quenchlab, and which run it analyses (`run_uid`, the run's start uid: /entry/entry_identifier).
The plateau is the longest, read where an emissivity in [0.02, 1] puts the melting point, that
is a phase change (`plateau.phase_change`: a hold is not); none, or an emissivity outside
(0, 1], is refused, and nothing is added.
"""
import math
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import h5py
import yaml

from quenchlab import __version__
from quenchlab.analysis.plateau import BAND, PhaseChange, Plateau, phase_change, plateaus
from quenchlab.config.fjh import FJHConfig
from quenchlab.errors import QuenchlabError
from quenchlab.files import validate

C2 = 14388.0  # um K, the second radiation constant
LOWEST = 0.02  # emissivity of the shiniest metals in the near infrared: the search for a plateau ends there
TRACES = ("time", "temperature", "supply_time", "current", "voltage")


@dataclass(frozen=True)
class EmissivityCheck:
    pulse: str
    melting_point: float  # K
    plateau_kind: str  # "melting" on the rise, or "freezing" on the cooling
    latent_fraction: float  # of the heat flow at the plateau that is latent heat
    plateau_temperature: float  # K, as the pyrometer read it
    plateau_start: float  # s
    plateau_end: float  # s
    wavelength: float  # um
    emissivity_set: float
    emissivity: float  # what would have read the plateau at the melting point

    def __str__(self) -> str:
        return (f"{self.pulse}: {self.plateau_kind} plateau at {self.plateau_temperature:.1f} K "
                f"from {self.plateau_start * 1e3:.2f} to {self.plateau_end * 1e3:.2f} ms; "
                f"the melting point is {self.melting_point:.1f} K: emissivity "
                f"{self.emissivity:.3f} (set: {self.emissivity_set:.3f}, at {self.wavelength:g} um)")


def emissivity_at(plateau: float, melting_point: float, emissivity_set: float, wavelength: float) -> float:
    """The emissivity that reads `melting_point` where `emissivity_set` read `plateau` (K, um)."""
    return emissivity_set * math.exp(-(C2 / wavelength) * (1 / plateau - 1 / melting_point))


def reading_at(melting_point: float, emissivity: float, emissivity_set: float, wavelength: float) -> float:
    """What a pyrometer set to `emissivity_set` reads (K) on a surface of `emissivity` at `melting_point`."""
    return 1 / (1 / melting_point - (wavelength / C2) * math.log(emissivity / emissivity_set))


def check_record(path: Path, melting_point: float, pulse: int = 1, wavelength: float | None = None) -> EmissivityCheck:
    """The check on pulse `pulse` of a record, added to the record."""
    with h5py.File(path, "r+") as f:
        entry = f["entry"]
        name = f"pulse_{pulse:04d}"
        if name not in entry:
            raise QuenchlabError(f"{path}: no {name} in the record")
        for needed in ("instrument/pyrometer/pyrometer_emissivity", "reactor_config"):
            if needed not in entry:
                raise QuenchlabError(f"{path}: the record holds no /entry/{needed}: not a quenchlab FJH run")
        emissivity_set = float(entry["instrument/pyrometer/pyrometer_emissivity"][()])
        if wavelength is None:
            wavelength = _configured_wavelength(entry)
        missing = [k for k in TRACES if k not in entry[name]]
        if missing:
            raise QuenchlabError(f"{path}: {name} holds no {', '.join(missing)}: a melting plateau cannot be told")
        trace = {k: entry[name][k][()] for k in TRACES}
        readings = [reading_at(melting_point, e, emissivity_set, wavelength) for e in (LOWEST, 1.0)]
        try:
            found = plateaus(trace["time"], trace["temperature"], within=(readings[0], readings[1] + BAND))
        except QuenchlabError as missing:
            raise QuenchlabError(f"{path}: {name}: {missing}, where a pyrometer set to {emissivity_set:g} at "
                                 f"{wavelength:g} um reads a melting point of {melting_point:g} K for an emissivity "
                                 f"in [{LOWEST:g}, 1]: nothing was added to the record") from None
        plateau, change = _first_phase_change(found, trace, f"{path}: {name}")
        check = EmissivityCheck(name, melting_point, change.kind, change.latent_fraction, plateau.level,
                                plateau.start, plateau.end, wavelength, emissivity_set,
                                emissivity_at(plateau.level, melting_point, emissivity_set, wavelength))
        if not 0 < check.emissivity <= 1:  # refused before anything is written
            raise QuenchlabError(f"{path}: {check}: an emissivity lies in (0, 1]; the plateau at "
                                 f"{plateau.level:.1f} K is not where this sample melts at {melting_point:g} K: "
                                 "nothing was added to the record")
        key = next(k for k in ("emissivity_check", *(f"emissivity_check_{i}" for i in range(2, 1000)))
                   if k not in entry)
        group = entry.create_group(key)
        for field, value in asdict(check).items():
            group[field] = value
        group.attrs.update(NX_class="NXnote", added_after_run=True, added_time=datetime.now().astimezone().isoformat(),
                           program=f"quenchlab {__version__}", run_uid=_text(entry.get("entry_identifier")))
        return check


def _first_phase_change(found: list[Plateau], trace: dict, where: str) -> tuple[Plateau, PhaseChange]:
    """The longest plateau that is a melting or a freezing; if none is, the reason for the longest."""
    reasons = []
    for plateau in found:
        try:
            return plateau, phase_change(**trace, plateau=plateau)
        except QuenchlabError as refused:
            reasons.append(refused)
    more = f" ({len(found) - 1} shorter ones neither)" if len(found) > 1 else ""
    raise QuenchlabError(f"{where}: {reasons[0]}{more}: nothing was added to the record")


def _configured_wavelength(entry) -> float:
    """The pyrometer's wavelength in the reactor config the run was recorded with."""
    text = entry["reactor_config"][()].decode()
    return validate(FJHConfig, yaml.safe_load(text), "the record's reactor_config").instruments.pyrometer.wavelength


def _text(dataset) -> str:
    """A text dataset's value ("" for none: a record written without a start uid)."""
    return "" if dataset is None else dataset[()].decode()
