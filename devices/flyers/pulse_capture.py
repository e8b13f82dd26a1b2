"""What every FJH pulse flyer shares, whichever supply fires the pulse.

kickoff fires the loaded program (`_fire`, in a thread); complete records it (`_finish`, which
calls `_record` once). The pyrometer's analog output is captured by the digitizer and turned
back into kelvin; each pulse becomes one event page of the flyer's stream holding its traces
(`time`, `temperature`, `supply_time`, `current`, `voltage`, plus a flyer's own extras) and the
figures of `quenchlab.analysis.pulse`. Staging, unstaging and stop make the supply safe; a stop()
that arrives while a shot is being armed cancels it (a subclass checks `_cancel` under
`_firing` before it switches anything on).

`ProgrammedPulse` is a pulse of level steps (a `ListProgram`), optionally meant to realise a
temperature profile: each of its pulses then also records the profile, the steps it was
given and how well it tracked (quenchlab.recipes.kelvin).
"""
import math
import threading
import time as wallclock

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, Kind, Signal
from ophyd.status import Status

from quenchlab.analysis.pulse import FIGURES, AnalysisSettings, analyse_pulse
from quenchlab.control.profile import TRACKING, Profile
from quenchlab.control.programs import LEVEL_UNITS, ListProgram
from quenchlab.devices.driver_device import run_in_thread
from quenchlab.devices.impac_driver import Impac
from quenchlab.devices.infiniivision_driver import InfiniiVision, Trace
from quenchlab.errors import InstrumentError

TRACES = {"time": ("s", "time"), "temperature": ("K", "time"), "supply_time": ("s", "supply_time"),
          "current": ("A", "supply_time"), "voltage": ("V", "supply_time")}  # field: units, axis


