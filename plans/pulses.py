"""Heat/quench pulse plans: one programmed pulse, or a train of them, each recorded.

A checkpoint precedes each pulse; once the last pulse is taken the plan clears it: a run
paused after that point is not resumed, and quenchlab's own Ctrl-C lets it complete
(quenchlab.interrupts)."""
import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp

from quenchlab.devices.fjh_pulse import PulseFlyer
from quenchlab.devices.n6900_driver import ListProgram


def pulse_train(flyer: PulseFlyer, program: ListProgram, pulses: int, off_time: float,
                detectors=(), md: dict | None = None):
    """Fire `program` `pulses` times, `off_time` s apart (host-timed; each pulse is
    hardware-timed by the supply's list). Before each pulse the `detectors` (e.g. the
    pyrometer and the supply) are read into the primary stream; each pulse's traces and
    figures become one event of the "pulse" stream. The supply output is off at the end,
    whatever happens."""
    flyer.load(program)
    md = {"plan_name": "pulse_train", "pulses": pulses, "off_time": off_time,
          "pulse_duration": program.duration, **(md or {})}

    @bpp.stage_decorator([flyer, *detectors])
    @bpp.run_decorator(md=md)
    @bpp.finalize_decorator(lambda: bps.stop(flyer))
    def inner():
        for index in range(pulses):
            yield from fire(flyer, detectors)
            if index < pulses - 1:
                yield from bps.sleep(off_time)
        yield from bps.clear_checkpoint()  # every pulse is taken: what is left is closing up

    return (yield from inner())


def fire(flyer: PulseFlyer, detectors=()):
    """One pulse of the loaded program: the detectors read, the pulse fired and collected."""
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
