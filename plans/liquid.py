"""A syringe's change-over between two slots (domain.md, "Liquid runs out"): what stayed in the
inlet line, the valve's rotor and the syringe from the last precursor goes to waste, then the
slot's charge is drawn, slowly, through the inlet check valve; the shutter stays closed and
the spray stops while the syringe refills (the flame burns on its pilot)."""
import bluesky.plan_stubs as bps

from quenchlab.devices.ne1000_device import EMPTY
from quenchlab.plans.stubs import mark

from .sequences import wait_until


def dispense(pump, clock, logger, direction: str, volume, rate: float):
    """Move `volume` mL (EMPTY: all the syringe holds) and wait for the pump to stop, collecting
    process data meanwhile (the record stays at most a minute behind through a refill)."""
    group = f"dispense-{direction}"
    status = yield from bps.abs_set(pump.dispenser, (direction, volume, rate), group=group)
    while not status.done:
        yield from wait_until(clock, logger, clock.now() + logger.period)
    yield from bps.wait(group=group)


def syringe_changeover(line, *, flow: float, prime: float, charge: float, withdraw_rate: float):
    """The remainder and `prime` mL of the new solution sprayed to waste at `flow`, then `charge`
    mL withdrawn at `withdraw_rate` (the pump refuses a charge that would pass its capacity)."""
    pump, clock, logger = line.pump, line.clock, line.logger
    yield from mark(line.marker, "prime")
    yield from dispense(pump, clock, logger, "INF", EMPTY, flow)
    yield from dispense(pump, clock, logger, "WDR", prime, withdraw_rate)
    yield from dispense(pump, clock, logger, "INF", prime, flow)
    yield from mark(line.marker, "refill")
    yield from dispense(pump, clock, logger, "WDR", charge, withdraw_rate)
