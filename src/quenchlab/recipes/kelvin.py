"""Temperature recipes: a heat/quench profile in kelvin and seconds, realised through the
sample's identified model (`quenchlab.control.thermal_model`) as a current list, refined pulse to pulse.

    name: thin-film-2000K-kelvin
    control: temperature
    compliance: 50 V
    calibration: {level: 16 A, dwell: 30 ms}   # identifies the sample, once, before the first pulse
    segments:
      - {ramp_to: 2000 K, rate: 1e5 K/s}      # or: over: 17 ms
      - {hold: 55 ms}
    pulses: 20
    off_time: 1.1 s

Every pulse starts from the ambient and ends with a quench: the output goes off after the last
segment and the sample cools by itself.
"""
from typing import Annotated, Literal

import numpy as np
from pydantic import Discriminator, Field, Tag, model_validator

from quenchlab.config.fjh import FJHConfig
from quenchlab.control.profile import Profile
from quenchlab.control.programs import ListProgram
from quenchlab.control.thermal_model import AMBIENT, SampleModel
from quenchlab.devices.n6900_driver import MAX_DWELL
from quenchlab.errors import LimitError
from quenchlab.files import Strict
from quenchlab.recipes.pulse import RAMP_STEP, checked_program
from quenchlab.units import Amperes, Kelvin, Quantity, Seconds

MAX_STEPS = 500  # list steps a profile is cut into (the N6900 holds 512)


class Calibration(Strict):
    level: Annotated[Amperes, Field(gt=0)]
    dwell: Annotated[Seconds, Field(gt=0, le=MAX_DWELL)]


class RampTo(Strict):
    ramp_to: Annotated[Kelvin, Field(gt=0)]
    rate: Annotated[Quantity("K/s"), Field(gt=0)] | None = None
    over: Annotated[Seconds, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _one_pace(self):
        if (self.rate is None) == (self.over is None):
            raise ValueError("give either rate (e.g. '1e5 K/s') or over (e.g. '20 ms'), not both or neither")
        return self


class Hold(Strict):
    hold: Annotated[Seconds, Field(gt=0)]


Segment = Annotated[Annotated[RampTo, Tag("ramp")] | Annotated[Hold, Tag("hold")],
                    Discriminator(lambda v: "ramp" if "ramp_to" in (v if isinstance(v, dict) else vars(v)) else "hold")]


class TemperatureRecipe(Strict):
    name: str
    description: str = ""
    control: Literal["temperature"]
    compliance: Annotated[Quantity("V"), Field(gt=0)]
    calibration: Calibration
    segments: Annotated[list[Segment], Field(min_length=1)]
    pulses: Annotated[int, Field(ge=1, le=10000)] = 1
    off_time: Annotated[Seconds, Field(ge=0)] = 1.0
    learning_gain: Annotated[float, Field(ge=0, le=1)] = 0.5  # of the error fed back to the next pulse
    control_period: Annotated[Seconds, Field(ge=0.01, le=1.0)] = 0.05  # a closed loop's tick


def profile(recipe: TemperatureRecipe, step: float = RAMP_STEP) -> Profile:
    """The recipe's segments on a grid of list steps of about `step` s (coarser if the profile
    would need more than MAX_STEPS)."""
    durations = [_duration(segment, recipe.segments[:i]) for i, segment in enumerate(recipe.segments)]
    step = max(step, sum(durations) / MAX_STEPS)
    times, temperatures, holds, ramps, now, level = [0.0], [AMBIENT], [], [], 0.0, AMBIENT
    for segment, duration in zip(recipe.segments, durations):
        n = max(1, round(duration / step))
        target = segment.ramp_to if isinstance(segment, RampTo) else level
        times.extend(now + duration * np.arange(1, n + 1) / n)
        temperatures.extend(np.linspace(level, target, n + 1)[1:])
        if isinstance(segment, Hold):
            holds.append((now, now + duration, level))
        elif target > level:
            ramps.append((now, now + duration))
        now, level = now + duration, target
    return Profile(np.asarray(times), np.asarray(temperatures), tuple(holds), tuple(ramps))


def _duration(segment: RampTo | Hold, before: list) -> float:
    if isinstance(segment, Hold):
        return segment.hold
    if segment.over is not None:
        return segment.over
    start = next((s.ramp_to for s in reversed(before) if isinstance(s, RampTo)), AMBIENT)
    return abs(segment.ramp_to - start) / segment.rate


def calibration_program(recipe: TemperatureRecipe, config: FJHConfig, source: str) -> ListProgram:
    """The calibration pulse (a current step), within the limits; a LimitError otherwise."""
    return checked_program([recipe.calibration.level], [recipe.calibration.dwell], "current",
                           recipe.compliance, config.limits, f"{source} (calibration)", record=config.record_window)


def check_recipe(recipe: TemperatureRecipe, config: FJHConfig, source: str) -> Profile:
    """What can be checked of the profile before the sample is known: its temperatures, within
    the interlock's limit and the pyrometer's range."""
    pyrometer, ceiling = config.instruments.pyrometer, config.limits.max_temperature
    for i, segment in enumerate(recipe.segments):
        if isinstance(segment, RampTo):
            if ceiling is not None and segment.ramp_to > ceiling:
                raise LimitError(f"{source}: field segments.{i}.ramp_to: {segment.ramp_to:g} K is above the configured "
                                 f"max_temperature of {ceiling:g} K")
            if not pyrometer.range_begin <= segment.ramp_to <= pyrometer.range_end:
                raise LimitError(f"{source}: field segments.{i}.ramp_to: {segment.ramp_to:g} K is outside the "
                                 f"pyrometer's range ({pyrometer.range_begin:g}-{pyrometer.range_end:g} K): "
                                 "a temperature that cannot be measured cannot be controlled")
    for i, segment in enumerate(recipe.segments):
        if _duration(segment, recipe.segments[:i]) <= 0:
            raise LimitError(f"{source}: field segments.{i}: the ramp ends where it starts ({segment.ramp_to:g} K): "
                             "remove it, or hold")
    return profile(recipe)


def fits_record(shape: Profile, config: FJHConfig) -> bool:
    """Whether a pulse of `shape` fits the digitizer's record (else it is held in a closed loop)."""
    record, pre_trigger = config.record_window
    return shape.duration + pre_trigger < record


def program_for(shape: Profile, reference: np.ndarray, model: SampleModel, recipe: TemperatureRecipe,
                config: FJHConfig, source: str) -> ListProgram:
    """The current list that takes the modelled sample along `reference` (the profile, as
    corrected by learning), clipped to the current limit and checked against every limit."""
    amps = np.minimum(model.current_for(shape.times, reference), config.limits.max_current)
    return checked_program(amps.tolist(), np.diff(shape.times).tolist(), "current", recipe.compliance,
                           config.limits, f"{source} (the list computed for the calibrated sample)",
                           pulses=recipe.pulses, off_time=recipe.off_time, record=config.record_window)
