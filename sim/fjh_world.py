"""The physics world shared by the flash Joule heating twins.

One sample heated by one electrical source and watched by one pyrometer, integrated
lazily on the reactor clock: every twin calls `advance()` before it answers, so the
world is exact at the instant of each query and costs nothing while nobody asks.
"""
import math
import threading
from bisect import bisect_left
from typing import Protocol

import numpy as np

from quenchlab.clock import ReactorClock

from .samples import Sample

MAX_DT_DRIVEN = 100e-6  # s, longest step while current flows (MAX_DT_KELVIN keeps ramps finer)
MAX_DT_FREE = 1e-3  # s, step while the sample cools freely
MAX_DT_KELVIN = 2.0  # K, largest temperature change in one step


class ElectricalSource(Protocol):
    """What the world asks of a supply twin."""

    def drive(self, t: float) -> tuple[bool, float, float]:
        """(output enabled, voltage setting, current setting) in force at reactor time t."""

    def next_change(self, t: float) -> float:
        """Reactor time of the next programmed change after t (math.inf if none)."""

    def observe(self, t: float, volts: float, amps: float, constant_current: bool) -> None:
        """The source sees its own output (for its protection)."""


class FJHWorld:
    """Sample temperature, electrical output and the pyrometer's lagged view of them."""

    def __init__(self, sample: Sample, clock: ReactorClock, history_seconds: float = 60.0):
        self.sample = sample
        self.clock = clock
        self.source: ElectricalSource | None = None
        self.sensor_lag = 1e-3 / math.log(10)  # s, first-order tau = t90 / 2.303
        self.lock = threading.RLock()
        self.time = clock.now()
        self.temperature = sample.ambient
        self.sensed_temperature = sample.ambient
        self.molten = 0.0  # fraction of a melting sample that is liquid
        self.volts = 0.0
        self.amps = 0.0
        self.trigger_line: list[float] = []  # times of pulses on the supply's trigger-out wire
        self._history_seconds = history_seconds
        self._hist: dict[str, list[float]] = {k: [] for k in ("t", "temperature", "sensed", "volts", "amps")}
        self._record()

    @property
    def emissivity(self) -> float:
        """Of what the pyrometer looks at (the pyrometer view: also `sensed_temperature`,
        `sensor_lag`, `sample_at(times, "sensed")`, `advance()`, `lock`, `clock`)."""
        return self.sample.emissivity

    def advance(self) -> None:
        """Integrate the lumped model up to the clock's present."""
        with self.lock:
            end = self.clock.now()
            while self.time < end:
                self._step(end)
            self._prune()

    def _step(self, end: float) -> None:
        s, t = self.sample, self.time
        on, v_set, i_set = self.source.drive(t) if self.source else (False, 0.0, 0.0)
        r = s.resistance(self.temperature)
        amps = min(i_set, v_set / r) if on else 0.0
        cc = on and i_set <= v_set / r
        self.volts, self.amps = amps * r, amps
        if self.source:
            self.source.observe(t, self.volts, amps, cc)
        power = amps * amps * r
        rate = s.dtemperature_dt(self.temperature, power)
        quiet = (not on and abs(self.temperature - s.ambient) < 0.05
                 and abs(self.sensed_temperature - self.temperature) < 0.05)
        limit = self.source.next_change(t) if self.source else math.inf
        if quiet:
            dt = min(end, limit) - t
        else:
            dt = min(MAX_DT_DRIVEN if on else MAX_DT_FREE, MAX_DT_KELVIN / max(abs(rate), 1e-9))
            dt = max(min(dt, end - t, limit - t), 1e-7)
        if not quiet:
            self.temperature = self._heated(power, rate, dt)
        self.sensed_temperature += (self.temperature - self.sensed_temperature) * (1 - math.exp(-dt / self.sensor_lag))
        self.time = t + dt
        self._record()

    def _heated(self, power: float, rate: float, dt: float) -> float:
        """The temperature after dt; at its melting point a sample takes in (or gives out) latent
        heat at an unchanging temperature until it is all liquid (or all solid)."""
        s, t = self.sample, self.temperature
        new = max(s.ambient, t + rate * dt)
        m = s.melting_point
        if m is None or not (t == m or (t < m < new and self.molten < 1) or (new < m < t and self.molten > 0)):
            return new
        reach = (m - t) / rate if t != m else 0.0  # time to the melting point within this step
        to_melt = s.areal_mass * s.latent_heat  # J/m^2
        molten = self.molten + s.heat_flux(m, power) * (dt - reach) / to_melt
        self.molten = min(max(molten, 0.0), 1.0)
        beyond = (molten - self.molten) * to_melt  # J/m^2 left once all melted or all frozen
        return m + beyond / (s.areal_mass * s.heat_capacity(m))

    def _record(self) -> None:
        h = self._hist
        h["t"].append(self.time)
        h["temperature"].append(self.temperature)
        h["sensed"].append(self.sensed_temperature)
        h["volts"].append(self.volts)
        h["amps"].append(self.amps)

    def _prune(self) -> None:
        cut = bisect_left(self._hist["t"], self.time - self._history_seconds)
        if cut > 10000:
            for values in self._hist.values():
                del values[:cut]

    def history(self, start: float, stop: float) -> dict[str, np.ndarray]:
        """Recorded world state between two reactor times (advance first)."""
        self.advance()
        with self.lock:
            t = self._hist["t"]
            i0 = max(0, bisect_left(t, start) - 1)
            i1 = min(len(t), bisect_left(t, stop) + 1)
            return {k: np.asarray(v[i0:i1]) for k, v in self._hist.items()}

    def sample_at(self, times: np.ndarray, key: str) -> np.ndarray:
        """A history channel interpolated at the given reactor times."""
        h = self.history(float(np.min(times)), float(np.max(times)))
        return np.interp(times, h["t"], h[key])
