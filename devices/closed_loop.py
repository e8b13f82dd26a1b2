"""A temperature profile of seconds to minutes, held by the host on the pyrometer.

kickoff switches the output on at no current (the compliance set) and starts a thread that,
every `period` s, reads the pyrometer, sets the current quenchlab.hold_control asks for and
reads the output back; the output goes off at the profile's end and on every other exit (an
error, a stop, a cancel). The pyrometer's readings and the supply's are the pulse's traces,
one of each per tick. The pulse fails, output off, if the pyrometer reads over range or the
energy delivered reaches `max_energy` (limits.max_energy_per_pulse): a closed loop has no list
whose bound could be checked beforehand. Works with any supply driver that has set_voltage,
set_current, output_on, output_off and measure() -> (V, A).
"""
import math
import threading
import time as wallclock

import numpy as np

from quenchlab.errors import InstrumentError
from quenchlab.hold_control import HoldController
from quenchlab.kelvin_recipe import Profile
from quenchlab.thermal_model import SampleModel

from .pulse_capture import PulseCapture


class ClosedLoopPulse(PulseCapture):
    """One profile held on the pyrometer, `period` s a tick."""

    def __init__(self, supply, pyrometer, digitizer, *, period: float, max_current: float, max_energy: float,
                 **capture):
        super().__init__(supply, pyrometer, digitizer, **capture)
        self.period, self.max_current, self.max_energy = period, max_current, max_energy
        self.compliance = 0.0
        self.controller: HoldController | None = None
        self._thread: threading.Thread | None = None
        self._rows: list[tuple[float, float, float, float]] = []  # (s from output on, K, V, A)

    def load(self, profile: Profile, model: SampleModel, compliance: float) -> None:
        """The profile the next kickoff holds, through `model`, at `compliance` volts."""
        self.program = self.target = profile
        self.controller = HoldController(profile, model, self.max_current)
        self.compliance = compliance
        self.points = math.floor(profile.duration / self.period) + 1  # ticks: one row each

    @property
    def supply_points(self) -> int:
        return self.points

    def _fire(self) -> None:
        with self._firing:
            self.supply.output_off()
            self.supply.set_voltage(self.compliance)
            self.supply.set_current(0.0)
            if self._cancel.is_set():
                raise self._cancelled("OUTP ON")
            self._rows, self._error = [], None
            self.supply.output_on()
            self._thread = threading.Thread(target=self._hold, daemon=True, name=f"{self.name}-hold")
            self._thread.start()

    def _hold(self) -> None:
        """Every tick on schedule from output on; output off whatever happens."""
        start, energy = wallclock.monotonic(), 0.0
        try:
            for tick in range(self.points):
                if self._cancel.wait(max(0.0, start + tick * self.period - wallclock.monotonic())):
                    return
                now = wallclock.monotonic() - start
                reading = self.pyrometer.temperature()
                if reading.flag == "over range":
                    raise InstrumentError(self.pyrometer.name, self.pyrometer.address, "ms",
                                          "reads over range: the closed loop cannot see the sample")
                self.supply.set_current(self.controller.current(now, reading.kelvin))
                volts, amps = self.supply.measure()
                energy += volts * amps * (now - self._rows[-1][0] if self._rows else 0.0)
                self._rows.append((now, reading.kelvin, volts, amps))
                if energy >= self.max_energy:
                    raise InstrumentError(self.supply.name, self._where, "MEAS",
                                          f"the pulse has delivered {energy:.3g} J, the configured "
                                          f"max_energy_per_pulse of {self.max_energy:g} J: stopped")
        except Exception as error:  # reported by complete()
            self._error = error
        finally:
            try:
                self.supply.output_off()
            except Exception as error:
                self._error = self._error or error

    def _finish(self) -> None:
        self._joined(self._thread, self.target.duration, "OUTP OFF")
        time, kelvin, volts, amps = (np.array(column) for column in zip(*self._rows))
        self._page(time, kelvin, time, amps, volts)
