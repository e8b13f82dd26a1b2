"""Pre-flight of an FJH sample: its recipe checked against every limit, and what it will fire."""
import math
from dataclasses import dataclass
from pathlib import Path

from quenchlab.config.fjh import FJHConfig
from quenchlab.control.programs import Shot as BankShot
from quenchlab.errors import ConfigError
from quenchlab.library.energy_estimate import list_energy, profile_energy, shot_estimate
from quenchlab.library.preflight import Forecast, refuse
from quenchlab.library.rows import RecipeRow
from quenchlab.plans.recipe import RecipePlan, checked_plan, pulses_fired
from quenchlab.plans.supply import compile_host_timed
from quenchlab.recipes.kelvin import TemperatureRecipe, calibration_program, check_recipe
from quenchlab.recipes.load import load_recipe
from quenchlab.recipes.pulse import compile_recipe, energy_bound
from quenchlab.recipes.shot import ShotRecipe, compile_shot

PULSE_OVERHEAD = 16 * 1024  # bytes of a pulse's group, attributes and table row besides its traces
RECORD_OVERHEAD = 64 * 1024  # bytes of a record's metadata, settings and tables


@dataclass(frozen=True)
class Pulses:
    """What one FJH sample's recipe will fire: pulses (a calibration pulse included), their on
    time, the most energy the supply can deliver in them (level x compliance x dwell, or the
    bank's 1/2 C V^2) and the model's estimate of it (`energy_estimate`), the time from the
    first pulse to the end of the last one's record at the achievable cadence, and the record's
    size on disk (its traces; an estimate)."""

    pulses: int
    on_time: float  # s
    energy_bound: float  # J
    energy_estimate: float  # J, every pulse from ambient on the config's simulation.sample
    duration: float  # s
    record_bytes: int
    note: str = ""  # what holds the pulses further apart than the recipe's off_time


@dataclass(frozen=True)
class Shot:
    """One FJH sample: its recipe, compiled, and what it will fire."""

    row: RecipeRow
    recipe_path: Path
    recipe_text: str
    plan: RecipePlan  # (reactor, md) -> the sample's plan
    fires: Pulses

    @property
    def duration(self) -> float:
        return self.fires.duration

    @property
    def sample_id(self) -> str:
        return self.row.sample_id


def fjh_shots(rows: list[RecipeRow], config: FJHConfig, library: Path) -> list[Shot]:
    """Recipes are found relative to the library file; each is compiled against the limits."""
    shots, problems = [], []
    for row in rows:
        path = (library.parent / row.recipe).resolve()
        try:
            recipe, text = load_recipe(path)
            plan = checked_plan(recipe, config, str(path))
        except ConfigError as error:
            problems.append(f"sample {row.sample_id}: field recipe: {error}")
            continue
        shots.append(Shot(row, path, text, plan, fjh_pulses(recipe, config, str(path))))
    refuse(problems, str(library))
    return shots


def fjh_pulses(recipe, config: FJHConfig, source: str) -> Pulses:
    """What `recipe` (already checked against the limits) will fire on the configured supply."""
    supply, digitizer, sample = config.instruments.supply, config.instruments.digitizer, config.simulation.sample
    extra_on = extra_bound = extra_estimate = 0.0  # a temperature recipe's calibration pulse
    off, note = recipe.off_time, ""
    if isinstance(recipe, TemperatureRecipe):
        shape = check_recipe(recipe, config, source)
        on, estimate = shape.duration, profile_energy(shape, sample)
        bound = config.limits.max_current * recipe.compliance * on  # its list is clipped to max_current
        calibration = calibration_program(recipe, config, source)
        extra_on, extra_estimate = calibration.duration, list_energy(calibration, sample)
        extra_bound = energy_bound(calibration.levels, calibration.dwells, calibration.limit)
    elif isinstance(recipe, ShotRecipe):
        shot = compile_shot(recipe, config, source)
        (estimate, left), on, bound = shot_estimate(shot, sample), shot.duration, shot.energy
        off, note = bank_cycle(shot, left, supply, recipe.off_time)
    else:
        program = compile_recipe(recipe, config.limits, source) if supply.model == "keysight-n6900" \
            else compile_host_timed(recipe, config, source)
        on, bound = program.duration, energy_bound(program.levels, program.dwells, recipe.compliance_value)
        estimate = list_energy(program, sample)
    pulses = pulses_fired(recipe)
    supply_points = math.ceil(digitizer.record / supply.digitizer_interval) if supply.model == "keysight-n6900" \
        else digitizer.points
    per_pulse = (2 * digitizer.points + 3 * supply_points) * 8 + PULSE_OVERHEAD  # time, K; supply_time, A, V
    return Pulses(pulses, recipe.pulses * on + extra_on, recipe.pulses * bound + extra_bound,
                  recipe.pulses * estimate + extra_estimate, (pulses - 1) * (on + off) + digitizer.record,
                  pulses * per_pulse + RECORD_OVERHEAD, note)


def bank_cycle(shot: BankShot, left: float, bank, off_time: float) -> tuple[float, str]:
    """(the off time a capacitor bank's shots can keep, why if longer than `off_time`): inside it,
    the dump of the `left` V a shot leaves (RDUMP C ln(V / VSAFE), docs/capbank-protocol.md
    section 2) and the charge from there (C dV / ICHG), each where the config gives its figures."""
    start, parts = 0.0, []
    if bank.dump_resistance and bank.safe_voltage:
        start = min(left, bank.safe_voltage)
        if left > bank.safe_voltage:
            dump = bank.dump_resistance * shot.capacitance * math.log(left / bank.safe_voltage)
            parts.append((f"the dump of the ~{left:.3g} V a shot leaves (RDUMP C ln(V / VSAFE))", dump))
    if bank.charge_current:
        charge = shot.capacitance * (shot.voltage - start) / bank.charge_current
        parts.append((f"the charge to {shot.voltage:g} V (C dV / ICHG)", charge))
    cycle = sum(seconds for _, seconds in parts)
    if cycle <= off_time:
        return off_time, ""
    said = " and ".join(f"{what}, {seconds:.2g} s," for what, seconds in parts)
    return cycle, (f"{said} take {cycle:.3g} s, longer than off_time {off_time:g} s: the shots are at least "
                   f"{cycle + shot.duration:.3g} s apart")


def fjh_forecast(shots: list[Shot]) -> Forecast:
    return Forecast(duration=sum(s.duration for s in shots))
