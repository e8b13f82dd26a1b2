"""A temperature profile of seconds to minutes, held by the host on the pyrometer.

kickoff checks the supply's protection (as that supply's own pulse flyer does before a pulse),
readies its output for settings that act at once (`ready`), switches it on at no current with
the compliance set, and starts a thread that, every `period` s, reads the pyrometer, sets the
current quenchlab.control.hold asks for and reads the output back; the output goes off at the
profile's end and on every other exit (an error, a stop, a cancel). The pyrometer's readings
and the supply's are the pulse's traces, one of each per tick.

A closed loop has no list whose bound could be checked beforehand, so each tick, before a
current is sent: the energy delivered so far plus the most the next tick can add (compliance x
current x period) must stay below `max_energy` (limits.max_energy_per_pulse). The pulse also
stops, output off, if the pyrometer reads over range, or if the output delivers next to no
current while a real one is asked for (a protection has switched it off). Works with any supply
driver that has set_voltage, set_current, output_on, output_off and measure() -> (V, A).
"""
import math
import time as wallclock
from collections.abc import Callable

import numpy as np

from quenchlab.control.hold import HoldController
from quenchlab.control.profile import Profile
from quenchlab.control.thermal_model import SampleModel
from quenchlab.devices.flyers.pulse_capture import PulseCapture
from quenchlab.errors import InstrumentError

ASKED = 1.0  # A: a current this large must show at the output ...
DELIVERED = 0.05  # ... at least this fraction of it ...
DEAD_TICKS = 3  # ... within this many ticks, or the output is taken as switched off


class ClosedLoopPulse(PulseCapture):
    """One profile held on the pyrometer, the current at most `max_current` and, with
    `max_power`, at most max_power / compliance (the most power it could then draw)."""

    def __init__(self, supply, pyrometer, digitizer, *, max_current: float, max_energy: float,
                 max_power: float | None, protection: Callable[[], None], ready: Callable[[], None] = lambda: None,
                 **capture):
        super().__init__(supply, pyrometer, digitizer, **capture)
        self.max_current, self.max_energy, self.max_power = max_current, max_energy, max_power
        self.period = 0.0
        self.check_protection, self.ready = protection, ready
        self.compliance = 0.0
        self.controller: HoldController | None = None
        self._rows: list[tuple[float, float, float, float]] = []  # (s from output on, K, V, A)

    def load(self, profile: Profile, model: SampleModel, compliance: float, period: float) -> None:
        """The profile the next kickoff holds, through `model`, at `compliance` volts, `period` s a tick."""
        self.program = self.target = profile
        self.period = period
        ceiling = self.max_current if self.max_power is None else min(self.max_current, self.max_power / compliance)
        self.controller = HoldController(profile, model, ceiling)
        self.compliance = compliance
        self.points = math.floor(profile.duration / self.period + 1e-9) + 1  # ticks: one row each

    @property
    def supply_points(self) -> int:
        return self.points

    def _fire(self) -> None:
        with self._firing:
            self.supply.output_off()
            self.check_protection()
            self._read_range()
            self.controller.floor = self._range[0]  # under range, the sample is at most there
            self.ready()
            self.supply.set_voltage(self.compliance)
            self.supply.set_current(0.0)
            self._wait_to_fire("output on")
            self.check_protection()  # again after the wait (an N6900's watchdog may have tripped, output off)
            self._rows, self._error = [], None
            self.supply.output_on()
            try:
                self._start_worker(self._hold)
            except BaseException:
                self.supply.output_off()
                raise

    def _hold(self) -> None:
        """Every tick on schedule from output on; output off whatever happens."""
        start, energy, power, dead = wallclock.monotonic(), 0.0, 0.0, 0
        try:
            for tick in range(self.points):
                if self._cancel.wait(max(0.0, start + tick * self.period - wallclock.monotonic())):
                    return
                now = wallclock.monotonic() - start
                energy += power * (now - self._rows[-1][0] if self._rows else 0.0)
                reading = self.pyrometer.temperature()
                if reading.flag == "over range":
                    raise InstrumentError(self.pyrometer.name, self.pyrometer.address, "ms",
                                          "reads over range: the closed loop cannot see the sample")
                amps = self.controller.current(now, reading.kelvin)
                if energy + self.compliance * amps * self.period > self.max_energy:
                    raise InstrumentError(self.supply.name, self._where, "set current",
                                          f"the pulse has taken {energy:.3g} J; the next tick could pass the "
                                          f"configured max_energy_per_pulse of {self.max_energy:g} J: stopped")
                self.supply.set_current(amps)
                volts, measured = self.supply.measure()
                power = volts * measured
                self._rows.append((now, reading.kelvin, volts, measured))
                dead = dead + 1 if amps > ASKED and measured < DELIVERED * amps else 0
                if dead >= DEAD_TICKS:
                    raise InstrumentError(self.supply.name, self._where, "measure",
                                          f"{measured:.3g} A at the output while {amps:.3g} A is asked for: "
                                          "a protection has switched it off, or the sample is open")
        except Exception as error:  # reported by complete()
            self._error = error
        finally:
            try:
                self.supply.output_off()
                self.ended_at = wallclock.time()
            except Exception as error:
                self._error = self._error or error

    def _finish(self) -> None:
        self._joined(self.target.duration, "output off")
        time, kelvin, volts, amps = (np.array(column) for column in zip(*self._rows))
        self._page(time, kelvin, time, amps, volts)
