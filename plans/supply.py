"""Which recipes run on which supply, checked before any instrument is touched.

A Keysight N6900 runs current, voltage and temperature recipes from its hardware list
(quenchlab.plans.recipe). A TDK-Lambda Genesys runs current and voltage recipes host-timed
(temperature recipes in a closed loop, quenchlab.plans.recipe):
`compile_host_timed` refuses any step shorter than the link allows (devices/flyers/host_timed_pulse.py
`minimum_step`) and any level the supply would refuse. A capacitor bank runs shot recipes
(`control: discharge`, quenchlab.recipes.shot). Any other pairing is refused, naming the recipe's
kind and what the configured supply runs.
"""
import math

from quenchlab.config.fjh import FJHConfig
from quenchlab.config.supplies import GENESYS_PV_OF_OVP
from quenchlab.control.programs import ListProgram
from quenchlab.devices.flyers.host_timed_pulse import minimum_step, minimum_step_basis
from quenchlab.errors import ConfigError, LimitError
from quenchlab.plans.pulses import pulse_train
from quenchlab.recipes.pulse import Ramp, Recipe, compile_recipe
from quenchlab.recipes.shot import ShotRecipe, compile_shot

RUNS = {"keysight-n6900": "current, voltage and temperature", "tdk-genesys": "current, voltage and temperature",
        "capbank": "discharge"}
FOLDBACK_DELAY = 0.25  # s of CC before a Genesys folds back, before FBD adds to it (an estimate)


def supply_plan(recipe, config: FJHConfig, source: str):
    """The plan of `recipe` on a Genesys or a capacitor bank, as (reactor, md) -> plan."""
    model = config.instruments.supply.model
    if model == "capbank" and isinstance(recipe, ShotRecipe):
        program = compile_shot(recipe, config, source)
    elif model == "tdk-genesys" and isinstance(recipe, Recipe):
        program = compile_host_timed(recipe, config, source)
    else:
        raise ConfigError(f"{source}: field control: a {recipe.control} recipe cannot run on the {model} supply of "
                          f"the reactor config (instruments.supply.model); it runs {RUNS[model]} recipes")
    return lambda reactor, md: pulse_train(reactor.flyer, program, recipe.pulses, recipe.off_time,
                                           reactor.detectors(), md)


def compile_host_timed(recipe: Recipe, config: FJHConfig, source: str) -> ListProgram:
    """The steps of one pulse of `recipe` for the host to send, or a LimitError saying what to
    change. A ramp without `steps` is cut into steps as short as the link allows."""
    supply, limits = config.instruments.supply, config.limits
    shortest = minimum_step(supply.baudrate)

    def too_short(field: str, seconds: float) -> LimitError:
        return LimitError(f"{source}: field {field}: a step of {seconds * 1e3:.4g} ms is shorter than the "
                          f"{shortest * 1e3:.3g} ms a host-timed step needs on instruments.supply "
                          f"({minimum_step_basis(supply.baudrate)})")

    segments = []
    for i, segment in enumerate(recipe.segments):
        if isinstance(segment, Ramp):
            steps = segment.steps or max(1, math.floor(segment.over / shortest))
            if segment.over / steps < shortest:
                raise too_short(f"segments.{i}.{'steps' if segment.steps else 'over'}", segment.over / steps)
            segment = segment.model_copy(update={"steps": steps})
        elif segment.dwell < shortest:
            raise too_short(f"segments.{i}.dwell", segment.dwell)
        segments.append(segment)
    program = compile_recipe(recipe.model_copy(update={"segments": segments}), limits, source)
    voltages = [program.limit] if program.control == "current" else program.levels
    for volts in voltages:
        if not supply.uvl <= volts <= GENESYS_PV_OF_OVP * supply.ovp:
            raise LimitError(f"{source}: a voltage setting of {volts:g} V is outside what the supply takes: from "
                             f"instruments.supply.uvl ({supply.uvl:g} V) to 95 % of its ovp "
                             f"({GENESYS_PV_OF_OVP * supply.ovp:g} V)")
    fold = FOLDBACK_DELAY + supply.foldback_delay
    if supply.foldback and program.control == "current" and program.duration >= fold:
        raise LimitError(f"{source}: the pulse lasts {program.duration:g} s in constant current; with foldback on "
                         f"the supply shuts it down after {fold:g} s: lengthen instruments.supply.foldback_delay")
    record, pre_trigger = config.record_window
    if program.duration + pre_trigger + shortest >= record:
        raise LimitError(f"{source}: the pulse lasts {program.duration:g} s, switched on and off by the host; the "
                         f"digitizer records {record:g} s with {pre_trigger:g} s before the trigger: lengthen "
                         "instruments.digitizer.record")
    return program
