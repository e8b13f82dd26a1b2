"""The physics world shared by the aerosol (flame spray pyrolysis) twins.

A selector valve picks a precursor reservoir; the pump brings it to the nozzle along its
liquid path (sim/liquid_path.py: a piston pump's line of dead volume V_dead, or a syringe
with its inlet line and check valves), where it mixes with what was there (first order,
tau_mix): C(t) = C_new + (C_old - C_new) exp(-(t - t_switch - V_dead/Q)/tau_mix) (domain.md).
The flame temperature follows the gas flows, the liquid burnt (air sprays nothing) and the
precursor at the nozzle, with a lag; each reservoir empties. The powder (solids x capture)
lands where the collector holds the plate: on a grid position with the shutter open, on the
shutter otherwise (waste); the world keeps its own tally per position (`deposits`), and the
filter's pressure drop climbs with all the powder on the plate. Without a collector, all
lands on one filter.

Units: liquid mL and mL/min, gas SLPM, pressure kPa, temperature K, time s (reactor time).
The world is integrated lazily on the reactor clock, in whole steps of STEP s: every twin
calls `advance()` before it answers, and reads the world as of the last step (a sample and
hold of at most STEP, short against the line's and the flame's time constants).

Twins plug in by attribute: `valve.port_at(t) -> int | None` (None while between ports),
`pump.flow_at(t) -> mL/min` (> 0 pushing toward the nozzle, < 0 a syringe withdrawing),
`gases[role].flow_at(t) -> SLPM` for the roles "dispersion", "pilot_fuel", "pilot_oxidizer",
"sheath", and `collector.where(t) -> (x mm, y mm, shutter open)` with `locate(x, y)` naming
the plate position there (None off the grid).
"""
import math
import threading
from dataclasses import dataclass, field

import numpy as np

from quenchlab.clock import ReactorClock

from .liquid_path import AIR, ContinuousPath
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
                 line: LineModel | None = None, seed: int | None = None, path=None):
        self.precursors = precursors
        self.clock = clock
        self.line = line or LineModel()
        self.normals = normals(np.random.default_rng(seed))
        self.lock = threading.RLock()
        self.valve = self.pump = self.collector = None
        self.locate = lambda x, y: None  # the plate position at (x, y) mm, if any
        self.gases: dict[str, object] = {}
        self.time = clock.now()
        self.pumped = 0.0  # mL that reached the nozzle so far
        self.reservoirs = {port: self.line.reservoirs.get(port, 500.0) for port in precursors}
        self.path = path or ContinuousPath(self.line.dead_volume, self.reservoirs)
        self.path.reservoirs = self.reservoirs
        self.nozzle: dict = {None: 1.0}  # fraction of each port's solution (and of air)
        self.flame = self.line.flame_base
        self.collected = 0.0  # g on the plate (or the one filter)
        self.deposits: dict[str, dict] = {}  # where -> {"grams", "first", "last", "ports": {port: g}}
        self._solids = self._offset = self._liquid = 0.0  # g/mL, K and liquid share at the nozzle
        self._arriving: dict = {}  # the mixture last mixed in
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
        port = self.valve.port_at(t) if self.valve else None
        volume, arriving = self.path.step(self._flow(t), port, dt)
        if volume > 0:
            self.pumped += volume
            self._mix(arriving, 1 - math.exp(-dt / line.tau_mix))
            self._deposit(t, volume * self._solids * line.capture)
        fuel = self._gas("pilot_fuel", t)
        target = (line.flame_base + line.flame_per_fuel * (fuel - line.nominal_fuel)
                  + line.flame_per_liquid * volume * self._liquid / dt * 60 + self._offset) if fuel > 0 else 300.0
        self.flame += (target - self.flame) * (1 - math.exp(-dt / line.tau_flame))
        self.time = t + dt

    def _deposit(self, t: float, grams: float) -> None:
        """The powder lands on the plate position under the exhaust, or on the closed shutter."""
        if grams <= 0:
            return
        where = "filter"
        if self.collector is not None:
            x, y, shutter_open = self.collector.where(t)
            where = (self.locate(x, y) or "off the grid") if shutter_open else "shutter"
        if where != "shutter":
            self.collected += grams
        tally = self.deposits.get(where)
        if tally is None:
            tally = self.deposits[where] = {"grams": 0.0, "first": t, "last": t, "ports": {}}
        tally["grams"] += grams
        tally["last"] = t
        ports = tally["ports"]
        for what, share in self.nozzle.items():
            if what in self.precursors:
                ports[what] = ports.get(what, 0.0) + grams * share * self.precursors[what].solids / self._solids

    def _mix(self, arriving: dict, mix: float) -> None:
        """Move the nozzle's content a fraction `mix` towards the mixture arriving; a part whose
        share has fallen below 1e-9 is gone (then, most of a slot, the nozzle holds the
        arriving solution alone, and nothing changes)."""
        if arriving is self._arriving and len(self.nozzle) == len(arriving) == 1:
            return
        nozzle = {key: kept for key, share in self.nozzle.items() if (kept := share * (1 - mix)) > 1e-9}
        for key, share in arriving.items():
            nozzle[key] = nozzle.get(key, 0.0) + mix * share
        self.nozzle, self._arriving = nozzle, arriving
        known = [(self.precursors[p], f) for p, f in nozzle.items() if p in self.precursors]
        self._solids = sum(f * precursor.solids for precursor, f in known)
        self._offset = sum(f * precursor.flame_offset for precursor, f in known)
        self._liquid = 1.0 - nozzle.get(AIR, 0.0) - nozzle.get(None, 0.0)

    # --- what the gauge and the record read -------------------------------------------
    @property
    def filter_pressure_drop(self) -> float:
        """kPa across the filter: the clean filter at the present gas flow, plus the cake."""
        gas = sum(self._gas(role, self.time) for role in GAS_ROLES)
        return self.line.filter_base * gas / 12.0 + self.line.filter_per_gram * self.collected

    def nozzle_fraction(self, port: int) -> float:
        return self.nozzle.get(port, 0.0)
