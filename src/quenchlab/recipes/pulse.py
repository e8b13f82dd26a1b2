"""Pulse recipes: current (or voltage) steps and ramps, compiled into a supply list.

A recipe is checked against the reactor's limits before anything is sent: every level,
the compliance, the list length (512 steps), the dwell range and resolution, and an upper
bound of the energy per pulse (level x compliance x dwell summed over the steps, which no
sample can exceed).
"""
import math
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, model_validator

from quenchlab.config.fjh import Limits
from quenchlab.control.programs import LEVEL_UNITS, ListProgram
from quenchlab.devices.n6900_driver import MAX_DWELL, MAX_LIST_STEPS
from quenchlab.errors import LimitError
from quenchlab.files import Strict
from quenchlab.units import Seconds, to_si

DWELL_RESOLUTION = 1e-6  # s, the N6900 list dwell resolution below 0.262 s
RAMP_STEP = 0.5e-3  # s, default duration of one step of a ramp


Level = Annotated[str, Field(min_length=1)]  # "20 A" or "30 V": its unit is checked against `control`


class Step(Strict):
    level: Level
    dwell: Annotated[Seconds, Field(gt=0, le=MAX_DWELL)]


class Ramp(Strict):
    ramp_to: Level
    over: Annotated[Seconds, Field(gt=0, le=MAX_DWELL)]
    steps: Annotated[int, Field(ge=1, le=MAX_LIST_STEPS)] | None = None


class Recipe(Strict):
    name: str
    description: str = ""
    control: Literal["current", "voltage"] = "current"
    compliance: str = Field(description="the other quantity's limit during the pulse, e.g. '40 V'")
    segments: Annotated[list[Step | Ramp], Field(min_length=1)]
    pulses: Annotated[int, Field(ge=1, le=10000)] = 1
    off_time: Annotated[Seconds, Field(ge=0)] = 1.0

    @model_validator(mode="after")
    def _units(self):
        unit = LEVEL_UNITS[self.control]
        other = LEVEL_UNITS["voltage" if self.control == "current" else "current"]
        for i, segment in enumerate(self.segments):
            text = segment.level if isinstance(segment, Step) else segment.ramp_to
            _checked(text, unit, f"segments.{i}.{'level' if isinstance(segment, Step) else 'ramp_to'}")
        _checked(self.compliance, other, "compliance")
        return self

    def level(self, segment: "Step | Ramp") -> float:
        return to_si(segment.level if isinstance(segment, Step) else segment.ramp_to, LEVEL_UNITS[self.control])

    @property
    def compliance_value(self) -> float:
        return to_si(self.compliance, LEVEL_UNITS["voltage" if self.control == "current" else "current"])


def _checked(text: str, unit: str, field: str) -> None:
    try:
        value = to_si(text, unit)
    except ValueError as error:
        raise ValueError(f"{field}: {error}") from None
    if value < 0:
        raise ValueError(f"{field}: must not be negative ({text})")


def compile_recipe(recipe: Recipe, limits: Limits, source: str = "recipe",
                   record: tuple[float, float] | None = None) -> ListProgram:
    """The supply list of one pulse of `recipe`, or a LimitError saying what to change.
    `record` is the digitizer's (record length, pre-trigger time) the pulse must fit in."""
    control_max, unit = (limits.max_current, "A") if recipe.control == "current" else (limits.max_voltage, "V")
    levels, dwells, previous = [], [], 0.0
    for i, segment in enumerate(recipe.segments):
        target = recipe.level(segment)
        if target > control_max:
            raise LimitError(f"{source}: field segments.{i}: {target:g} {unit} exceeds the configured "
                             f"limit of {control_max:g} {unit}")
        if isinstance(segment, Step):
            levels.append(target)
            dwells.append(segment.dwell)
        else:
            n = segment.steps or max(1, math.ceil(segment.over / RAMP_STEP - 1e-9))
            levels.extend(np.linspace(previous, target, n + 1)[1:].tolist())
            dwells.extend([segment.over / n] * n)
        previous = target
    return checked_program(levels, dwells, recipe.control, recipe.compliance_value, limits, source,
                           pulses=recipe.pulses, off_time=recipe.off_time, record=record)


