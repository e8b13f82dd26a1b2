"""The capacitor-bank FJH shot as a flyer (docs/capbank-protocol.md): charge, fire, record, dump.

kickoff, once the bank is dumped and IDLE (a WATCHDOG code left by an earlier auto-dump is
acknowledged with CLR; any other code refuses the shot, section 7): VSET, CHG, wait for CHARGED
(section 5), read VBANK? (V0), arm the digitizer on the rising edge of the current probe's
channel, ARM, FIRE n. complete: wait for IDLE (the switch opened after n ms), read VBANK? (V1),
DUMP, fetch the pyrometer and current probe channels, wait for the dump to end. Time 0 is the
trigger: the current rising through TRIGGER_FRACTION of `max_current`. The pulse's `energy` is
what the bank gave, 1/2 C (V0^2 - V1^2) with the C the controller reports (CAP?, section 5),
recorded beside `bank_voltage_before` and `bank_voltage_after`; the sample's voltage is not
measured on such a rig, so the `voltage` trace is NaN.

The bank is dumped on every exit path: at the end of each shot, and by stop, stage and unstage
(DUMP is accepted in every state and opens a closed switch at once, section 4); a stop() that
comes while the bank charges or is armed cancels the shot before its next command. If this
process dies, the controller's watchdog dumps the bank by itself (section 6).
"""
import math
import time as wallclock

import numpy as np
from ophyd import Component as Cpt
from ophyd import Kind, Signal

from quenchlab.control.programs import Shot
from quenchlab.devices.capbank_driver import CapBank
from quenchlab.devices.flyers.pulse_capture import PulseCapture
from quenchlab.errors import InstrumentError

TRIGGER_FRACTION = 0.05  # of max_current: the current that starts the record
PROBE_HEADROOM = 1.2  # the probe channel's full scale, in max_current
HOLD_POLL = 0.5  # s between STATE? queries while a charged bank waits for its off time to end


class CapBankShot(PulseCapture):
    """One shot of the loaded `Shot`: charge, fire, record, dump."""

    charge_voltage = Cpt(Signal, value=0.0, kind=Kind.config)
    fire_time = Cpt(Signal, value=0.0, kind=Kind.config)
    capacitance = Cpt(Signal, value=0.0, kind=Kind.config)  # F, as the controller reports it

    def __init__(self, supply: CapBank, pyrometer, digitizer, *, current_channel: int, sensitivity: float,
                 max_current: float, **capture):
        super().__init__(supply, pyrometer, digitizer, **capture)
        self.current_channel, self.sensitivity = current_channel, sensitivity
        self.max_current = max_current
        self._over: str | None = None  # why the last shot forbids the next
        self.trigger_level = TRIGGER_FRACTION * max_current * sensitivity  # V on the probe channel
        full_scale = PROBE_HEADROOM * max_current * sensitivity
        digitizer.configure_channel(current_channel, full_scale, 0.45 * full_scale)  # -5 % .. 95 % of it
        bank = supply.rating()
        self.capacitance.put(bank["capacitance"])
        charge = bank["capacitance"] * bank["max_voltage"] / bank["charge_current"]
        dump = bank["dump_resistance"] * bank["capacitance"] * math.log(bank["max_voltage"] / bank["safe_voltage"])
        self.timeout = 2 * (charge + dump + 1) + 5  # wall s a charge, a shot or a dump may take
        self._before = math.nan

    def load(self, shot: Shot) -> None:
        """The (already limit-checked) shot the next kickoff fires."""
        self._fits(shot.duration)
        self.program = shot
        self.charge_voltage.put(shot.voltage)
        self.fire_time.put(shot.duration)

    @property
    def supply_points(self) -> int:
        return self.points

    def extra_keys(self) -> dict[str, dict]:
        return {name: {"dtype": "number", "shape": [], "units": "V"}
                for name in ("bank_voltage_before", "bank_voltage_after")}

    def make_safe(self) -> None:
        self.supply.dump()

    # --- the shot ------------------------------------------------------------------------------
    def _command(self, command: str, action) -> None:
        """`action` unless a stop() came first; a stop() waits for a command under way."""
        with self._firing:
            if self._cancel.is_set():
                raise self._cancelled(command)
            action()

    def _wait(self, state: str) -> None:
        self.supply.wait_for(state, timeout=self.timeout, cancel=self._cancel)

    def _fire(self) -> None:
        """The discharge current (V/R of the sample) cannot be bounded before a shot: a shot
        whose peak passed limits.max_current is recorded, and the next one refused."""
        bank, shot = self.supply, self.program
        if self._over:
            raise InstrumentError(bank.name, bank.address, "FIRE", self._over)
        self._command("DUMP", bank.dump)
        self._wait("IDLE")
        codes = bank.faults()
        if codes == ["WATCHDOG"]:  # an earlier auto-dump: the bank is safe, acknowledge it
            bank.clear_faults()
        elif codes:
            raise InstrumentError(bank.name, bank.address, "FLT?", f"codes latched: {', '.join(codes)}; "
                                  "find the cause, then clear them (CLR)")
        self._read_range()
        self._command("VSET", lambda: bank.set_voltage(shot.voltage))
        self._command("CHG", bank.charge)
        self._wait("CHARGED")  # inside the off time: a charge longer than it holds the shots apart
        self._hold_charged()
        self._before = bank.bank_voltage()
        self._command("ARM", self._arm)
        self.fired_at = wallclock.time()
        self._command("FIRE", lambda: bank.fire(shot.milliseconds))

    def _hold_charged(self) -> None:
        """Charged, wait out the off time (PulseCapture.follow), asking the controller its state
        every HOLD_POLL s: its watchdog stays fed and a bank that left CHARGED (a fault, a dump)
        ends the shot; a stop() ends the wait."""
        bank = self.supply
        while (left := self.not_before - wallclock.time()) > 0:
            if self._cancel.wait(min(left, HOLD_POLL)):
                raise self._cancelled("FIRE")
            if (state := bank.state()) != "CHARGED":
                raise InstrumentError(bank.name, bank.address, "STATE?", f"the bank left CHARGED ({state}) "
                                      "while it waited for the off time to end")

    def _arm(self) -> None:
        self.digitizer.configure_capture(self.record, self.pre_trigger, self.points,
                                         trigger=f"CHAN{self.current_channel}", level=self.trigger_level)
        self.digitizer.arm()
        self.supply.arm()

    def _finish(self) -> None:
        bank = self.supply
        try:
            self._wait("IDLE")  # the switch has opened
            self.ended_at = wallclock.time()
            after = bank.bank_voltage()
        finally:
            bank.dump()
        self._await_capture(wallclock.monotonic() + 10 * self.record + 5)
        trace = self.digitizer.fetch(self.channel)
        probe = self.digitizer.fetch(self.current_channel)
        current = probe.volts / self.sensitivity
        if (peak := float(np.nanmax(current))) > self.max_current:
            self._over = (f"the last shot peaked at {peak:.3g} A "
                          f"(the probe reads up to {PROBE_HEADROOM:g} x the limit), "
                          f"above the configured max_current of {self.max_current:g} A: lower charge_voltage")
        energy = 0.5 * self.capacitance.get() * (self._before**2 - after**2)
        self._record(trace, probe.time, current, np.full_like(current, np.nan), energy=energy,
                     bank_voltage_before=self._before, bank_voltage_after=after)
        self._wait("IDLE")  # dumped: the bank is safe before anything else
