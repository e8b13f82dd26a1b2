"""Closed-loop temperature control for profiles of seconds to minutes, host-timed on the pyrometer.

Each tick the current is the identified model's feed-forward for the programmed temperature
and its slope, taken at a commanded temperature that a PI loop on the pyrometer moves away
from the programmed one: T_cmd = T* + PI(T* - T), I = sqrt((C dT*/dt + L(T_cmd)) / R(T_cmd)).
The loop works in kelvin, so its gains do not depend on the sample. Under range (NaN) the sample
is at most at the pyrometer's `floor`: where the programmed temperature is above it the loop
takes the floor as the reading (and so raises the current until the sample is seen); below it
the loop holds its correction and the feed-forward alone drives the sample.
"""
import math

from simple_pid import PID

from quenchlab.control.profile import Profile
from quenchlab.control.thermal_model import SampleModel

PROPORTIONAL = 0.2  # K of correction per K of error
INTEGRAL = 4.0  # K of correction per K of error and second
MAX_CORRECTION = 300.0  # K: the loop's authority over the model (and its anti-windup)


class HoldController:
    """The current to send at each tick of `profile`, given the temperature just read."""

    def __init__(self, profile: Profile, model: SampleModel, max_current: float, floor: float = math.inf):
        self.profile, self.model, self.max_current, self.floor = profile, model, max_current, floor
        self.pid = PID(PROPORTIONAL, INTEGRAL, 0.0, output_limits=(-MAX_CORRECTION, MAX_CORRECTION))
        self._last: float | None = None
        self._correction = 0.0

    def current(self, time: float, measured: float) -> float:
        """Amperes for reactor time `time` (s from the profile's start) with `measured` K read now."""
        time = min(time, self.profile.duration)  # the last tick, a little late, still ends the profile
        target = float(self.profile.at(time))
        dt = 0.0 if self._last is None else time - self._last
        self._last = time
        self.pid.setpoint = target
        if math.isnan(measured) and target > self.floor:
            measured = self.floor
        if math.isfinite(measured) and dt > 0:
            self._correction = self.pid(measured, dt=dt)
        command = target + self._correction
        power = self.model.heat_capacity * self.profile.slope(time) + float(self.model.loss(command))
        amps = math.sqrt(max(power, 0.0) / float(self.model.resistance(command)))
        if not math.isfinite(amps):  # never sent: NaN would slip past any min() against the limit
            raise ValueError(f"no current for reactor time {time:g} s (target {target:g} K, command {command:g} K)")
        return min(self.max_current, amps)
