"""Emissivity check against a known melting point: find the plateau a melting sample leaves in the
pyrometer's trace, and the emissivity that would have read it at the melting point.

A single-colour pyrometer set to emissivity e_set reads T_m for a true temperature T of a
surface of emissivity e (Wien): 1/T_m - 1/T = -(lambda/c2) ln(e/e_set) (domain.md). At a
melting plateau T is the melting point, so e = e_set exp(-(c2/lambda) (1/T_m - 1/T)).
The check is added to the record (`/entry/emissivity_check`, numbered if one is there already;
nothing recorded is replaced); an emissivity outside (0, 1] is refused and nothing is added.
"""
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np
import yaml

from .analysis import smooth_trace
from .config import FJHConfig
from .errors import QuenchlabError
from .files import validate

C2 = 14388.0  # um K, the second radiation constant
BAND = 5.0  # K either side of the plateau's median
MIN_PLATEAU = 1e-3  # s
NEAR = 0.15  # a plateau further than this fraction from the melting point is not the melting


@dataclass(frozen=True)
class EmissivityCheck:
    pulse: str
    melting_point: float  # K
    plateau_temperature: float  # K, as the pyrometer read it
    plateau_start: float  # s
    plateau_end: float  # s
    wavelength: float  # um
    emissivity_set: float
    emissivity: float  # what would have read the plateau at the melting point

    def __str__(self) -> str:
        return (f"{self.pulse}: plateau at {self.plateau_temperature:.1f} K from {self.plateau_start * 1e3:.2f} to "
                f"{self.plateau_end * 1e3:.2f} ms; the melting point is {self.melting_point:.1f} K: emissivity "
                f"{self.emissivity:.3f} (set: {self.emissivity_set:.3f}, at {self.wavelength:g} um)")


def melting_plateau(time, temperature, band: float = BAND, shortest: float = MIN_PLATEAU,
                    near: float | None = None) -> tuple[float, float, float]:
    """(start, end, median K) of the longest stretch of the trace that stays within 2 x `band` K,
    lasts at least `shortest` s and, given `near` (the melting point), reads within 15 % of it
    (a programmed hold elsewhere is not taken for the melting); a QuenchlabError if none does.
    `start` and `end` are the first and last samples within `band` of the stretch's median."""
    time, smooth = np.asarray(time, float), smooth_trace(temperature)
    found = []
    for first, stop in _flat_stretches(smooth, 2 * band):
        level = float(np.median(smooth[first:stop]))
        if time[stop - 1] - time[first] >= shortest and (near is None or abs(level - near) <= NEAR * near):
            inside = np.flatnonzero(np.abs(smooth[first:stop] - level) <= band) + first
            found.append((float(time[inside[-1]] - time[inside[0]]), float(time[inside[0]]), float(time[inside[-1]]), level))
    if not found:
        where = f" within {NEAR:.0%} of {near:g} K" if near is not None else ""
        raise QuenchlabError(f"no plateau of at least {shortest * 1e3:g} ms within {band:g} K{where} in the trace")
    return max(found)[1:]


def _flat_stretches(smooth: np.ndarray, width: float) -> list[tuple[int, int]]:
    """(first, stop) index ranges of in-range samples that stay within `width` K of their first."""
    stretches, first = [], 0
    while first < smooth.size:
        if not np.isfinite(smooth[first]):
            first += 1
            continue
        stop = first + 1
        while stop < smooth.size and np.isfinite(smooth[stop]) and abs(smooth[stop] - smooth[first]) <= width:
            stop += 1
        stretches.append((first, stop))
        first = stop
    return stretches


def emissivity_at(plateau: float, melting_point: float, emissivity_set: float, wavelength: float) -> float:
    """The emissivity that reads `melting_point` where `emissivity_set` read `plateau` (K, um)."""
    return emissivity_set * math.exp(-(C2 / wavelength) * (1 / plateau - 1 / melting_point))


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
        start, end, level = melting_plateau(entry[name]["time"][()], entry[name]["temperature"][()],
                                            near=melting_point)
        check = EmissivityCheck(name, melting_point, level, start, end, wavelength, emissivity_set,
                                emissivity_at(level, melting_point, emissivity_set, wavelength))
        if not 0 < check.emissivity <= 1:  # refused before anything is written
            raise QuenchlabError(f"{path}: {check}: an emissivity lies in (0, 1]; the plateau at "
                                 f"{level:.1f} K is not where this sample melts at {melting_point:g} K: nothing "
                                 "was added to the record")
        key = next(k for k in ("emissivity_check", *(f"emissivity_check_{i}" for i in range(2, 1000)))
                   if k not in entry)
        group = entry.create_group(key)
        for field, value in asdict(check).items():
            group[field] = value
        return check


def _configured_wavelength(entry) -> float:
    """The pyrometer's wavelength in the reactor config the run was recorded with."""
    text = entry["reactor_config"][()].decode()
    return validate(FJHConfig, yaml.safe_load(text), "the record's reactor_config").instruments.pyrometer.wavelength
