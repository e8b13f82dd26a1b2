"""A temperature profile as the devices execute it: the programmed temperature at a list's step
boundaries, how closely a pulse tracked it, the energy the modelled sample takes along it, and
the next pulse's reference learned from this one's error."""
import math
from dataclasses import dataclass

import numpy as np

from quenchlab.control.thermal_model import SampleModel, rms


@dataclass(frozen=True)
class Profile:
    """The programmed temperature at the list's step boundaries (`times`, from the pulse start),
    the holds (start, end, setpoint) and the heating ramps (start, end) whose tracking is reported."""

    times: np.ndarray
    temperatures: np.ndarray
    holds: tuple[tuple[float, float, float], ...]
    ramps: tuple[tuple[float, float], ...]

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    def at(self, time: np.ndarray) -> np.ndarray:
        """The programmed temperature at `time`; NaN outside the profile (before it, and the quench)."""
        inside = (time >= 0) & (time <= self.duration)
        return np.where(inside, np.interp(time, self.times, self.temperatures), np.nan)

    def slope(self, time: float) -> float:
        """dT/dt (K/s) of the programmed temperature at `time`."""
        i = int(np.clip(np.searchsorted(self.times, time, side="right") - 1, 0, self.times.size - 2))
        return float((self.temperatures[i + 1] - self.temperatures[i]) / (self.times[i + 1] - self.times[i]))

    def tracking(self, time: np.ndarray, measured: np.ndarray) -> dict[str, float]:
        """RMS of measured - programmed over the holds (K, and as a fraction of the setpoint) and
        over the whole profile where the pyrometer read in range (K); the rate the first heating
        ramp reached (K/s, least squares over the part the pyrometer saw)."""
        error = measured - self.at(time)
        in_hold = np.zeros(time.size, bool)
        relative = []
        for start, end, setpoint in self.holds:
            window = (time >= start) & (time <= end) & np.isfinite(error)
            in_hold |= window
            relative.append(error[window] / setpoint)
        valid = np.isfinite(error)
        relative = np.concatenate(relative) if relative else np.array([])
        return {"hold_rms_error": rms(error[in_hold]), "hold_rms_relative": rms(relative),
                "tracking_rms_error": rms(error[valid]), "ramp_rate": self._ramp_rate(time, measured)}

    def _ramp_rate(self, time: np.ndarray, measured: np.ndarray) -> float:
        if not self.ramps:
            return math.nan
        start, end = self.ramps[0]
        seen = (time >= start) & (time <= end) & np.isfinite(measured)
        return float(np.polyfit(time[seen], measured[seen], 1)[0]) if seen.sum() >= 10 else math.nan


TRACKING = {"hold_rms_error": "K", "hold_rms_relative": "", "tracking_rms_error": "K", "ramp_rate": "K/s"}


def predicted_energy(shape: Profile, model: SampleModel, reference: np.ndarray | None = None) -> float:
    """J the modelled sample takes along `reference` (the profile's temperatures by default)."""
    reference = shape.temperatures if reference is None else reference
    amps = model.current_for(shape.times, reference)
    middle = 0.5 * (reference[1:] + reference[:-1])
    return float(np.sum(amps ** 2 * model.resistance(middle) * np.diff(shape.times)))


def learned(shape: Profile, reference: np.ndarray, time: np.ndarray, measured: np.ndarray, gain: float) -> np.ndarray:
    """The next pulse's reference: this one's plus `gain` times the error the pulse left at each
    step boundary (mean over the steps either side; no change where the pyrometer was out of range)."""
    error = shape.at(time) - measured
    edges = shape.times
    index = np.searchsorted(edges, time, side="right") - 1
    inside = (index >= 0) & (index < edges.size - 1) & np.isfinite(error)
    sums = np.bincount(index[inside], error[inside], minlength=edges.size - 1)
    counts = np.bincount(index[inside], minlength=edges.size - 1)
    per_step = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    at_edges = np.concatenate([[0.0], 0.5 * (per_step[1:] + per_step[:-1]), per_step[-1:]])
    return reference + gain * at_edges
