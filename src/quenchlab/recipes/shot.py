"""Capacitor-bank shot recipes: charge the bank to a voltage, then close the switch for a time.

    name: carbon-paper-shot
    control: discharge        # a capacitor-bank shot
    charge_voltage: 40 V
    fire: 25 ms               # how long the switch stays closed: whole ms, 1-1000
    pulses: 3
    off_time: 20 s

`compile_shot` checks it against the reactor config before anything is sent: the charge
voltage against the supply's max_charge_voltage and limits.max_voltage (the sample takes the
whole bank voltage when the switch closes), the energy the charged bank holds, 1/2 C V^2 with
the configured capacitance, against limits.max_energy_per_pulse (and a train's against
max_energy_per_minute), the off time and the digitizer's record.
"""
from typing import Annotated, Literal

from pydantic import Field, field_validator

from quenchlab.config.fjh import FJHConfig
from quenchlab.control.programs import Shot
from quenchlab.devices.capbank_driver import MAX_FIRE_MS
from quenchlab.errors import LimitError
from quenchlab.files import Strict
from quenchlab.recipes.pulse import check_cool_down, check_energy_per_minute
from quenchlab.units import Seconds, Volts


class ShotRecipe(Strict):
    name: str
    description: str = ""
    control: Literal["discharge"]
    charge_voltage: Annotated[Volts, Field(gt=0)]
    fire: Annotated[Seconds, Field(ge=1e-3, le=MAX_FIRE_MS * 1e-3)]
    pulses: Annotated[int, Field(ge=1, le=10000)] = 1
    off_time: Annotated[Seconds, Field(ge=0)] = 1.0

    @field_validator("fire")
    @classmethod
    def _whole_milliseconds(cls, seconds: float) -> float:
        if abs(seconds * 1e3 - round(seconds * 1e3)) > 1e-6:
            raise ValueError(f"the switch closes for whole milliseconds (FIRE n), not {seconds * 1e3:g} ms")
        return seconds


def compile_shot(recipe: ShotRecipe, config: FJHConfig, source: str = "recipe") -> Shot:
    """The shot of `recipe` on the configured bank, or a LimitError saying what to change."""
    supply, limits = config.instruments.supply, config.limits
    volts = recipe.charge_voltage
    for ceiling, name in ((supply.max_charge_voltage, "instruments.supply.max_charge_voltage"),
                          (limits.max_voltage, "limits.max_voltage")):
        if volts > ceiling:
            raise LimitError(f"{source}: field charge_voltage: {volts:g} V exceeds {name} ({ceiling:g} V)")
    shot = Shot(volts, round(recipe.fire * 1e3), supply.capacitance)
    if shot.energy > limits.max_energy_per_pulse:
        raise LimitError(f"{source}: field charge_voltage: the bank charged to {volts:g} V holds {shot.energy:.3g} J "
                         f"(1/2 C V^2 with C = {supply.capacitance:g} F), above the configured "
                         f"max_energy_per_pulse of {limits.max_energy_per_pulse:g} J")
    if recipe.pulses > 1:
        check_cool_down(recipe.off_time, limits, source)
        check_energy_per_minute(shot.energy, shot.duration, recipe.pulses, recipe.off_time, limits, source,
                                "charge_voltage")
    record, pre_trigger = config.record_window
    if shot.duration + pre_trigger >= record:
        raise LimitError(f"{source}: field fire: the shot lasts {shot.duration:g} s; the digitizer records "
                         f"{record:g} s with {pre_trigger:g} s before the trigger: "
                         "lengthen instruments.digitizer.record")
    return shot
