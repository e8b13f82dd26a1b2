"""The heat/quench pulse on a supply with no list, no trigger and no fast V/I capture (a TDK-Lambda
Genesys): the host times every step.

From the "Genesys 3300W Technical Manual" (TDK-Lambda 83503001 Rev G), ch. 7, and protocols.md
section 2: no list mode and no watchdog, so each level is a PV or PC the host sends at its own
instant, and the output is known only by asking, MV? and MC? (7.7.5).

kickoff, with the output off: the fault register (FLT?) must be clear and OVP?/UVL? must read
back as configured; the compliance and the first level are set, the digitizer is armed and,
once its pre-trigger record is filled, forced to trigger (:TRIGger:FORCe: no trigger-out wire
exists) just before OUT 1. A stepping thread then sends each following level at its instant,
counted from OUT 1, and polls MV?/MC? in between, noting when each reading was taken and each
command sent; OUT 0 ends the pulse on every exit path: its last step, an error, a stop or a
cancel (stop also sends OUT 0 itself, at once). complete fetches the pyrometer trace. Times are
seconds from the forced trigger, the digitizer's zero; `step_time` holds when each level's
command (the first: OUT 1) and, last, OUT 0 were sent.

The shortest step a program may hold, `minimum_step`, comes from the link: a step must hold its
own setting and one MV?/MC? reading. At 8N1 a character is 10 bits (7.5); a setting is `PC `
and a number of up to 12 characters (7.7.1) and CR, answered `OK`; a reading is `MV?` and
`MC?`, each answered by five digits and a point (7.7.5). How long the unit takes to answer is
not in the manual: ANSWER_TIME per exchange is an estimate.
"""
import time as wallclock

import numpy as np

from quenchlab.devices.flyers.pulse_capture import ProgrammedPulse
from quenchlab.devices.genesys_driver import Genesys
from quenchlab.errors import InstrumentError

BITS_PER_CHARACTER = 10  # 8N1: a start bit, 8 data bits, a stop bit (7.5)
SETTING_CHARACTERS = len("PC 123456789012\r") + len("OK\r")  # the longest number a setting takes (7.7.1)
READING_CHARACTERS = 2 * (len("MV?\r") + len("12.345\r"))  # MV? and MC?, five-digit replies (7.7.5)
ANSWER_TIME = 5e-3  # s the unit takes to answer one command: an estimate, the manual gives none


def minimum_step(baudrate: int) -> float:
    """Shortest step a host-timed program can honestly hold at `baudrate`: its setting and one
    MV?/MC? reading (three exchanges) fit in it."""
    characters = SETTING_CHARACTERS + READING_CHARACTERS
    return characters * BITS_PER_CHARACTER / baudrate + 3 * ANSWER_TIME


def minimum_step_basis(baudrate: int) -> str:
    """Where `minimum_step` comes from, for messages."""
    return (f"a step must hold its setting and one MV?/MC? reading: {SETTING_CHARACTERS + READING_CHARACTERS} "
            f"characters of {BITS_PER_CHARACTER} bits at {baudrate} baud, plus {ANSWER_TIME * 1e3:g} ms for each of "
            "the three answers")


TICK_CHARACTERS = (len("PC 123456789012\r") + len("OK\r") + len("DVC?\r")
                   + len("12.345,12.345,12.345,12.345,12.345,12.345\r"))  # a setting, then DVC? (7.7.5)


def minimum_tick(baudrate: int) -> float:
    """Shortest tick of a closed loop at `baudrate`: a current setting and one DVC? reading
    (two exchanges) fit in it; the pyrometer, on its own line, adds a few ms (ANSWER_TIME)."""
    return TICK_CHARACTERS * BITS_PER_CHARACTER / baudrate + 3 * ANSWER_TIME


def minimum_tick_basis(baudrate: int) -> str:
    """Where `minimum_tick` comes from, for messages."""
    return (f"a tick sets the current and reads DVC?: {TICK_CHARACTERS} characters of {BITS_PER_CHARACTER} bits at "
            f"{baudrate} baud, plus {ANSWER_TIME * 1e3:g} ms for each of the two answers and the pyrometer's")


