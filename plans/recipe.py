"""From a recipe to the plan that runs it: everything checked against the config's limits first,
before any instrument is touched.

| recipe       | keysight-n6900                              | tdk-genesys                | capbank |
| current/volt | hardware list                               | host-timed steps           | refused |
| temperature  | list + learning, or closed loop if too long | closed loop (steady model) | refused |
| discharge    | refused                                     | refused                    | shot    |

A temperature profile that fits the digitizer's record is realised on the N6900 as a current
list computed from the sample model and learned from pulse to pulse; anything longer, and
anything on the Genesys, is held on the pyrometer by the host (quenchlab.control.hold). The
run's metadata says which (`realisation`).
"""
import math
from collections.abc import Callable, Generator

from quenchlab.config.fjh import FJHConfig
from quenchlab.control.profile import predicted_energy
from quenchlab.control.thermal_model import STEADY_PART, identify, steady_state
from quenchlab.devices.flyers.host_timed_pulse import minimum_step, minimum_tick, minimum_tick_basis
from quenchlab.errors import ConfigError, LimitError
from quenchlab.plans.kelvin import kelvin_train
from quenchlab.plans.pulses import pulse_train
from quenchlab.plans.supply import FOLDBACK_DELAY, RUNS, compile_host_timed, supply_plan
from quenchlab.recipes.kelvin import TemperatureRecipe, calibration_program, check_recipe, fits_record, program_for
from quenchlab.recipes.pulse import Recipe, check_cool_down, check_energy_per_minute, compile_recipe
from quenchlab.recipes.shot import ShotRecipe

RecipePlan = Callable[..., Generator]  # (reactor, md) -> the run's plan
LIST = "feed-forward current list, learned from pulse to pulse"
CLOSED_LOOP = "closed loop on the pyrometer, host-timed"


def checked_plan(recipe: Recipe | TemperatureRecipe | ShotRecipe, config: FJHConfig, source: str) -> RecipePlan:
    """The plan of `recipe` on a reactor; a LimitError (or ConfigError) now if it cannot run."""
    if isinstance(recipe, TemperatureRecipe):
        return temperature_plan(recipe, config, source)
    if config.instruments.supply.model != "keysight-n6900" or isinstance(recipe, ShotRecipe):
        return supply_plan(recipe, config, source)  # the other supplies (quenchlab.plans.supply)
    pulse = compile_recipe(recipe, config.limits, source, config.record_window)
    check_train(recipe.pulses, pulse.duration + recipe.off_time, config, source)
    return lambda reactor, md: pulse_train(reactor.flyer, pulse, recipe.pulses, recipe.off_time,
                                           reactor.detectors(), md)


def check_train(pulses: int, period: float, config: FJHConfig, source: str) -> None:
    """A hardware-timed train on the N6900: each pulse's record over before the next pulse begins."""
    digitizer = config.instruments.digitizer
    window = digitizer.record + digitizer.pre_trigger
    if pulses > 1 and period < window:
        raise LimitError(f"{source}: field off_time: pulses {period:g} s apart overlap the digitizer's {window:g} s "
                         "record (instruments.digitizer.record + pre_trigger): lengthen off_time or shorten the record")


