"""An aerosol slot's budget, before anything runs: its times, its liquid, its plate position and
its powder (quenchlab.preflight refuses what does not fit; the plan spends it).

A slot sprays for its `dwell`: the flush, the settling, the move to its position and the
collection. A syringe line first changes over: it sprays the syringe's remainder and a prime
of `prime_volumes` inlet volumes to waste, then withdraws the slot's charge (dwell x flow +
margin) at `withdraw_rate`, spray stopped; prime and charge must fit the syringe. A piston
pump just stops while the selector turns. The stage moves (trapezoidal profile at the
collector's speed and acceleration) go to the sample's position and back to waste.
"""
import math
from dataclasses import dataclass

from .aerosol_config import AerosolConfig

VALVE_TURN = 1.0  # s allowed for the selector to turn (a 10-position VICI: 0.14 s a port)


@dataclass(frozen=True)
class Budget:
    changeover: float  # s before the flush: emptying, priming and refilling a syringe (0: a piston pump)
    charge: float  # mL withdrawn into the syringe for the slot (0: a piston pump)
    prime: float  # mL primed to waste
    moves: float  # s of stage moves: to the position and back to waste
    powder: float  # g at most on the position (the flame settling at once)


def move_time(distance: float, speed: float, acceleration: float) -> float:
    """s to travel `distance` mm from rest to rest: trapezoidal, or triangular when short."""
    if distance <= speed ** 2 / acceleration:
        return 2 * math.sqrt(distance / acceleration)
    return distance / speed + speed / acceleration


def round_trip(config: AerosolConfig, position: str | None) -> tuple[float, float]:
    """(s from waste to `position`, s back): 0 without a collector."""
    collector, plate = config.instruments.collector, config.plate
    if collector is None or position is None:
        return 0.0, 0.0
    (x, y), (wx, wy) = plate.xy(position), plate.waste
    one_way = max(move_time(abs(x - wx), collector.speed, collector.acceleration),
                  move_time(abs(y - wy), collector.speed, collector.acceleration))  # both axes at once
    return one_way, one_way


def budget(config: AerosolConfig, dwell: float, flush: float, flow: float, port: int,
           position: str | None) -> Budget:
    """The slot's budget, or ValueError naming what does not fit."""
    to_position, back = round_trip(config, position)
    collect = dwell - flush - to_position
    powder = max(collect, 0.0) * flow / 60 * config.reservoirs[port].solids * config.line.capture
    pump = config.instruments.pump
    if pump.model != "ne1000":
        return Budget(VALVE_TURN, 0.0, 0.0, to_position + back, powder)
    charge = dwell * flow / 60 + pump.margin
    if pump.prime + charge > pump.capacity:
        raise ValueError(f"the slot needs {pump.prime:.3g} mL to prime and {charge:.3g} mL to spray ({dwell:g} s at "
                         f"{flow:g} mL/min, with a {pump.margin:g} mL margin): {pump.prime + charge:.3g} mL, more "
                         f"than the {pump.capacity:g} mL syringe (instruments.pump.capacity) holds: shorten the dwell "
                         "or lower the liquid_flow")
    empty = pump.margin * 60 / flow  # the last slot's remainder, sprayed to waste
    prime = pump.prime * 60 / pump.withdraw_rate + pump.prime * 60 / flow
    changeover = VALVE_TURN + empty + prime + charge * 60 / pump.withdraw_rate
    return Budget(changeover, charge, pump.prime, to_position + back, powder)
