"""The sample's heat balance, identified on the sample itself, and the current that realises a
temperature profile through it.

The lumped model of domain.md: C dT/dt = I^2 R(T) - L(T), with L(T) = a (T^4 - T0^4) + b (T - T0)
(radiation and conduction/convection). A calibration pulse (a current step) identifies it:
- R(T) from V/I while the current flows;
- L(T)/C from the free cooling after the step (dT/dt = -L(T)/C);
- C from the heating: dT/dt + L(T)/C = P/C.
Only samples the pyrometer saw in range count; the fit says how far they reach, and the model
is used outside that span only as a clamped extrapolation (R) or the same formula (L).
"""
import math
from dataclasses import asdict, dataclass

import numpy as np

from quenchlab.analysis.pulse import smooth_trace
from quenchlab.errors import QuenchlabError

AMBIENT = 298.15  # K, where the sample starts and cools to
DERIVATIVE_WINDOW = 2e-4  # s, moving average before differentiating a trace
SETTLE = 3e-4  # s left out after the current switches (the sensor and the supply settle)
MIN_SAMPLES = 50  # in range, per phase (heating, cooling) for a fit
STEADY_PART = 1 / 3  # of a host-timed calibration step, at its end: where steady_state reads the sample


@dataclass(frozen=True)
class SampleModel:
    """R(T) = r0 + r1 T + r2 T^2 (ohm) over [t_low, t_high]; L(T) = a (T^4 - T0^4) + b (T - T0) (W);
    C (J/K); and how well it fits its calibration pulse (K/s rms of dT/dt on cooling and heating)."""

    r0: float
    r1: float
    r2: float
    heat_capacity: float
    radiative: float
    conductive: float
    t_low: float
    t_high: float
    ambient: float = AMBIENT
    cooling_residual: float = math.nan
    heating_residual: float = math.nan

    def resistance(self, temperature):
        t = np.clip(temperature, self.t_low, self.t_high)
        return self.r0 + self.r1 * t + self.r2 * t * t

    def loss(self, temperature):
        t = np.asarray(temperature, dtype=float)
        return self.radiative * (t ** 4 - self.ambient ** 4) + self.conductive * (t - self.ambient)

    def current_for(self, times: np.ndarray, temperatures: np.ndarray) -> np.ndarray:
        """The current (A) that takes the sample along `temperatures` at `times`, one value per
        interval between them: P = C dT/dt + L(T) at the interval's middle; none where P < 0
        (the sample cannot be cooled faster than it cools by itself)."""
        middle = 0.5 * (temperatures[1:] + temperatures[:-1])
        slope = np.diff(temperatures) / np.diff(times)
        power = self.heat_capacity * slope + self.loss(middle)
        resistance = self.resistance(middle)
        if not np.all(resistance > 0):
            raise QuenchlabError(f"the sample model gives no positive resistance over {middle.min():.0f}-"
                                 f"{middle.max():.0f} K (R(T) = {self.r0:.4g} + {self.r1:.4g} T + {self.r2:.4g} T^2): "
                                 "calibrate again")
        return np.sqrt(np.maximum(power, 0.0) / resistance)

    def as_record(self) -> dict[str, tuple[float, str]]:
        """Every parameter with its units."""
        return {key: (float(value), UNITS[key]) for key, value in asdict(self).items()}


UNITS = {"r0": "ohm", "r1": "ohm/K", "r2": "ohm/K^2", "heat_capacity": "J/K", "radiative": "W/K^4",
         "conductive": "W/K", "t_low": "K", "t_high": "K", "ambient": "K", "cooling_residual": "K/s",
         "heating_residual": "K/s"}


