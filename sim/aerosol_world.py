"""The physics world shared by the aerosol (flame spray pyrolysis) twins.

A selector valve picks a precursor reservoir; the syringe pump pushes it down a line of
dead volume V_dead into the nozzle, where it mixes with what was there (first order, tau_mix):
C(t) = C_new + (C_old - C_new) exp(-(t - t_switch - V_dead/Q)/tau_mix) (domain.md). The flame
temperature follows the gas flows, the liquid load and the precursor at the nozzle, with a
lag; the filter's pressure drop climbs with the powder collected; each reservoir empties.

Units: liquid mL and mL/min, gas SLPM, pressure kPa, temperature K, time s (reactor time).
The world is integrated lazily on the reactor clock, in whole steps of STEP s: every twin
calls `advance()` before it answers, and reads the world as of the last step (a sample and
hold of at most STEP, short against the line's and the flame's time constants).

Twins plug in by attribute: `valve.port_at(t) -> int | None` (None while between ports),
`pump.flow_at(t) -> mL/min pushed into the line`, and `gases[role].flow_at(t) -> SLPM` for the
roles "dispersion", "pilot_fuel", "pilot_oxidizer", "sheath".
"""
import math
import threading
from dataclasses import dataclass, field

import numpy as np

from quenchlab.clock import ReactorClock

from .noise import normals

STEP = 0.25  # s, integration step
GAS_ROLES = ("dispersion", "pilot_fuel", "pilot_oxidizer", "sheath")


@dataclass(frozen=True)
class Precursor:
    """What a reservoir holds: enough to move the flame and load the filter."""

    name: str
    solids: float = 0.02  # g of powder per mL of solution
    flame_offset: float = 0.0  # K, how the solution shifts the flame temperature


@dataclass
class LineModel:
    dead_volume: float = 0.2  # mL (0.5 mm x 1 m line)
    tau_mix: float = 4.0  # s, mixing at the nozzle
    flame_base: float = 1700.0  # K with the pilot flame alone
    flame_per_fuel: float = 120.0  # K per SLPM of CH4 around the nominal pilot
    flame_per_liquid: float = 40.0  # K per mL/min of solution burnt
    nominal_fuel: float = 1.5  # SLPM
    tau_flame: float = 3.0  # s
    filter_base: float = 2.0  # kPa across a clean filter at nominal gas flow
    filter_per_gram: float = 0.4  # kPa per g of collected powder (a large filter: a day loads ~90 g)
    capture: float = 0.6  # fraction of the solids that reach the filter
    reservoirs: dict[int, float] = field(default_factory=dict)  # port -> mL


class AerosolWorld:
    """Line, nozzle, flame and filter of one flame spray reactor."""

    def __init__(self, precursors: dict[int, Precursor], clock: ReactorClock,
                 line: LineModel | None = None, seed: int | None = None):
        self.precursors = precursors
        self.clock = clock
        self.line = line or LineModel()
        self.normals = normals(np.random.default_rng(seed))
        self.lock = threading.RLock()
        self.valve = self.pump = None
        self.gases: dict[str, object] = {}
        self.time = clock.now()
        self.pumped = 0.0  # mL pushed into the line so far
        self._inlet: list[tuple[float, int | None]] = [(0.0, None)]  # (pumped volume, port entering)
        self.nozzle: dict[int | None, float] = {None: 1.0}  # fraction of each port's solution
        self.reservoirs = {port: self.line.reservoirs.get(port, 500.0) for port in precursors}
        self.flame = self.line.flame_base
        self.collected = 0.0  # g on the filter
        self._solids = self._offset = 0.0  # g/mL and K of the solution at the nozzle
        self.sensor_lag = 1e-3 / math.log(10)

    # --- the pyrometer's view -----------------------------------------------------------
    emissivity = 0.3  # of the particle-laden flame, as the pyrometer sees it

    @property
    def sensed_temperature(self) -> float:
        """The flame as the pyrometer's spot sees it: it flickers by a few kelvin."""
        return self.flame + 3.0 * next(self.normals)

    def sample_at(self, times: np.ndarray, key: str) -> np.ndarray:
        self.advance()
        return np.full(np.shape(times), self.sensed_temperature)

    # --- integration --------------------------------------------------------------------
    def advance(self) -> None:
        with self.lock:
            end = self.clock.now() - STEP
            while self.time <= end:
                self._step(STEP)

    def _flow(self, t: float) -> float:
        return self.pump.flow_at(t) if self.pump else 0.0

    def _gas(self, role: str, t: float) -> float:
        unit = self.gases.get(role)
        return unit.flow_at(t) if unit else 0.0

    def _step(self, dt: float) -> None:
        t, line = self.time, self.line
        volume = self._flow(t) * dt / 60.0  # mL
        port = self.valve.port_at(t) if self.valve else None
        if port is not None and volume > 0:  # a dry reservoir delivers nothing
            volume = min(volume, self.reservoirs.get(port, 0.0))
            self.reservoirs[port] = self.reservoirs.get(port, 0.0) - volume
        if self._inlet[-1][1] != port:
            self._inlet.append((self.pumped, port))
        self.pumped += volume
        if volume > 0:
            self._mix(self._port_entering_at(self.pumped - line.dead_volume), 1 - math.exp(-dt / line.tau_mix))
        self.collected += volume * self._solids * line.capture
        fuel = self._gas("pilot_fuel", t)
        target = (line.flame_base + line.flame_per_fuel * (fuel - line.nominal_fuel)
                  + line.flame_per_liquid * volume / dt * 60 + self._offset) if fuel > 0 else 300.0
        self.flame += (target - self.flame) * (1 - math.exp(-dt / line.tau_flame))
        self.time = t + dt

    def _mix(self, arriving: int | None, mix: float) -> None:
        """Move the nozzle's content a fraction `mix` towards the solution arriving; a solution
        whose share has fallen below 1e-9 is gone (then, most of a slot, the nozzle holds the
        arriving solution alone, and nothing changes)."""
        if len(self.nozzle) == 1 and arriving in self.nozzle:
            return
        nozzle = {key: kept for key, share in self.nozzle.items() if (kept := share * (1 - mix)) > 1e-9}
        nozzle[arriving] = nozzle.get(arriving, 0.0) + mix
        self.nozzle = nozzle
        known = [(self.precursors[p], f) for p, f in nozzle.items() if p in self.precursors]
        self._solids = sum(f * precursor.solids for precursor, f in known)
        self._offset = sum(f * precursor.flame_offset for precursor, f in known)

    def _port_entering_at(self, pumped: float) -> int | None:
        """The port whose solution entered the line when `pumped` mL had been pushed (asked
        for ever larger volumes: the switches before that one are forgotten)."""
        inlet, first = self._inlet, 0
        while first + 1 < len(inlet) and inlet[first + 1][0] <= pumped:
            first += 1
        del inlet[:first]
        return inlet[0][1]

    # --- what the gauge and the record read -------------------------------------------
    @property
    def filter_pressure_drop(self) -> float:
        """kPa across the filter: the clean filter at the present gas flow, plus the cake."""
        gas = sum(self._gas(role, self.time) for role in GAS_ROLES)
        return self.line.filter_base * gas / 12.0 + self.line.filter_per_gram * self.collected

    def nozzle_fraction(self, port: int) -> float:
        return self.nozzle.get(port, 0.0)
