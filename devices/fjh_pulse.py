"""The heat/quench pulse on a Keysight N6900: the supply's list, the digitizer and the pyrometer together.

kickoff uploads the list, arms both digitizers and fires; complete waits for the list to
end, switches the output off and fetches the traces (the pyrometer's from the digitizer, V/I
from the supply's own digitizer); collect returns one page per pulse (devices/pulse_capture.py).
Staging, unstaging and stop always leave the output off; the supply's watchdog is the last
line of defence if this process dies.
"""
import math
import time as wallclock

import numpy as np

from quenchlab.errors import InstrumentError

from .impac_driver import Impac
from .infiniivision_driver import InfiniiVision
from .n6900_driver import N6900
from .pulse_capture import ProgrammedPulse

MAX_SUPPLY_POINTS = 512 * 1024
WATCHDOG_ONLY = 2048


class PulseFlyer(ProgrammedPulse):
    """One programmed pulse from the supply's list: fire, wait, collect. The loaded list is its
    configuration."""

    def __init__(self, supply: N6900, pyrometer: Impac, digitizer: InfiniiVision, *, supply_interval: float,
                 **capture):
        super().__init__(supply, pyrometer, digitizer, **capture)
        self.supply_interval = supply_interval

    @property
    def supply_points(self) -> int:
        return min(MAX_SUPPLY_POINTS, math.ceil(self.record / self.supply_interval))

    def _fire(self) -> None:
        """Under the firing lock: a stop() waits for it and cancels the shot before output on."""
        with self._firing:
            self._prepare_shot()
            if self._cancel.is_set():
                raise self._cancelled("OUTP ON")
            self.supply.output_on()
            self.supply.trigger()

    def check_protection(self) -> None:
        """No protection holding the output off (STAT:QUES:COND?); a watchdog trip while the
        output was off is harmless and cleared."""
        supply = self.supply
        trips = supply.questionable()
        if trips == WATCHDOG_ONLY:
            supply.clear_protection()
        elif trips:
            raise InstrumentError(supply.name, supply.address, "STAT:QUES:COND?",
                                  f"protection holds the output off: {', '.join(supply.trips())}; "
                                  "find the cause, then clear it (OUTP:PROT:CLE)")

    def _prepare_shot(self) -> None:
        supply = self.supply
        supply.output_off()
        self.check_protection()
        self._read_range()
        supply.upload_list(self.program)
        supply.configure_digitizer(self.supply_points, self.supply_interval,
                                   round(self.pre_trigger / self.supply_interval))
        self.digitizer.configure_capture(self.record, self.pre_trigger, self.points)
        self.digitizer.arm()
        supply.arm_digitizer()
        supply.arm_list()

    def _finish(self) -> None:
        deadline = wallclock.monotonic() + 10 * self.record + 5
        try:
            while self.supply.list_running():
                if wallclock.monotonic() > deadline:
                    raise InstrumentError(self.supply.name, self.supply.address, "STAT:OPER:COND?",
                                          "the pulse list did not finish in time")
                wallclock.sleep(0.005)
        finally:
            self.supply.output_off()
        self._await_capture(deadline)
        trace = self.digitizer.fetch(self.channel)
        volts, amps = self.supply.fetch()
        supply_time = (np.arange(volts.size) - round(self.pre_trigger / self.supply_interval)) * self.supply_interval
        self._record(trace, supply_time, amps, volts)