def temperature_plan(recipe: TemperatureRecipe, config: FJHConfig, source: str) -> RecipePlan:
    """A calibration step fired by the configured supply's own flyer, then the profile: a learned
    list on an N6900 when it fits the digitizer's record, a closed loop otherwise."""
    model = config.instruments.supply.model
    if model == "capbank":
        raise ConfigError(f"{source}: field control: a temperature recipe cannot run on the capbank supply of the "
                          f"reactor config (instruments.supply.model); it runs {RUNS[model]} recipes")
    shape = check_recipe(recipe, config, source)
    check_cool_down(recipe.off_time, config.limits, source)  # the calibration pulse comes first, then the recipe's
    if model == "keysight-n6900":
        calibration = calibration_program(recipe, config, source)
        lag = config.instruments.pyrometer.response_time / math.log(10)  # t90 of a first-order sensor

        def fitted(page):
            return identify(page["time"], page["temperature"], page["supply_time"], page["current"], page["voltage"],
                            lag)
    else:
        step = Recipe(name=f"{recipe.name} calibration", compliance=f"{recipe.compliance} V",
                      segments=[{"level": f"{recipe.calibration.level} A", "dwell": f"{recipe.calibration.dwell} s"}])
        calibration = compile_host_timed(step, config, f"{source} (calibration)")
        if recipe.calibration.dwell * STEADY_PART < (shortest := minimum_step(config.instruments.supply.baudrate)):
            raise LimitError(f"{source}: field calibration.dwell: {recipe.calibration.dwell * 1e3:g} ms is shorter "
                             f"than the {shortest / STEADY_PART * 1e3:.3g} ms a host-timed calibration needs: "
                             f"the sample is identified from the step's last {STEADY_PART:.0%}, which must hold a "
                             f"{shortest * 1e3:.3g} ms host-timed step")

        def fitted(page):
            return steady_state(page["time"], page["temperature"], page["supply_time"], page["current"],
                                page["voltage"])
    timing = {"pulses": recipe.pulses, "off_time": recipe.off_time}
    if model == "keysight-n6900" and fits_record(shape, config):
        def realise(reactor, sample, reference):
            reactor.flyer.load(program_for(shape, reference, sample, recipe, config, source), shape)
        ceiling = min(config.limits.max_temperature or math.inf, config.instruments.pyrometer.range_end)
        return lambda reactor, md: kelvin_train(
            reactor.flyer, reactor.calibration_flyer, calibration, fitted,
            lambda sample, reference: realise(reactor, sample, reference), shape, **timing,
            gain=recipe.learning_gain, ceiling=ceiling, detectors=reactor.detectors(), md={**md, "realisation": LIST})
    _check_closed_loop(recipe, shape.duration, config, source)

    def hold(flyer, sample):
        limits, energy, where = (config.limits, predicted_energy(shape, sample),
                                 f"{source} (the profile for the calibrated sample)")
        if energy > limits.max_energy_per_pulse:
            raise LimitError(f"{where}: one pulse would take about {energy:.3g} J, "
                             f"above the configured max_energy_per_pulse of {limits.max_energy_per_pulse:g} J")
        check_energy_per_minute(energy, shape.duration, recipe.pulses, recipe.off_time, limits, where, "the profile")
        flyer.load(shape, sample, recipe.compliance, recipe.control_period)

    def plan(reactor, md):
        flyer = reactor.closed_loop_flyer
        return kelvin_train(flyer, reactor.calibration_flyer, calibration, fitted,
                            lambda sample, reference: hold(flyer, sample), shape, **timing,
                            detectors=reactor.detectors(), md={**md, "realisation": CLOSED_LOOP})
    return plan


def _check_closed_loop(recipe: TemperatureRecipe, duration: float, config: FJHConfig, source: str) -> None:
    """A closed loop's compliance and tick against the supply, and, on a Genesys with foldback
    armed, its length against the foldback time."""
    supply, limits = config.instruments.supply, config.limits
    if recipe.compliance > limits.max_voltage:
        raise LimitError(f"{source}: field compliance: {recipe.compliance:g} V exceeds the configured limit of "
                         f"{limits.max_voltage:g} V")
    if supply.model == "tdk-genesys":
        if recipe.control_period < (shortest := minimum_tick(supply.baudrate)):
            raise LimitError(f"{source}: field control_period: {recipe.control_period * 1e3:g} ms is shorter than the "
                             f"{shortest * 1e3:.3g} ms one tick's exchanges take on instruments.supply "
                             f"({minimum_tick_basis(supply.baudrate)})")
        if supply.foldback and duration >= (fold := FOLDBACK_DELAY + supply.foldback_delay):
            raise LimitError(f"{source}: the profile lasts {duration:g} s in constant current; with foldback on the "
                             f"supply shuts it down after {fold:g} s: raise instruments.supply.foldback_delay")


def pulses_fired(recipe: Recipe | TemperatureRecipe | ShotRecipe) -> int:
    """Every pulse the recipe fires, a temperature recipe's calibration pulse included."""
    return recipe.pulses + isinstance(recipe, TemperatureRecipe)