def identify(time, temperature, supply_time, current, voltage, lag: float = 0.0) -> SampleModel:
    """The model from one calibration pulse: a current step into the pyrometer's range and the
    free cooling after it. `lag`: the pyrometer's time constant (s), undone before fitting."""
    time, supply_time = np.asarray(time, float), np.asarray(supply_time, float)
    amps = np.interp(time, supply_time, np.asarray(current, float))
    volts = np.interp(time, supply_time, np.asarray(voltage, float))
    sensed = smooth_trace(temperature)
    temp = sensed + lag * _derivative(time, sensed)  # a first-order sensor: T = sensed + tau d(sensed)/dt
    rate = _derivative(time, temp)
    valid = np.isfinite(temp) & np.isfinite(rate)
    if not valid.any():
        raise QuenchlabError("calibration: the pyrometer never read in range during the calibration pulse: "
                             "raise calibration.level or calibration.dwell")
    on = amps > 0.05 * amps.max()
    steady = ~_near_switch(time, on)
    heating, cooling = valid & on & steady, valid & ~on & steady & (time > time[on].max() if on.any() else True)
    for phase, mask in (("heating", heating), ("cooling", cooling)):
        if mask.sum() < MIN_SAMPLES:
            reached = float(np.nanmax(sensed))
            raise QuenchlabError(f"calibration: too few in-range samples while {phase} ({mask.sum()}; reached "
                                 f"{reached:.0f} K): raise calibration.level or calibration.dwell")
    t_heat = temp[heating]
    r2, r1, r0 = np.polyfit(t_heat, volts[heating] / amps[heating], 2)
    t_cool = temp[cooling]
    basis = np.column_stack([t_cool ** 4 - AMBIENT ** 4, t_cool - AMBIENT])
    (a_c, b_c), *_ = np.linalg.lstsq(basis, -rate[cooling], rcond=None)
    a_c, b_c = max(a_c, 0.0), max(b_c, 0.0)
    power = (volts * amps)[heating]
    net = rate[heating] + a_c * (t_heat ** 4 - AMBIENT ** 4) + b_c * (t_heat - AMBIENT)
    inverse_c = float(power @ net / (power @ power))
    if inverse_c <= 0:
        raise QuenchlabError("calibration: the heating does not follow the current (no heat capacity can be "
                             "fitted): check the pyrometer's aim and the sample's contacts")
    c = 1.0 / inverse_c
    cooling_fit = -(basis @ [a_c, b_c])
    return SampleModel(float(r0), float(r1), float(r2), c, a_c * c, b_c * c,
                       float(temp[valid].min()), float(temp[valid].max()),
                       cooling_residual=rms(rate[cooling] - cooling_fit),
                       heating_residual=rms(net - power * inverse_c))


def steady_state(time, temperature, supply_time, current, voltage) -> SampleModel:
    """A model from the end of a calibration step long enough to reach steady state, for a
    supply whose V/I are a few host-polled readings: R from the readings in the step's last
    STEADY_PART, the loss all radiative through the point reached (I^2 R = a (T^4 - T0^4)), the heat
    capacity not identified (0: the model holds for profiles slow against the sample's own
    time constant, which is what a host-timed supply can run)."""
    time, supply_time = np.asarray(time, float), np.asarray(supply_time, float)
    current, voltage = np.asarray(current, float), np.asarray(voltage, float)
    on = current > 0.05 * current.max() if current.size else np.zeros(0, bool)
    if on.sum() < 2:
        raise QuenchlabError("calibration: fewer than two readings of the supply while the step was on: "
                             "lengthen calibration.dwell")
    start, end = supply_time[on].min(), supply_time[on].max()
    late = on & (supply_time >= end - (end - start) * STEADY_PART)
    sensed = smooth_trace(temperature)
    window = (time >= end - (end - start) * STEADY_PART) & (time <= end) & np.isfinite(sensed)
    if window.sum() < MIN_SAMPLES:
        raise QuenchlabError("calibration: the pyrometer did not read in range at the end of the step (reached "
                             f"{np.nanmax(sensed):.0f} K): raise calibration.level or calibration.dwell")
    t_ss, amps = float(np.median(sensed[window])), float(np.median(current[late]))
    r = float(np.median(voltage[late] / current[late]))
    return SampleModel(r, 0.0, 0.0, 0.0, amps * amps * r / (t_ss ** 4 - AMBIENT ** 4), 0.0, t_ss, t_ss)


def _derivative(time: np.ndarray, values: np.ndarray) -> np.ndarray:
    """d(values)/dt after a centred moving average over DERIVATIVE_WINDOW (NaN where any sample
    in the window is missing)."""
    width = max(3, int(round(DERIVATIVE_WINDOW / np.median(np.diff(time)))) | 1)
    kernel = np.ones(width) / width
    smooth = np.convolve(values, kernel, mode="same")
    smooth[: width // 2] = smooth[-(width // 2):] = np.nan
    return np.gradient(smooth, time)


def _near_switch(time: np.ndarray, on: np.ndarray) -> np.ndarray:
    """Samples within SETTLE after the current switched on or off."""
    near = np.zeros(time.size, bool)
    for edge in time[1:][np.diff(on.astype(int)) != 0]:
        near |= (time >= edge) & (time < edge + SETTLE)
    return near | (time < time[0] + SETTLE)


def rms(values: np.ndarray) -> float:
    """Root mean square; NaN for no values."""
    return float(np.sqrt(np.mean(values ** 2))) if values.size else math.nan
