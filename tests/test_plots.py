"""The pictures a scientist reads: the pyrometer's range, the analysis temperatures, the peak and
its cooling marked; trains told apart; no empty panels, no offset axes, no long empty time axis;
a millisecond flash and a second-long anneal compared each on its own time axis."""
from pathlib import Path

import numpy as np
import pytest

from quenchlab.analysis.pulse import AnalysisSettings, analyse_pulse
from quenchlab.cli.plots.common import plt
from quenchlab.cli.plots.compare import comparison_figure
from quenchlab.cli.plots.pulses import pulse_figure
from quenchlab.record.reader import PulseTrace, RunRecord

FLOOR, CEILING = 1100.0, 2773.0
ANALYSED_AT = {"threshold": 1500.0, "fixed_temperature": 1500.0, "reference_temperature": 2000.0}


def flash(peak: float = 2300.0, voltage: bool = True, name: str = "pulse_0001") -> PulseTrace:
    """A 20 ms flash to `peak`, radiating away (tau 30 ms), as the pyrometer reads it."""
    time = np.arange(-0.01, 0.24, 1e-5)
    temperature = np.where(time < 0.02, 300 + (peak - 300) * np.clip(time / 0.02, 0, 1),
                           300 + (peak - 300) * np.exp(-(time - 0.02) / 0.03))
    supply_time = np.arange(-0.01, 0.24, 2e-5)
    current = np.where((supply_time >= 0) & (supply_time < 0.02), 20.0, 0.0)
    volts = current * 1.5 if voltage else np.full_like(current, np.nan)
    return PulseTrace(name, time, np.where(temperature < FLOOR, np.nan, temperature), supply_time, current, volts)


def anneal() -> PulseTrace:
    """A 2 s hold at 1200 K, steady to a hundredth of a kelvin."""
    time = np.arange(0.0, 2.5, 0.05)
    temperature = 1200.0 + 0.01 * np.sin(time * 7)
    return PulseTrace("pulse_0001", time, temperature, time, np.full_like(time, 5.3), np.full_like(time, 8.6))


def record(pulses: list[PulseTrace], name: str = "run") -> RunRecord:
    settings = AnalysisSettings(1500.0, 1500.0)
    rows = [analyse_pulse(p.time, p.temperature, settings=settings) for p in pulses]
    figures = {key: np.array([row[key] for row in rows]) for key in rows[0]}
    return RunRecord(Path(f"{name}.h5"), f"pulse_train {name}", name, "success", figures, pulses,
                     analysed_at=ANALYSED_AT, measuring_range=(FLOOR, CEILING))


def texts(figure) -> str:
    return "\n".join(t.get_text() for axis in figure.axes for t in axis.texts)


@pytest.fixture(autouse=True)
def closed():
    yield
    plt.close("all")


def test_a_pulse_picture_marks_the_range_the_analysis_temperatures_the_peak_and_its_cooling():
    figure = pulse_figure(record([flash()]))
    written = texts(figure)
    assert f"below {FLOOR:.0f} K: no reading" in written and f"above {CEILING:.0f} K: over range" in written
    assert "threshold, cooling rate at 1500 K" in written and "t_eq reference 2000 K" in written
    assert "peak 2299 K" in written and "first 500 K down at" in written and "K/s at 1500 K" in written
    temperature, current, power = figure.axes
    assert temperature.get_ylim()[0] < FLOOR < 2300 < CEILING < temperature.get_ylim()[1]  # both drawn
    figure.canvas.draw()
    assert all(axis.yaxis.get_offset_text().get_text() == "" for axis in figure.axes)
    cooled = 20 + 30 * np.log((2300 - 300) / (FLOOR - 300))  # ms: the trace leaves the range
    assert temperature.get_xlim()[1] < 1.1 * cooled < 240  # no long empty tail
    assert power.get_ylabel() == "power V*I (W)"


def test_a_train_is_told_apart_by_a_colour_scale():
    figure = pulse_figure(record([flash(2000 + 20 * i, name=f"pulse_{i + 1:04d}") for i in range(12)]))
    bar = figure.axes[-1]
    assert bar.get_ylabel() == "pulse" and bar.get_ylim() == (1, 12)
    colours = {tuple(line.get_color()) for line in figure.axes[0].lines[:12]}
    assert len(colours) == 12
    assert "peak 2219 K (pulse_0012)" in texts(figure)


def test_a_supply_that_measures_no_voltage_has_no_empty_power_panel():
    figure = pulse_figure(record([flash(voltage=False)]))
    assert len(figure.axes) == 2
    assert "no power panel: the supply measured no voltage" in texts(figure)


def test_a_steady_hold_reads_as_steady_on_a_time_axis_in_seconds():
    figure = pulse_figure(record([anneal()]))
    temperature = figure.axes[0]
    figure.canvas.draw()
    low, high = temperature.get_ylim()
    assert high - low >= 50 and temperature.yaxis.get_offset_text().get_text() == ""
    assert figure.axes[-1].get_xlabel() == "time from pulse start (s)"


def test_a_flash_and_an_anneal_are_compared_each_on_its_own_time_axis():
    figure = comparison_figure([record([flash()], "flash"), record([anneal()], "anneal")])
    labels = [axis.get_xlabel() for axis in figure.axes if axis.get_xlabel().startswith("time")]
    assert "time from pulse start (ms)" in labels and "time from pulse start (s)" in labels
    alike = comparison_figure([record([flash()], "a"), record([flash(2100)], "b")])
    shared = [axis for axis in alike.axes if axis.get_ylabel() == "temperature (K)"]
    assert len(shared) == 1 and len(shared[0].get_legend().get_texts()) == 2
