"""The FJH world against the numbers of domain.md, for both sample presets."""
import math

import numpy as np
import pytest

from quenchlab.analysis.pulse import analyse_pulse
from quenchlab.clock import ReactorClock
from quenchlab.sim.fjh_world import FJHWorld
from quenchlab.sim.samples import PRESETS, graphite_heat_capacity


class ConstantCurrent:
    """A source driving `amps` (with a voltage compliance) from 0 until `stop`."""

    def __init__(self, amps, stop, volts=100.0):
        self.amps, self.stop, self.volts = amps, stop, volts

    def drive(self, t):
        return t < self.stop, self.volts, self.amps

    def next_change(self, t):
        return self.stop if t < self.stop else math.inf

    def observe(self, *args):
        pass


class ManualClock(ReactorClock):
    def __init__(self):
        super().__init__()
        self.t = 0.0

    def now(self):
        return self.t


def run(preset, amps, on_time, total, step=1e-4):
    clock = ManualClock()
    world = FJHWorld(PRESETS[preset], clock)
    world.source = ConstantCurrent(amps, on_time)
    times = np.arange(0, total, step)
    temps = []
    for t in times:
        clock.t = t
        world.advance()
        temps.append(world.temperature)
    return times, np.array(temps)


def test_graphite_heat_capacity_follows_nist_fit():
    assert graphite_heat_capacity(300) == pytest.approx(710, rel=0.02)
    assert graphite_heat_capacity(1000) == pytest.approx(1800, rel=0.05)
    assert graphite_heat_capacity(2000) == pytest.approx(2100, rel=0.05)


@pytest.mark.parametrize("preset, expected", [("carbon_paper", 9e3), ("thin_film", 7e4)])
def test_radiative_cooling_rate_at_2000K(preset, expected):
    rate = -PRESETS[preset].dtemperature_dt(2000.0, 0.0)
    assert rate == pytest.approx(expected, rel=0.2)


def test_carbon_paper_strip_resistance_and_energy_to_2000K():
    sample = PRESETS["carbon_paper"]
    assert sample.resistance(sample.ambient) == pytest.approx(1.2)
    temps = np.arange(sample.ambient, 2000.0, 1.0)
    energy = sum(sample.areal_mass * sample.area * graphite_heat_capacity(t) for t in temps)
    assert energy == pytest.approx(25, rel=0.15)


def test_resistance_falls_as_the_sample_heats():
    sample = PRESETS["thin_film"]
    assert sample.resistance(1000) < sample.resistance(sample.ambient)


def test_thin_film_pulse_heats_and_cools_at_published_rates():
    """~300 W/cm^2 into a 1 mg/cm^2 film: >= 1e5 K/s up, ~4e4 K/s over the first 500 K down."""
    times, temps = run("thin_film", amps=24.0, on_time=6.5e-3, total=0.06, step=2e-5)
    figures = analyse_pulse(times, np.where(temps < 1100, np.nan, temps))
    assert figures["heating_rate"] >= 1e5
    assert 2e4 <= figures["cooling_rate_500K"] <= 8e4
    assert figures["cooling_rate_peak"] >= 1e4


def test_carbon_paper_heats_more_slowly_than_the_film():
    paper = run("carbon_paper", amps=20.0, on_time=0.05, total=0.05, step=1e-4)[1]
    film = run("thin_film", amps=20.0, on_time=0.05, total=0.05, step=1e-4)[1]
    assert paper[100] < film[100]


def test_constant_current_reaches_a_plateau_and_returns_to_ambient():
    times, temps = run("thin_film", amps=14.5, on_time=0.3, total=2.0, step=1e-3)
    plateau = temps[(times > 0.2) & (times < 0.3)]
    assert np.ptp(plateau) < 5.0 and 1900 < plateau.mean() < 2100
    assert temps[-1] < 600


def test_platinum_holds_its_melting_point_while_its_latent_heat_goes_in_and_out():
    """15 A melts the strip through on the rise; cooling, it freezes for m L / losses at 2041.3 K."""
    sample = PRESETS["platinum_strip"]
    times, temps = run("platinum_strip", amps=15.0, on_time=0.040, total=0.15, step=1e-4)
    at_melting = times[np.abs(temps - sample.melting_point) < 1e-6]
    melting, freezing = at_melting[at_melting < 0.040], at_melting[at_melting > 0.040]
    assert 3e-3 < np.ptp(melting) < 15e-3
    losses = -sample.heat_flux(sample.melting_point, 0.0) * sample.area  # W, nothing heating it
    expected = sample.areal_mass * sample.area * sample.latent_heat / losses
    assert np.ptp(freezing) == pytest.approx(expected, rel=0.05)
    assert temps.max() > sample.melting_point + 100 and temps[-1] < sample.melting_point - 300