class PulseCapture(Device):
    """A pulse fired on kickoff (`_fire`) and recorded on complete (`_finish`, which calls
    `_record` or `_page` once); `supply_points` sizes the supply traces, `extra_keys` describes
    the fields a subclass adds, `make_safe` is what stop, stage and unstage do. `target`: the
    temperature profile the pulse is meant to realise, if any."""

    target: Profile | None = None
    not_before = -math.inf  # wall time before which the next pulse must not begin (see follow)
    fired_at = ended_at = math.nan  # wall times the last pulse began and ended
    _after: float | None = None  # the end of the pulse the next one follows

    def __init__(self, supply, pyrometer: Impac, digitizer: InfiniiVision, *, channel: int, shunt: float,
                 record: float, pre_trigger: float, points: int, analysis: AnalysisSettings, name: str = "pulse"):
        super().__init__(name=name)
        self.supply, self.pyrometer, self.digitizer = supply, pyrometer, digitizer
        self.channel, self.shunt = channel, shunt
        self.record, self.pre_trigger, self.points = record, pre_trigger, points
        self.analysis = analysis
        self.program = None
        self.last: dict | None = None  # the last pulse's page data
        self._error: Exception | None = None  # met by the host thread driving the output, if any
        self._worker: threading.Thread | None = None  # that thread
        self._pages: list[dict] = []
        self._firing = threading.Lock()
        self._cancel = threading.Event()
        self._range: tuple[float, float, float] = (math.nan, math.nan, 4.0)

    # --- flyer interface -------------------------------------------------------------------
    def kickoff(self) -> Status:
        if self.program is None:
            raise RuntimeError("load() a pulse program before kickoff")
        self._cancel.clear()
        return run_in_thread(self, self._fire)

    def complete(self) -> Status:
        return run_in_thread(self, self._finish)

    def collect_pages(self):
        pages, self._pages = self._pages, []
        for page in pages:
            yield {"data": {k: [v] for k, v in page["data"].items()},
                   "timestamps": {k: [v] for k, v in page["timestamps"].items()},
                   "time": [page["time"]]}

    @property
    def hints(self):
        return {"fields": ["temperature"]}

    def _fits(self, duration: float) -> None:
        if duration + self.pre_trigger >= self.record:
            raise ValueError(f"the pulse ({duration:g} s) does not fit the digitizer record "
                             f"({self.record:g} s with {self.pre_trigger:g} s before the trigger)")

    def follow(self, ended_at: float | None, off_time: float = 0.0) -> None:
        """The next pulse begins `off_time` s after `ended_at` (the wall time the pulse before
        ended, this flyer's or another's): the host's work in between (fetching, analysis,
        learning, the next upload) happens inside the off time, not on top of it. Its page
        records the off time it had. None: the next pulse follows none (it fires when ready)."""
        self.not_before = -math.inf if ended_at is None else ended_at + off_time
        self._after = ended_at

    def _wait_to_fire(self, command: str) -> None:
        """Wait for `not_before` (a stop() ends the wait, and the pulse); the pulse begins now."""
        if self._cancel.wait(max(0.0, self.not_before - wallclock.time())):
            raise self._cancelled(command)
        self.fired_at = wallclock.time()

    def _off_time(self) -> float:
        """The off time the last pulse had since the pulse it followed (NaN if none)."""
        return math.nan if self._after is None else self.fired_at - self._after

    def _cancelled(self, command: str) -> InstrumentError:
        return InstrumentError(self.supply.name, self._where, command, "pulse cancelled")

    @property
    def _where(self) -> str:
        """The supply's address as its messages give it (a unit on a bus names its unit too)."""
        return getattr(self.supply, "where", self.supply.address)

    def check_protection(self) -> None:
        """Before a pulse: raise if the supply's own protection holds it off or has changed
        (each supply's flyer knows how to ask)."""

    def cancel(self) -> None:
        """Cancel the pulse being armed or driven by the host, without waiting (the interlock's
        safe state: the host must stop commanding the output it has just switched off)."""
        self._cancel.set()

    def _start_worker(self, target) -> None:
        """Start the host thread that drives the output; refused while an earlier one still runs
        (two would command one supply)."""
        if self._worker is not None and self._worker.is_alive():
            raise InstrumentError(self.supply.name, self._where, "output on",
                                  "the host thread of the previous pulse is still running")
        self._worker = threading.Thread(target=target, daemon=True, name=f"{self.name}-host")
        self._worker.start()

    def _joined(self, duration: float, command: str) -> None:
        """Wait for the host thread that drives the output through the pulse (it sets `_error`
        if it fails); raise what it met, or the cancel that ended it. A thread still running
        `duration` + 5 s after it started its pulse is cancelled and the output switched off here."""
        thread = self._worker
        thread.join(timeout=duration + 5)
        if thread.is_alive():
            self._cancel.set()
            self.supply.output_off()
            raise InstrumentError(self.supply.name, self._where, command, "the host-timed pulse did not end")
        if self._error is not None:
            raise self._error
        if self._cancel.is_set():
            raise self._cancelled(command)

    # --- safety --------------------------------------------------------------------------------
    def make_safe(self) -> None:
        """Supply output off (a capacitor bank dumps instead)."""
        self.supply.output_off()

    def stop(self, *, success: bool = False) -> None:
        """Make the supply safe, after cancelling a shot that is being armed (never racing it)."""
        self._cancel.set()
        with self._firing:
            self.make_safe()

    def stage(self):
        self.make_safe()
        return super().stage()

    def unstage(self):
        self.stop()
        return super().unstage()

    # --- the traces --------------------------------------------------------------------------
    def _read_range(self) -> None:
        """The pyrometer's measuring range and analog live zero, as `to_kelvin` needs them."""
        begin, end = self.pyrometer.measuring_range()
        self._range = (begin, end, 4.0 if self.pyrometer.analog_live_zero() else 0.0)

    def _await_capture(self, deadline: float) -> None:
        """Wait for the digitizer to finish its record (`deadline` on the monotonic clock)."""
        while self.digitizer.acquiring():
            if wallclock.monotonic() > deadline:
                raise InstrumentError(self.digitizer.name, self.digitizer.address, ":OPER:COND?",
                                      "the digitizer did not trigger (check the trigger wiring)")
            wallclock.sleep(0.005)

    def to_kelvin(self, volts: np.ndarray) -> np.ndarray:
        """The pyrometer's analog output back to kelvin through its measuring range; NaN
        where it sits at either end of the range (under or over range)."""
        begin, end, zero = self._range
        fraction = (volts / self.shunt * 1000 - zero) / (20.0 - zero)
        kelvin = begin + fraction * (end - begin)
        return np.where((fraction <= 0.002) | (fraction >= 0.998), np.nan, kelvin)

    def _record(self, trace: Trace, supply_time: np.ndarray, current: np.ndarray, voltage: np.ndarray,
                **extra) -> None:
        """One pulse's page from the digitizer's pyrometer trace (see `_page`)."""
        self._page(trace.time, self.to_kelvin(trace.volts), supply_time, current, voltage, **extra)

    def _page(self, time: np.ndarray, temperature: np.ndarray, supply_time: np.ndarray, current: np.ndarray,
              voltage: np.ndarray, **extra) -> None:
        """One pulse's page: its traces, its figures, what it realised, then `extra` (which may
        replace a figure)."""
        traces = dict(zip(TRACES, (time, temperature, supply_time, current, voltage)))
        data = {**traces, **analyse_pulse(*traces.values(), self.analysis), **self.realised(time, temperature),
                "off_time": self._off_time(), **extra}
        now = wallclock.time()
        self.last = data
        self._pages.append({"data": data, "timestamps": dict.fromkeys(data, now), "time": now})

    def realised(self, time: np.ndarray, temperature: np.ndarray) -> dict:
        """With a `target` profile: the programmed temperature on the pulse's time base and how
        well it was tracked (quenchlab.recipes.kelvin)."""
        if self.target is None:
            return {}
        return {"programmed_temperature": self.target.at(time), **self.target.tracking(time, temperature)}

    # --- documents ---------------------------------------------------------------------------
    @property
    def supply_points(self) -> int | None:
        """Samples of the supply traces per pulse (None: it varies from pulse to pulse)."""
        raise NotImplementedError

    def extra_keys(self) -> dict[str, dict]:
        """Data keys (without `source`) of the fields added to each pulse: a target's, and a
        subclass's own."""
        if self.target is None:
            return {}
        return {"programmed_temperature": {"dtype": "array", "shape": [self.points], "units": "K", "dims": ["time"]},
                **{k: {"dtype": "number", "shape": [], "units": u} for k, u in TRACKING.items()}}

    def describe_collect(self):
        source = f"quenchlab:{self.name}"
        sizes = {"time": self.points, "supply_time": self.supply_points}
        keys = {field: {"source": source, "dtype": "array", "shape": [sizes[axis]], "units": units, "dims": [axis]}
                for field, (units, axis) in TRACES.items()}
        keys.update({k: {"source": source, "dtype": "number", "shape": [], "units": u}
                     for k, u in {**FIGURES, "off_time": "s"}.items()})
        keys.update({k: {"source": source, **key} for k, key in self.extra_keys().items()})
        return {self.name: keys}


