"""Valve-switched high-throughput sequences: one sample per slot, one run (one file) per sample.

A slot, each step a mark of the "phases" stream: `waste` (shutter closed, the collector on its
waste position, both read back), `switch` (the pump stopped, the valve turned and confirmed),
for a syringe `prime` (its remainder and a prime of the new solution sprayed to waste) and
`refill` (its charge withdrawn, spray stopped), `flush` (spraying starts: the slot's dwell
runs from here), `settle` (until the flame is stable within a band), `position` (to the
sample's plate position, read back), `collect` (shutter open, for the rest of the dwell),
`close` (shutter closed) and `end` (back on waste; a syringe stops). Without a collector the
slot collects on the one filter. Process data are logged all along on the reactor clock and
collected as pages. A checkpoint precedes each mark; after `end` the plan clears it:
quenchlab's Ctrl-C then lets the sample complete (quenchlab.run.interrupts).
"""
from collections.abc import Callable
from dataclasses import dataclass

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky import Msg

from quenchlab.clock import ReactorClock
from quenchlab.devices.flyers.process_logger import ProcessLogger
from quenchlab.devices.soft.phase_marker import settings_of
from quenchlab.errors import QuenchlabError
from quenchlab.plans.stubs import mark, reactor_sleep

COLLECT_EVERY = 60.0  # s of wall time between pages of process data: at speed N a page holds N minutes


def wait_until(clock: ReactorClock, logger: ProcessLogger, end: float):
    """Sleep to reactor time `end`, collecting the process data whenever the oldest row not
    yet collected is COLLECT_EVERY wall seconds old: the record on disk is never more than a
    minute behind, and a dry run, whose slot is over in less, pays for one page a sample (its
    last collect), not one per wait."""
    while end > clock.now():
        age = logger.uncollected_age()
        if age >= COLLECT_EVERY:
            yield Msg("collect", logger, stream=False, return_payload=False, name=None)
            age = 0.0
        yield from reactor_sleep(clock, min(end - clock.now(), (COLLECT_EVERY - age) * clock.speed))


def sprayed(logger: ProcessLogger, flame: "Flame", settled: float | None, since: float) -> None:
    """Raise SprayLost if the flame, settled at `settled` K, fell more than Flame.LOST bands below
    it in the readings since `since` (the collection)."""
    if settled is None:
        return
    low = min((row[flame.field] for row in logger.since(since)), default=settled)
    if low < settled - flame.LOST * flame.band:
        raise SprayLost(f"the flame fell to {low:.0f} K while collecting, from the {settled:.0f} K it had settled "
                        "at: the nozzle sprayed no liquid (a dry reservoir, or air drawn into the syringe)")


def wait_for_stable_flame(clock, logger, flame: "Flame", since: float):
    """Wait until every reading of the flame's field in its last window (after `since`) lies
    within its band of their mean and above its minimum; give up after its allowance. Returns
    that mean, or None if the flame did not settle. Looked at first once a window can be full,
    then every log period."""
    give_up = clock.now() + flame.allowance
    full = since + flame.window - logger.period
    while clock.now() < give_up:
        yield from reactor_sleep(clock, max(logger.period, min(full, give_up) - clock.now()))
        start = max(since, clock.now() - flame.window)
        values = [row[flame.field] for row in logger.since(start)]
        span = clock.now() - start
        if span >= flame.window - logger.period and values:
            mean = sum(values) / len(values)
            if mean >= flame.minimum and all(abs(v - mean) <= flame.band for v in values):
                return mean
    return None


@dataclass(frozen=True)
class Flame:
    """When the flame counts as settled: `field` of the process data within `band` K of its mean
    over `window` s and above `minimum` K, looked for up to `allowance` s. A settled flame that
    falls more than LOST bands below that mean while collecting has lost its liquid."""

    field: str
    band: float
    window: float
    minimum: float
    allowance: float

    LOST = 4


class SprayLost(QuenchlabError):
    """The flame fell while collecting: the nozzle sprayed no liquid (a dry reservoir, air drawn
    into a syringe), so the sample is not what was asked; the sample's own failure."""

    liquid = True


