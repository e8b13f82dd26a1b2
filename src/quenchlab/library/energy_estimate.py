"""A model estimate, for pre-flight, of what one pulse of a recipe puts into the sample: the
twins' lumped sample (the config's `simulation.sample`, sim/samples.py) driven exactly as
programmed, from ambient. It is the twins' sample, not the rig's: limits are checked against
the bound; the estimate says what to expect from a sample like it."""
import math
from bisect import bisect_right
from functools import lru_cache
from itertools import accumulate

import numpy as np

from quenchlab.control.profile import Profile
from quenchlab.control.programs import ListProgram, Shot
from quenchlab.sim.fjh_world import FJHWorld
from quenchlab.sim.samples import PRESETS


class _HandClock:
    """The world's clock, set by hand: the estimate runs as fast as it computes."""

    t = 0.0

    def now(self) -> float:
        return self.t


class _ListPlayer:
    """A supply playing one list exactly: each level for its dwell, the other quantity at the limit."""

    def __init__(self, program: ListProgram):
        self.program, self.edges = program, list(accumulate(program.dwells))

    def drive(self, t: float) -> tuple[bool, float, float]:
        i = bisect_right(self.edges, t)
        if i >= len(self.edges):
            return False, 0.0, 0.0
        level, limit = self.program.levels[i], self.program.limit
        return (True, limit, level) if self.program.control == "current" else (True, level, limit)

    def next_change(self, t: float) -> float:
        i = bisect_right(self.edges, t)
        return self.edges[i] if i < len(self.edges) else math.inf

    def observe(self, t: float, volts: float, amps: float, constant_current: bool) -> None:
        pass


class _Bank:
    """A bank charged to the shot's voltage, across the sample while the switch is closed; the
    charge it gives is the current it drives."""

    def __init__(self, shot: Shot):
        self.shot, self.voltage, self._last, self._amps = shot, shot.voltage, 0.0, 0.0

    def drive(self, t: float) -> tuple[bool, float, float]:
        return t < self.shot.duration, self.voltage, math.inf

    def next_change(self, t: float) -> float:
        return self.shot.duration if t < self.shot.duration else math.inf

    def observe(self, t: float, volts: float, amps: float, constant_current: bool) -> None:
        self.voltage -= self._amps * (t - self._last) / self.shot.capacitance
        self._last, self._amps = t, amps


def _delivered(source, duration: float, sample: str) -> float:
    """J the source puts into the sample over `duration` s."""
    clock = _HandClock()
    world = FJHWorld(PRESETS[sample], clock, history_seconds=math.inf)
    world.source = source
    clock.t = duration
    world.advance()
    h = world.history(0.0, duration)
    return float(np.sum((h["volts"] * h["amps"])[1:] * np.diff(h["t"])))  # each step's output, held over it


@lru_cache(maxsize=256)
def list_energy(program: ListProgram, sample: str) -> float:
    """J one pulse of `program` puts into the `sample` preset."""
    return _delivered(_ListPlayer(program), program.duration, sample)


@lru_cache(maxsize=64)
def shot_estimate(shot: Shot, sample: str) -> tuple[float, float]:
    """(J the shot puts into the `sample` preset, V left on the bank after it)."""
    bank = _Bank(shot)
    return _delivered(bank, shot.duration, sample), bank.voltage


def profile_energy(shape: Profile, sample: str) -> float:
    """J the `sample` preset takes to follow `shape` exactly: heating it along the profile and its
    losses (none where it would have to be cooled faster than it cools by itself)."""
    s = PRESETS[sample]
    middle = 0.5 * (shape.temperatures[1:] + shape.temperatures[:-1])
    slope = np.diff(shape.temperatures) / np.diff(shape.times)
    heat = np.array([s.areal_mass * s.heat_capacity(t) for t in middle]) * slope
    losses = -np.array([s.heat_flux(t, 0.0) for t in middle])
    return float(np.sum(np.maximum(heat + losses, 0.0) * s.area * np.diff(shape.times)))