def checked_program(levels: list[float], dwells: list[float], control: str, compliance: float, limits: Limits,
                    source: str, *, pulses: int = 1, off_time: float = 0.0,
                    record: tuple[float, float] | None = None) -> ListProgram:
    """A supply list, once every level, the list length, the dwells, the power and the energy
    (per pulse and, for a train of `pulses`, per minute) are within `limits`; else a LimitError
    naming `source` and what to change."""
    control_max, other_max, unit, other_unit = (
        (limits.max_current, limits.max_voltage, "A", "V") if control == "current"
        else (limits.max_voltage, limits.max_current, "V", "A"))
    if not all(math.isfinite(value) for value in (*levels, *dwells, compliance)):  # NaN passes every comparison
        raise LimitError(f"{source}: the program holds a value that is not a finite number: nothing is sent")
    if compliance > other_max:
        raise LimitError(f"{source}: field compliance: {compliance:g} {other_unit} exceeds the "
                         f"configured limit of {other_max:g} {other_unit}")
    if pulses > 1:
        check_cool_down(off_time, limits, source)
    for i, level in enumerate(levels):
        if level > control_max:
            raise LimitError(f"{source}: list step {i} at {level:g} {unit} exceeds the configured "
                             f"limit of {control_max:g} {unit}")
    if len(levels) > MAX_LIST_STEPS:
        raise LimitError(f"{source}: the program needs {len(levels)} list steps; the supply holds "
                         f"{MAX_LIST_STEPS}: give ramps fewer steps (field steps) or fewer segments")
    dwells = [round(d / DWELL_RESOLUTION) * DWELL_RESOLUTION for d in dwells]
    if min(dwells) <= 0:
        raise LimitError(f"{source}: a dwell is shorter than the supply's 1 us resolution")
    power = max(levels) * compliance
    if limits.max_power is not None and power > limits.max_power:
        raise LimitError(f"{source}: a step could draw up to {power:.4g} W (level x compliance), above the "
                         f"configured max_power of {limits.max_power:g} W")
    energy = energy_bound(levels, dwells, compliance)
    if energy > limits.max_energy_per_pulse:
        raise LimitError(f"{source}: one pulse could deliver up to {energy:.3g} J "
                         f"(level x compliance x dwell), above the configured max_energy_per_pulse of "
                         f"{limits.max_energy_per_pulse:g} J: lower the levels, the compliance or the dwells")
    if pulses > 1:
        check_energy_per_minute(energy, sum(dwells), pulses, off_time, limits, source, "the pulse")
    if record and sum(dwells) + record[1] >= record[0]:
        raise LimitError(f"{source}: the pulse lasts {sum(dwells):g} s; the digitizer records {record[0]:g} s "
                         f"with {record[1]:g} s before the trigger: lengthen instruments.digitizer.record")
    return ListProgram(tuple(levels), tuple(dwells), control, compliance)


def check_cool_down(off_time: float, limits: Limits, source: str) -> None:
    """`off_time` between pulses against limits.min_off_time; a LimitError naming `source`."""
    if off_time < limits.min_off_time:
        raise LimitError(f"{source}: field off_time: {off_time:g} s is below the configured "
                         f"minimum cool-down of {limits.min_off_time:g} s")


def check_energy_per_minute(energy: float, duration: float, pulses: int, off_time: float, limits: Limits,
                            source: str, lower: str) -> None:
    """A train of `pulses` pulses of `duration` s and at most `energy` J each, `off_time` s apart,
    against limits.max_energy_per_minute (if set); the LimitError says to lengthen off_time or
    to lower `lower`."""
    if limits.max_energy_per_minute is None:
        return
    per_minute = energy * min(pulses, math.ceil(60.0 / (duration + off_time)))
    if per_minute > limits.max_energy_per_minute:
        raise LimitError(f"{source}: the train could deliver up to {per_minute:.3g} J in a minute, above the "
                         f"configured max_energy_per_minute of {limits.max_energy_per_minute:g} J: "
                         f"lengthen off_time or lower {lower}")


def energy_bound(levels, dwells, compliance: float) -> float:
    """The most energy a list can deliver: each step at its level times the compliance."""
    return float(sum(level * compliance * dwell for level, dwell in zip(levels, dwells)))