@dataclass(frozen=True)
class SlotSteps:
    """What one slot does in its `dwell` s from the switch: `changeover` (the plan between the
    switch and the spray: a syringe's prime and refill), then spray `flow` mL/min from `port`
    for at most `spray` s (the first `flush` s to waste), collecting on `target` (x, y mm of
    the plate position; None: no collector) until `back` s before the slot's end, the move back
    to waste. What it collected is reckoned from what was logged: `flow` x the shutter's open
    time (between the `collect` and `close` marks) x `powder_per_ml`."""

    port: int
    dwell: float
    flush: float
    flow: float
    spray: float
    target: tuple[float, float] | None
    back: float
    powder_per_ml: float  # mg of powder on the plate per mL sprayed (solids x capture)
    changeover: Callable[[], object] | None = None


def aerosol_sample(line, steps: SlotSteps, flame: Flame, md: dict):
    """One slot on `line` (valve, pump, collector or None, its `waste` point, logger, marker,
    collection record, clock, and the `instruments` whose settings the record keeps); returns
    a note if the flame did not settle (the sample is collected all the same and flagged). The
    clock is held (ReactorClock.hold) from the slot's end to the next slot's switch, and from
    the end of the collection until it is recorded: a dry run's host work there takes the
    reactor time it takes on the wall, as on a real reactor."""
    md = {"plan_name": "aerosol_sample", "port": steps.port, "dwell": steps.dwell, "flush": steps.flush,
          "settings": settings_of(line.instruments), **md}
    clock, logger, marker, collector = line.clock, line.logger, line.marker, line.collector
    notes = []

    @bpp.run_decorator(md=md)
    def inner():
        try:  # still held from the slot before: the host's steps until the switch
            yield from bps.kickoff(logger, wait=True)
            if collector is not None:
                yield from mark(marker, "waste")
                yield from bps.mv(collector, line.waste)  # the shutter closed first
        finally:
            clock.release()
        yield from mark(marker, "switch")
        start = marker.reactor_time.get()  # the dwell runs from the switch
        yield from bps.mv(line.pump.spray, 0)
        yield from bps.mv(line.valve, steps.port)
        if steps.changeover:
            yield from steps.changeover()
        yield from mark(marker, "flush")
        stop = min(start + steps.dwell - steps.back, marker.reactor_time.get() + steps.spray)
        yield from bps.mv(line.pump.spray, steps.flow)
        yield from wait_until(clock, logger, clock.now() + steps.flush)
        settled_from = clock.now()
        yield from mark(marker, "settle")
        settled = yield from wait_for_stable_flame(clock, logger, flame, settled_from)
        note = None if settled else (f"flame not stable within {flame.band:g} K after {flame.allowance:g} s: "
                                     "collected anyway")
        if collector is not None:
            yield from mark(marker, "position")
            yield from bps.mv(collector, steps.target)
        yield from mark(marker, "collect", note or "")  # stamped before the shutter opens, "close" once it is shut:
        opened = marker.reactor_time.get()              # the marks hold the whole time it was open
        if collector is not None:
            yield from bps.mv(collector.shutter, 1)
        yield from wait_until(clock, logger, stop)
        with clock.held():  # the host's steps that end the collection take the reactor time they take on the wall
            sprayed(logger, flame, settled, opened)
            yield from bps.trigger(line.pump, wait=True)  # a pump fault since the logger last looked is this sample's
            if collector is not None:
                yield from bps.mv(collector.shutter, 0)
                yield from mark(marker, "close")
            seconds = marker.reactor_time.get() - opened
            yield from bps.mv(line.collection, (md.get("position"), seconds,
                                                steps.flow * seconds / 60 * steps.powder_per_ml))
            yield from bps.trigger_and_read([line.collection], name="collection")
        if collector is not None:
            yield from bps.mv(collector, line.waste)
        if steps.changeover:  # a syringe stops: its remainder goes to waste at the next switch
            yield from bps.mv(line.pump.spray, 0)
        yield from mark(marker, "end")
        yield from bps.clear_checkpoint()  # the sample is taken: what is left is its last page
        clock.hold()
        yield from bps.complete(logger, wait=True)
        yield from bps.collect(logger)
        notes.append(note)

    yield from inner()
    return notes[0] if notes else None


def valve_switched_sequence(line, slots, md: dict | None = None):
    """Every slot in turn, each its own run (one record per sample), on a prepared aerosol line
    (`quenchlab.reactor.aerosol.AerosolReactor`). Unattended libraries, with their journal and
    resume, use `quenchlab.library.runner.run_library`, which runs the same per-slot plan."""
    for slot in slots:
        yield from line.plan(slot, {"sample": slot.sample_id, **slot.row.model_dump(exclude_none=True), **(md or {})})
