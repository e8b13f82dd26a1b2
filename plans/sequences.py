"""Valve-switched high-throughput sequences: one sample per slot, one run (one file) per sample.

A slot: switch the valve (confirmed by its readback), flush the line, wait until the flame is
stable within a band, collect for the rest of the slot. Process data are logged all along on
the reactor clock and collected as pages; each phase boundary is an event of the "phases"
stream: switch, flush, settle, collect, end. A checkpoint precedes each mark; after `end` the
plan clears it: quenchlab's Ctrl-C then lets the sample complete (quenchlab.interrupts).
"""
import asyncio

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky import Msg

from quenchlab.clock import ReactorClock
from quenchlab.devices.phase_marker import PhaseMarker
from quenchlab.devices.process_logger import ProcessLogger

COLLECT_EVERY = 60.0  # s of wall time between pages of process data: at speed N a page holds N minutes


def reactor_sleep(clock: ReactorClock, seconds: float):
    """Wait `seconds` of reactor time: one `wait_for` on the clock (ReactorClock.until), not
    sleep messages of wall time (a paced clock runs slower than `speed`, so those would be
    repeated, hundreds of times a sample in a dry run). A bare message, not a plan stub: each
    stub records the stack it was made in."""
    end = clock.now() + seconds
    waits = []

    def wait():
        waits.append(asyncio.ensure_future(clock.until(end)))
        return waits[-1]
    try:
        yield Msg("wait_for", None, [wait])
    finally:  # a wait the RunEngine left (a pause, then an abort) would go on to its end: ended here
        for task in waits:
            task.cancel()


def mark(marker: PhaseMarker, phase: str, note: str = ""):
    """The phase stamped (the marker's set finishes at once) and read into the "phases" stream:
    bare messages, as in reactor_sleep (a dry run marks five phases per sample, 288 samples a day)."""
    yield Msg("checkpoint")  # where a Ctrl-C (a deferred pause) takes effect
    yield Msg("set", marker, phase, group=None, note=note)
    yield Msg("create", None, name="phases")
    yield Msg("read", marker)
    yield Msg("save")


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


def wait_for_stable_flame(clock, logger, field, band, window, minimum, allowance, since):
    """Wait until every reading of `field` in the last `window` s (after `since`) lies within
    `band` of their mean and above `minimum`; give up after `allowance` s. Returns whether
    the flame settled. Looked at first once a window can be full, then every log period."""
    give_up = clock.now() + allowance
    full = since + window - logger.period
    while clock.now() < give_up:
        yield from reactor_sleep(clock, max(logger.period, min(full, give_up) - clock.now()))
        start = max(since, clock.now() - window)
        values = [row[field] for row in logger.since(start)]
        span = clock.now() - start
        if span >= window - logger.period and values:
            mean = sum(values) / len(values)
            if mean >= minimum and all(abs(v - mean) <= band for v in values):
                return True
    return False


def aerosol_sample(valve, logger: ProcessLogger, marker: PhaseMarker, clock: ReactorClock, *,
                   port: int, dwell: float, flush: float, flame_field: str, band: float,
                   window: float, minimum: float, allowance: float, md: dict):
    """One slot of `dwell` s of reactor time for the precursor on `port`; returns a note if
    the flame did not settle (the sample is collected all the same and flagged). The clock is
    held (ReactorClock.hold) from the slot's end to the next slot's switch: a dry run's host
    work between two samples takes the reactor time it takes on the wall, as on a real reactor."""
    md = {"plan_name": "aerosol_sample", "port": port, "dwell": dwell, "flush": flush, **md}
    notes = []

    @bpp.run_decorator(md=md)
    def inner():
        yield from bps.kickoff(logger, wait=True)
        clock.release()
        yield from mark(marker, "switch")
        start = marker.reactor_time.get()  # the slot runs from its switch
        yield from bps.mv(valve, port)
        yield from mark(marker, "flush")
        yield from wait_until(clock, logger, clock.now() + flush)
        settled_from = clock.now()
        yield from mark(marker, "settle")
        stable = yield from wait_for_stable_flame(clock, logger, flame_field, band, window, minimum,
                                                  allowance, settled_from)
        note = None if stable else f"flame not stable within {band:g} K after {allowance:g} s: collected anyway"
        yield from mark(marker, "collect", note or "")
        yield from wait_until(clock, logger, start + dwell)
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
    (`quenchlab.aerosol_reactor.AerosolReactor`). Unattended libraries, with their journal and
    resume, use `quenchlab.library_run.run_library`, which runs the same per-slot plan."""
    for slot in slots:
        yield from line.plan(slot, {"sample": slot.sample_id, **slot.row.model_dump(exclude_none=True), **(md or {})})
