"""An aerosol slot's budget, before anything runs: its times, its liquid, its plate position and
its powder (quenchlab.library.preflight refuses what does not fit; the plan spends it).

A slot lasts its `dwell`, from the valve's switch to its end back on waste, so that 288 slots
of 5 minutes make a day. A piston pump stops while the selector turns (VALVE_TURN), then
sprays for the rest of the slot. A syringe line first changes over: it sprays the syringe's
remainder and a prime of `prime_volumes` inlet volumes to waste, then withdraws the slot's
charge at `withdraw_rate`, spray stopped; the charge is what it sprays for the rest of the
slot, plus `margin`, and prime and charge must fit the syringe. Spraying: the flush, the
settling, the move to the sample's position, the collection and the move back to waste
(trapezoidal moves at the collector's speed and acceleration).
"""
import math
from dataclasses import dataclass

from quenchlab.config.aerosol import AerosolConfig

VALVE_TURN = 1.0  # s allowed for the selector to turn (a 10-position VICI: 0.14 s a port)


@dataclass(frozen=True)
class Budget:
    changeover: float  # s from the switch to the spray: the valve turning; a syringe emptied, primed, refilled
    spray: float  # s of spraying: the rest of the dwell
    charge: float  # mL withdrawn into the syringe for the slot (0: a piston pump)
    prime: float  # mL primed to waste
    to_position: float  # s of the stage's move from waste to the position
    back: float  # s of its move back
    powder: float  # g at most on the position (the flame settling at once)

    @property
    def moves(self) -> float:
        return self.to_position + self.back


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
    pump = config.instruments.pump
    charge = prime = 0.0
    spray = dwell - VALVE_TURN
    if pump.model == "ne1000":
        prime = pump.prime
        fixed = VALVE_TURN + pump.margin * 60 / flow + prime * 60 / pump.withdraw_rate + prime * 60 / flow
        spray = (dwell - fixed - pump.margin * 60 / pump.withdraw_rate) / (1 + flow / pump.withdraw_rate)
        charge = spray * flow / 60 + pump.margin
        if prime + charge > pump.capacity:
            raise ValueError(f"the slot needs {prime:.3g} mL to prime and {charge:.3g} mL to spray ({spray:.0f} s at "
                             f"{flow:g} mL/min, with a {pump.margin:g} mL margin): {prime + charge:.3g} mL, more than "
                             f"the {pump.capacity:g} mL syringe (instruments.pump.capacity) holds: shorten the dwell "
                             "or lower the liquid_flow")
    collect = spray - flush - to_position - back
    powder = max(collect, 0.0) * flow / 60 * config.reservoirs[port].solids * config.line.capture
    return Budget(dwell - spray, spray, charge, prime, to_position, back, powder)
