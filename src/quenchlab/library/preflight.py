"""Pre-flight: every library row checked against the config, and what the night will use (an
FJH sample's pulses: `preflight_fjh`).

Touches no instrument. A row that cannot run (a port with no reservoir, a flow above the
limit, a slot too short for its flush and settling, a recipe over the limits) or a reservoir
that would run dry refuses the whole library, with every problem named. Flows outside the
config's band are refused here; the gas flows' bands are the interlock's, at run time.
"""
from collections import defaultdict
from dataclasses import dataclass, field

from quenchlab.config.aerosol import AerosolConfig
from quenchlab.config.slot_budget import Budget, budget
from quenchlab.errors import ConfigError
from quenchlab.library.rows import AerosolRow


@dataclass(frozen=True)
class Slot:
    """One aerosol sample with the config's defaults filled in (times in s, flow in mL/min), its
    plate position as forecast (None without a collector) and its budget."""

    row: AerosolRow
    dwell: float
    flush: float
    liquid_flow: float
    position: str | None = None
    budget: Budget | None = None

    @property
    def sample_id(self) -> str:
        return self.row.sample_id


@dataclass
class Forecast:
    duration: float = 0.0  # s of reactor time
    liquid: dict[int, float] = field(default_factory=lambda: defaultdict(float))  # mL per port
    gas: dict[str, float] = field(default_factory=dict)  # L per gas role
    refills: int = 0  # syringe refills
    refill_time: float = 0.0  # s spent emptying, priming and refilling
    moves: float = 0.0  # s of stage moves
    warnings: list[str] = field(default_factory=list)


def aerosol_slots(rows: list[AerosolRow], config: AerosolConfig, source: str,
                  placed: dict[str, str] | None = None, used: set[str] = frozenset()) -> list[Slot]:
    """Every row checked and budgeted; `placed`: positions this library's samples already hold
    on the plate, `used`: every position already used (both from its ledger)."""
    slots, problems = [], []
    defaults, line = config.defaults, config.line
    positions = _positions(rows, config, placed or {}, set(used), problems)
    for row in rows:
        where = f"sample {row.sample_id}"
        if row.port not in config.reservoirs:
            problems.append(f"{where}: field port: {row.port} holds no reservoir in the config "
                            f"(loaded ports: {', '.join(map(str, sorted(config.reservoirs)))})")
            continue
        flow = row.liquid_flow or defaults.liquid_flow
        if not config.min_liquid_flow <= flow <= config.max_liquid_flow:
            problems.append(f"{where}: field liquid_flow: {flow:g} mL/min is outside the allowed band "
                            f"{config.min_liquid_flow:g}-{config.max_liquid_flow:g} mL/min "
                            "(the config's min_liquid_flow, max_liquid_flow)")
            continue
        dwell = row.dwell or defaults.dwell
        flush = row.flush if row.flush is not None else (
            defaults.flush if defaults.flush is not None else line.flush_volumes * config.dead_volume / flow * 60)
        position = positions.get(row.sample_id)
        try:
            slot_budget = budget(config, dwell, flush, flow, row.port, position)
        except ValueError as error:
            problems.append(f"{where}: {error}")
            continue
        if flush + line.settle_allowance + slot_budget.moves >= slot_budget.spray:
            problems.append(f"{where}: field dwell: {dwell:g} s leaves no time to collect: it sprays for "
                            f"{slot_budget.spray:.3g} s, and the {flush:.3g} s flush, the {line.settle_allowance:g} s "
                            f"settling allowance and {slot_budget.moves:.3g} s of stage moves come first")
            continue
        if config.plate and slot_budget.powder * 1e3 > config.plate.capacity:
            problems.append(f"{where}: about {slot_budget.powder * 1e3:.3g} mg of powder would land on position "
                            f"{position}, which holds {config.plate.capacity:g} mg (plate.capacity): shorten the "
                            "dwell or lower the liquid_flow")
            continue
        slots.append(Slot(row, dwell, flush, flow, position, slot_budget))
    refuse(problems, source)
    return slots


def _positions(rows: list[AerosolRow], config: AerosolConfig, placed: dict[str, str], used: set[str],
               problems: list[str]) -> dict[str, str]:
    """sample id -> plate position: the one it holds already, the row's own, or the next free."""
    plate = config.plate
    if plate is None:
        return {}
    positions = {}
    for row in rows:
        if row.sample_id in placed:
            positions[row.sample_id] = placed[row.sample_id]
        elif row.position:
            try:
                plate.xy(row.position)
            except ValueError as error:
                problems.append(f"sample {row.sample_id}: field position: {error}")
                continue
            if row.position in used:
                problems.append(f"sample {row.sample_id}: field position: {row.position} of plate {plate.id} is "
                                "already used (each position takes one sample, once)")
                continue
            positions[row.sample_id] = row.position
            used.add(row.position)
    free = [p for p in plate.positions() if p not in used]
    wanting = [row.sample_id for row in rows if row.sample_id not in positions and not row.position]
    if len(wanting) > len(free):
        problems.append(f"the library needs {len(wanting)} new positions; plate {plate.id} has {len(free)} free of "
                        f"{len(plate.positions())}: load a new plate (plate.id) or split the library")
    positions.update(zip(wanting, free))
    return positions


def aerosol_forecast(slots: list[Slot], config: AerosolConfig, source: str) -> Forecast:
    forecast = Forecast()
    for slot in slots:
        forecast.duration += slot.dwell
        forecast.liquid[slot.row.port] += slot.liquid_flow * slot.budget.spray / 60 + slot.budget.prime
        forecast.moves += slot.budget.moves
        if slot.budget.charge:
            forecast.refills += 1
            forecast.refill_time += slot.budget.changeover
    forecast.gas = {role: gas.setpoint * forecast.duration / 60
                    for role, gas in config.instruments.gases.items()}
    problems = []
    for port, used in sorted(forecast.liquid.items()):
        held = config.reservoirs[port].volume
        if used > held:
            problems.append(f"reservoir {port} ({config.reservoirs[port].precursor}) would run dry: "
                            f"the library needs {used:.1f} mL, it holds {held:.1f} mL")
        elif used > 0.9 * held:
            forecast.warnings.append(f"reservoir {port} will be {used / held:.0%} used")
    refuse(problems, source)
    return forecast


def refuse(problems: list[str], source: str) -> None:
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
