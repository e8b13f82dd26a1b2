"""Heat/quench pulse plans: one programmed pulse, or a train of them, each recorded.

A train on the N6900 is timed by the supply's list (devices/flyers/fjh_pulse.py): one kickoff fires
every pulse, so the off time is the recipe's, not the host's work between pulses; a train
longer than one list holds is fired list after list, the gaps showing in the pulses' starts.
On the host-timed supplies each pulse fires `off_time` after the one before ended. A
checkpoint precedes each firing; once every pulse is taken the plan clears it: a run paused
after that point is not resumed, and quenchlab's own Ctrl-C lets it complete
(quenchlab.run.interrupts). A train stopped early (an abort, a trip) still records the pulses it
completed.
"""
import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky import Msg

from quenchlab.control.programs import ListProgram
from quenchlab.devices.flyers.fjh_pulse import PulseFlyer, TrainRecord, train_timing


def pulse_train(flyer, program: ListProgram, pulses: int, off_time: float, detectors=(), md: dict | None = None):
    """Fire `program` `pulses` times, `off_time` s apart: as one hardware-timed list on a
    PulseFlyer (N6900); pulse by pulse on the host-timed supplies, each fired `off_time` after
    the one before ended (PulseCapture.follow). The "train" stream holds the programmed and
    achieved period, each pulse's row the off time it had. The `detectors` (e.g. the pyrometer
    and the supply) are read into the primary stream before each firing; each pulse's traces
    and figures become one event of the "pulse" stream. The supply output is off at the end,
    whatever happens."""
    flyer.load(program)
    timed = isinstance(flyer, PulseFlyer)
    parts = _parts(pulses, flyer.max_train) if timed else [1] * pulses  # lists, or single host-timed pulses
    if timed:
        flyer.train(parts[0], off_time)  # refused now, before the run, if the pulses overlap the record
    md = {"plan_name": "pulse_train", "pulses": pulses, "off_time": off_time, "pulse_duration": program.duration,
          "programmed_period": program.duration + off_time, **(md or {})}

    def keep_what_was_taken():
        yield from bps.stop(flyer)
        if timed:
            yield from bps.collect(flyer)  # the pulses a stopped train completed

    @bpp.run_decorator(md=md)  # staged inside the run: what unstaging meets (the output off) is the run's
    @bpp.stage_decorator([flyer, *detectors])
    @bpp.finalize_decorator(keep_what_was_taken)
    def inner():
        flyer.follow(None)
        starts = []
        for index, part in enumerate(parts):
            if timed:
                flyer.train(part, off_time, continued=index > 0)
            yield from fire(flyer, detectors)
            starts.append(flyer.fired_at)
            flyer.follow(flyer.ended_at, off_time)  # the next begins off_time after this one ended
        yield from bps.clear_checkpoint()  # every pulse is taken: what is left is closing up
        timing = flyer.last_train if timed else train_timing([s - starts[0] for s in starts], program.duration,
                                                              off_time)
        yield from record_train(timing)

    return (yield from inner())


def record_train(timing: dict):
    """The train's timing (devices.flyers.fjh_pulse.train_timing) as one event of the "train" stream."""
    record = TrainRecord(name="train")
    yield Msg("set", record, timing, group=None)
    yield from bps.trigger_and_read([record], name="train")


def _parts(pulses: int, most: int) -> list[int]:
    """A train of `pulses` cut into lists of at most `most`."""
    return [most] * (pulses // most) + ([pulses % most] if pulses % most else [])


def fire(flyer: PulseFlyer, detectors=()):
    """The loaded program (a pulse, or a train): the detectors read, then fired and collected."""
    yield from bps.checkpoint()  # where a Ctrl-C (a deferred pause) takes effect
    if detectors:
        yield from bps.trigger_and_read(list(detectors))
    yield from bps.kickoff(flyer, wait=True)
    yield from bps.complete(flyer, wait=True)
    yield from bps.collect(flyer)


def heat_quench_pulse(flyer: PulseFlyer, program: ListProgram, detectors=(), md: dict | None = None):
    """One programmed heat/quench pulse, its traces and figures recorded."""
    md = {"plan_name": "heat_quench_pulse", **(md or {})}
    return (yield from pulse_train(flyer, program, 1, 0.0, detectors, md))
