"""The aerosol world: dead volume delay, nozzle mixing, reservoirs, filter cake, flame."""
import math

import pytest

from quenchlab.sim.aerosol_world import AerosolWorld, LineModel, Precursor


class Clock:
    speed = 1.0

    def __init__(self):
        self.t = 0.0

    def now(self):
        return self.t


class Valve:
    def __init__(self, port):
        self.port = port

    def port_at(self, t):
        return self.port


class Pump:
    def __init__(self, flow):
        self.flow = flow

    def flow_at(self, t):
        return self.flow


class Fuel:
    def flow_at(self, t):
        return 1.5


def world(volume=500.0):
    clock = Clock()
    w = AerosolWorld({1: Precursor("a", flame_offset=30.0), 2: Precursor("b", solids=0.05, flame_offset=-30.0)},
                     clock, LineModel(dead_volume=0.2, tau_mix=4.0, reservoirs={1: volume, 2: volume}), seed=1)
    w.valve, w.pump, w.gases["pilot_fuel"] = Valve(1), Pump(5.0), Fuel()
    return w, clock


def run_to(w, clock, t):
    clock.t = t
    w.advance()


def test_switch_reaches_the_nozzle_after_the_dead_volume_then_mixes():
    w, clock = world()
    run_to(w, clock, 120)
    assert w.nozzle_fraction(1) == pytest.approx(1.0, abs=1e-3)
    w.valve.port = 2
    delay = 0.2 / 5.0 * 60  # 2.4 s at 5 mL/min
    run_to(w, clock, 120 + delay - 0.3)
    assert w.nozzle_fraction(2) < 0.01
    run_to(w, clock, 120 + delay + 4.0)  # one tau_mix later
    assert w.nozzle_fraction(2) == pytest.approx(1 - math.exp(-1), abs=0.08)
    run_to(w, clock, 120 + delay + 40)
    assert w.nozzle_fraction(2) > 0.99


def test_reservoirs_empty_and_a_dry_one_gives_air_that_burns_and_deposits_nothing():
    w, clock = world(volume=1.0)
    run_to(w, clock, 9)  # 0.75 mL
    assert w.reservoirs[1] == pytest.approx(0.25, abs=0.03)
    assert w.flame > w.line.flame_base + 100  # the solution burns
    run_to(w, clock, 60)
    assert w.reservoirs[1] == 0.0
    collected = w.collected
    run_to(w, clock, 120)
    assert w.nozzle.get("air", 0.0) > 0.99 and w.collected == pytest.approx(collected, rel=1e-3)
    assert w.flame == pytest.approx(w.line.flame_base, abs=5.0)  # the pilot flame alone


def test_filter_pressure_climbs_and_flame_follows_the_precursor():
    w, clock = world()
    run_to(w, clock, 60)
    flame_a, cake = w.flame, w.filter_pressure_drop
    w.valve.port = 2
    run_to(w, clock, 200)
    assert w.filter_pressure_drop > cake
    assert flame_a - w.flame == pytest.approx(60.0, abs=10.0)  # offsets +30 K and -30 K


def test_many_switches_do_not_break_the_line_history():
    w, clock = world()
    w.pump.flow = 0.0
    for i in range(80):  # a valve stepping through ports with nothing flowing
        w.valve.port = 1 + i % 2
        run_to(w, clock, i * 0.5)
    w.pump.flow = 5.0
    run_to(w, clock, 200)
    assert w.pumped > 10