class ProgrammedPulse(PulseCapture):
    """A pulse of level steps; with a `target` profile loaded, each pulse also records the
    programmed temperature (on the pyrometer's time base), its own steps (learning changes
    them from pulse to pulse) and how well it tracked."""

    levels = Cpt(Signal, value=[0.0], kind=Kind.config)
    dwells = Cpt(Signal, value=[0.0], kind=Kind.config)
    control = Cpt(Signal, value="current", kind=Kind.config)
    limit = Cpt(Signal, value=0.0, kind=Kind.config)

    def load(self, program: ListProgram, target: Profile | None = None) -> None:
        """The (already limit-checked) program the next kickoff fires, and the temperature
        profile it is meant to realise, if any."""
        self._fits(program.duration)
        self.program, self.target = program, target
        for signal, value in ((self.levels, list(program.levels)), (self.dwells, list(program.dwells)),
                              (self.control, program.control), (self.limit, program.limit)):
            signal.put(value)

    def realised(self, time: np.ndarray, temperature: np.ndarray) -> dict:
        if self.target is None:
            return {}
        return {**super().realised(time, temperature), "list_levels": np.array(self.program.levels),
                "list_dwells": np.array(self.program.dwells)}

    def extra_keys(self) -> dict[str, dict]:
        if self.target is None:
            return {}
        steps = {"dtype": "array", "shape": [len(self.program.levels)], "dims": ["list_step"]}
        return {**super().extra_keys(), "list_levels": {**steps, "units": LEVEL_UNITS[self.program.control]},
                "list_dwells": {**steps, "units": "s"}}
