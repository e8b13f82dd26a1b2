"""The heat/quench pulse as a flyer: the supply's list, the digitizer and the pyrometer together.

kickoff uploads the list, arms both digitizers and fires; complete waits for the list to
end, switches the output off and fetches the traces; collect returns one page per pulse
with the temperature trace (K, NaN out of range), the supply's V/I and the figures of
`quenchlab.analysis`. Staging, unstaging and stop always leave the output off; the
supply's watchdog is the last line of defence if this process dies.
"""
import math
import threading
import time as wallclock

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, Kind, Signal
from ophyd.status import Status

from quenchlab.analysis import FIGURES, AnalysisSettings, analyse_pulse
from quenchlab.errors import InstrumentError

from .driver_device import run_in_thread
from .impac_driver import Impac
from .infiniivision_driver import InfiniiVision
from .n6900_driver import ListProgram, N6900

MAX_SUPPLY_POINTS = 512 * 1024
WATCHDOG_ONLY = 2048


class PulseFlyer(Device):
    """One programmed pulse: fire, wait, collect. The loaded list is its configuration."""

    levels = Cpt(Signal, value=[0.0], kind=Kind.config)
    dwells = Cpt(Signal, value=[0.0], kind=Kind.config)
    control = Cpt(Signal, value="current", kind=Kind.config)
    limit = Cpt(Signal, value=0.0, kind=Kind.config)

    def __init__(self, supply: N6900, pyrometer: Impac, digitizer: InfiniiVision, *, channel: int,
                 shunt: float, record: float, pre_trigger: float, points: int, supply_interval: float,
                 analysis: AnalysisSettings, name: str = "pulse"):
        super().__init__(name=name)
        self.supply, self.pyrometer, self.digitizer = supply, pyrometer, digitizer
        self.channel, self.shunt = channel, shunt
        self.record, self.pre_trigger, self.points = record, pre_trigger, points
        self.supply_interval = supply_interval
        self.analysis = analysis
        self.program: ListProgram | None = None
        self._pages: list[dict] = []
        self._firing = threading.Lock()
        self._cancel = threading.Event()
        self._range: tuple[float, float, float] = (math.nan, math.nan, 4.0)

    def load(self, program: ListProgram) -> None:
        """The (already limit-checked) list the next kickoff fires."""
        if program.duration + self.pre_trigger >= self.record:
            raise ValueError(f"the pulse ({program.duration:g} s) does not fit the digitizer record "
                             f"({self.record:g} s with {self.pre_trigger:g} s before the trigger)")
        self.program = program
        self.levels.put(list(program.levels))
        self.dwells.put(list(program.dwells))
        self.control.put(program.control)
        self.limit.put(program.limit)

    # --- flyer interface -------------------------------------------------------------------
    def kickoff(self) -> Status:
        if self.program is None:
            raise RuntimeError("load() a pulse program before kickoff")
        self._cancel.clear()
        return run_in_thread(self, self._fire)

    def _fire(self) -> None:
        """Under the firing lock: a stop() waits for it and cancels the shot before output on."""
        with self._firing:
            self._prepare_shot()
            if self._cancel.is_set():
                raise InstrumentError(self.supply.name, self.supply.address, "OUTP ON", "pulse cancelled")
            self.supply.output_on()
            self.supply.trigger()

    def _prepare_shot(self) -> None:
        supply = self.supply
        supply.output_off()
        trips = supply.questionable()
        if trips == WATCHDOG_ONLY:  # the watchdog fired while the output was off: harmless
            supply.clear_protection()
        elif trips:
            raise InstrumentError(supply.name, supply.address, "STAT:QUES:COND?",
                                  f"protection holds the output off: {', '.join(supply.trips())}; "
                                  "find the cause, then clear it (OUTP:PROT:CLE)")
        begin, end = self.pyrometer.measuring_range()
        self._range = (begin, end, 4.0 if self.pyrometer.analog_live_zero() else 0.0)
        supply.upload_list(self.program)
        points = min(MAX_SUPPLY_POINTS, math.ceil(self.record / self.supply_interval))
        supply.configure_digitizer(points, self.supply_interval, round(self.pre_trigger / self.supply_interval))
        self.digitizer.configure_capture(self.record, self.pre_trigger, self.points)
        self.digitizer.arm()
        supply.arm_digitizer()
        supply.arm_list()

    def complete(self) -> Status:
        return run_in_thread(self, self._finish)

    def _finish(self) -> None:
        try:
            deadline = wallclock.monotonic() + 10 * self.record + 5
            while self.supply.list_running():
                if wallclock.monotonic() > deadline:
                    raise InstrumentError(self.supply.name, self.supply.address, "STAT:OPER:COND?",
                                          "the pulse list did not finish in time")
                wallclock.sleep(0.005)
        finally:
            self.supply.output_off()
        while self.digitizer.acquiring():
            if wallclock.monotonic() > deadline:
                raise InstrumentError(self.digitizer.name, self.digitizer.address, ":OPER:COND?",
                                      "the digitizer did not trigger (check the trigger wiring)")
            wallclock.sleep(0.005)
        trace = self.digitizer.fetch(self.channel)
        volts, amps = self.supply.fetch()
        supply_time = (np.arange(volts.size) - round(self.pre_trigger / self.supply_interval)) * self.supply_interval
        temperature = self.to_kelvin(trace.volts)
        figures = analyse_pulse(trace.time, temperature, supply_time, amps, volts, self.analysis)
        now = wallclock.time()
        data = {"time": trace.time, "temperature": temperature, "supply_time": supply_time,
                "current": amps, "voltage": volts, **figures}
        self._pages.append({"data": data, "timestamps": {k: now for k in data}, "time": now})

    def to_kelvin(self, volts: np.ndarray) -> np.ndarray:
        """The pyrometer's analog output back to kelvin through its measuring range; NaN
        where it sits at either end of the range (under or over range)."""
        begin, end, zero = self._range
        fraction = (volts / self.shunt * 1000 - zero) / (20.0 - zero)
        kelvin = begin + fraction * (end - begin)
        return np.where((fraction <= 0.002) | (fraction >= 0.998), np.nan, kelvin)

    @property
    def hints(self):
        return {"fields": ["temperature"]}

    def describe_collect(self):
        n, m = self.points, min(MAX_SUPPLY_POINTS, math.ceil(self.record / self.supply_interval))
        source = f"quenchlab:{self.name}"
        keys = {
            "time": {"source": source, "dtype": "array", "shape": [n], "units": "s", "dims": ["time"]},
            "temperature": {"source": source, "dtype": "array", "shape": [n], "units": "K", "dims": ["time"]},
            "supply_time": {"source": source, "dtype": "array", "shape": [m], "units": "s", "dims": ["supply_time"]},
            "current": {"source": source, "dtype": "array", "shape": [m], "units": "A", "dims": ["supply_time"]},
            "voltage": {"source": source, "dtype": "array", "shape": [m], "units": "V", "dims": ["supply_time"]},
        }
        keys.update({k: {"source": source, "dtype": "number", "shape": [], "units": u} for k, u in FIGURES.items()})
        return {self.name: keys}

    def collect_pages(self):
        pages, self._pages = self._pages, []
        for page in pages:
            yield {"data": {k: [v] for k, v in page["data"].items()},
                   "timestamps": {k: [v] for k, v in page["timestamps"].items()},
                   "time": [page["time"]]}

    def stop(self, *, success: bool = False) -> None:
        """Output off, after cancelling a shot that is being armed (never racing it)."""
        self._cancel.set()
        with self._firing:
            self.supply.output_off()

    def stage(self):
        self.supply.output_off()
        return super().stage()

    def unstage(self):
        self.stop()
        return super().unstage()
