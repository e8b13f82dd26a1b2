"""Temperature-programmed pulses: calibrate on the sample, then realise the profile through the
identified model, pulse after pulse, optionally learning from each pulse's error for the next
(iterative learning control)."""
import math
from collections.abc import Callable

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import numpy as np

from quenchlab.control.profile import Profile, learned
from quenchlab.control.programs import ListProgram
from quenchlab.control.thermal_model import SampleModel
from quenchlab.devices.flyers.fjh_pulse import train_timing
from quenchlab.devices.flyers.pulse_capture import PulseCapture
from quenchlab.devices.soft.sample_model import model_device

from .pulses import fire, record_train


def kelvin_train(flyer: PulseCapture, calibrating: PulseCapture, calibration: ListProgram,
                 identify: Callable[[dict], SampleModel], realise: Callable[[SampleModel, np.ndarray], None],
                 shape: Profile, *, pulses: int, off_time: float, gain: float = 0.0, ceiling: float = math.inf,
                 detectors=(), md: dict | None = None):
    """The calibration pulse (stream "calibration") and the sample model `identify` makes of its
    page (stream "sample_model"), then `pulses` pulses of `flyer` (stream "pulse"), each fired
    `off_time` after the pulse before ended (its analysis, learning and upload inside the off
    time; the "train" stream holds the achieved period),
    each loaded by `realise(model, reference)` (which checks it against the limits),
    the reference being `shape`'s temperatures moved after each pulse by `gain` times the error
    it left (never above `ceiling`). The supply is made safe at the end, whatever happens."""
    calibrating.load(calibration)
    md = {"plan_name": "kelvin_train", "pulses": pulses, "off_time": off_time, "pulse_duration": shape.duration,
          "learning_gain": gain, **(md or {})}

    def stop_both():
        yield from bps.stop(calibrating)
        yield from bps.stop(flyer)

    @bpp.run_decorator(md=md)  # staged inside the run, as pulse_train is
    @bpp.stage_decorator([flyer, calibrating, *detectors])
    @bpp.finalize_decorator(stop_both)
    def inner():
        calibrating.follow(None)
        yield from fire(calibrating, detectors)
        model = identify(calibrating.last)
        yield from bps.trigger_and_read([model_device(model)], name="sample_model")
        reference, starts = shape.temperatures, []
        flyer.follow(calibrating.ended_at, off_time)
        for _ in range(pulses):
            realise(model, reference)  # inside the off time: the flyer fires off_time after the pulse before ended
            yield from fire(flyer, detectors)
            starts.append(flyer.fired_at)
            flyer.follow(flyer.ended_at, off_time)
            if gain:
                reference = np.minimum(learned(shape, reference, flyer.last["time"], flyer.last["temperature"], gain),
                                       ceiling)
        yield from bps.clear_checkpoint()  # every pulse is taken: what is left is closing up
        yield from record_train(train_timing([start - starts[0] for start in starts], shape.duration, off_time))

    return (yield from inner())