class HostTimedPulse(ProgrammedPulse):
    """One programmed pulse stepped by the host. The loaded program is its configuration."""

    def __init__(self, supply: Genesys, pyrometer, digitizer, *, ovp: float, uvl: float, **capture):
        super().__init__(supply, pyrometer, digitizer, **capture)
        self.protection = {"ovp": (supply.ovp, ovp), "uvl": (supply.uvl, uvl)}  # read back before each pulse
        self._readings: list[tuple[float, float, float]] = []  # (monotonic s, V, A)
        self._sent: list[float] = []  # monotonic s each level's command (the first: OUT 1), then OUT 0, was sent
        self._poll = 0.0  # s the last MV?/MC? reading took
        self._zero = 0.0  # monotonic s of the forced trigger

    @property
    def supply_points(self) -> None:
        return None  # as many readings as the link allowed

    def extra_keys(self) -> dict[str, dict]:
        return {**super().extra_keys(),
                "step_time": {"dtype": "array", "shape": [len(self.program.levels) + 1], "units": "s",
                              "dims": ["step"]}}

    # --- the pulse -----------------------------------------------------------------------------
    def _set(self, level: float) -> None:
        """The controlled quantity to `level`."""
        (self.supply.set_current if self.program.control == "current" else self.supply.set_voltage)(level)

    def _read(self) -> None:
        """One MV?/MC? reading, timed at the middle of its two exchanges."""
        start = wallclock.monotonic()
        volts, amps = self.supply.measured_voltage(), self.supply.measured_current()
        end = wallclock.monotonic()
        self._readings.append(((start + end) / 2, volts, amps))
        self._poll = end - start

    def check_protection(self) -> None:
        """No fault latched (FLT?), OVP and UVL as configured (OUT 1 would clear an OVP or
        foldback shutdown without a word: 7.7.4)."""
        supply = self.supply
        if faults := supply.faults():
            raise InstrumentError(supply.name, supply.where, "FLT?", f"the supply reports {', '.join(faults)}: "
                                  "find the cause before the next pulse")
        for field, (read, wanted) in self.protection.items():
            if abs((actual := read()) - wanted) > 1e-6 * max(1.0, wanted):
                raise InstrumentError(supply.name, supply.where, f"{field.upper()}?",
                                      f"reads back {actual:g} V, not the configured {wanted:g} V "
                                      f"(instruments.supply.{field}): changed since it was set")

    def _prepare_shot(self) -> None:
        supply, program = self.supply, self.program
        supply.output_off()
        self.check_protection()
        self._read_range()
        (supply.set_voltage if program.control == "current" else supply.set_current)(program.limit)
        self._set(program.levels[0])
        self.digitizer.configure_capture(self.record, self.pre_trigger, self.points)
        self.digitizer.arm()
        self._readings, self._sent, self._error = [], [], None

    def _fire(self) -> None:
        """Under the firing lock: a stop() waits for it and cancels the pulse before OUT 1."""
        with self._firing:
            self._prepare_shot()
            self._wait_to_fire("OUT 1")
            self.digitizer.force_trigger()
            self._zero = wallclock.monotonic()
            self._read()  # the output before the pulse
            if self._cancel.is_set():
                raise self._cancelled("OUT 1")
            try:
                self._sent.append(wallclock.monotonic())
                self.supply.output_on()
                self._start_worker(self._step_through)
            except BaseException:
                self.supply.output_off()
                raise

    def _step_through(self) -> None:
        """Each level at its instant from OUT 1, readings in between; OUT 0 whatever happens."""
        program, on = self.program, self._sent[0]
        starts = np.cumsum((0.0,) + program.dwells)
        try:
            for level, start in zip(program.levels[1:], starts[1:-1]):
                self._poll_until(on + start)
                if self._cancel.is_set():
                    return
                self._sent.append(wallclock.monotonic())
                self._set(level)
            self._poll_until(on + starts[-1])
        except Exception as error:  # reported by complete()
            self._error = error
        finally:
            self._switch_off()

    def _poll_until(self, instant: float) -> None:
        """Read the output until the next reading would end after `instant`, then wait for it."""
        while not self._cancel.is_set():
            remaining = instant - wallclock.monotonic()
            if remaining <= self._poll:
                wallclock.sleep(max(0.0, remaining))
                return
            self._read()

    def _switch_off(self) -> None:
        try:
            self._sent.append(wallclock.monotonic())
            self.supply.output_off()
            self.ended_at = wallclock.time()
            self._read()  # the output after the pulse
        except Exception as error:
            self._error = self._error or error

    def _finish(self) -> None:
        self._joined(self.program.duration, "OUT 0")
        self._await_capture(wallclock.monotonic() + 10 * self.record + 5)
        trace = self.digitizer.fetch(self.channel)
        times, volts, amps = (np.array(column) for column in zip(*self._readings))
        self._record(trace, times - self._zero, amps, volts, step_time=np.array(self._sent) - self._zero)
