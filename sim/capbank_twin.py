"""Twin of the capacitor-bank FJH supply's controller, served on a pseudo-terminal.

Written from docs/capbank-protocol.md: link and command table (sections 1-2), errors (3),
states and transitions (4), timing and physics (5), watchdog (6), fault codes (7).

The bank voltage is kept lazily on the reactor clock. While charging, holding or dumping it
follows closed forms (constant-current charger, bleed resistor always across the bank, dump
resistor in parallel when dumping). While the switch is closed the twin is the world's
electrical source: the world integrates the sample, I = V / R(T), and the twin steps the bank
on the same steps, dV = -(I + V / R_bleed) dt / C, recording the discharge for a digitizer.
Not modelled: switch, cable and capacitor series resistance, charger ripple, bank over-voltage.
"""
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .fjh_world import FJHWorld

MAX_LINE = 32  # characters of a command (section 1)
MAX_FIRE_MS = 1000
WATCHDOG_RANGE = (1, 3600)  # s
TOP_UP_MARGIN = 1.01  # CHG refused above VSET + 1 % (section 3)
LIVE = ("CHARGING", "CHARGED", "ARMED")  # watched by the watchdog (section 6), with IDLE above VSAFE
_DECIMAL = re.compile(r"\d+(\.\d+)?")
_MNEMONIC = re.compile(r"[A-Z]+\??")


@dataclass(frozen=True)
class Rating:
    """The hardware, reported by CAP?, VMAX?, VSAFE?, ICHG?, RDUMP? (section 2)."""

    capacitance: float = 0.06  # F
    max_voltage: float = 150.0  # V
    safe_voltage: float = 10.0  # V
    charge_current: float = 3.0  # A
    dump_resistance: float = 10.0  # ohm
    bleed_resistance: float = 50e3  # ohm: tau 3000 s, about 0.03 % per second


class _Refused(Exception):
    """Answered `ERR <code>` (section 3)."""

    def __init__(self, code: str):
        self.code = code


def _decimal(text: str) -> float:
    if not _DECIMAL.fullmatch(text):
        raise _Refused("SYNTAX")
    return float(text)


def _integer(text: str, low: int, high: int) -> int:
    if not text.isdigit():
        raise _Refused("SYNTAX")
    if not low <= int(text) <= high:
        raise _Refused("RANGE")
    return int(text)


class CapBankTwin:
    """The controller, its bank and its switch, discharging into the world's sample."""

    terminator = b"\r"
    baudrate = 115200
    FAULTS = ("charger_fault", "switch_stuck", "recover")

    def __init__(self, world: FJHWorld, rating: Rating = Rating(), serial: str = "SIM0001"):
        self.world, self.rating, self.serial = world, rating, serial
        self.state = "IDLE"
        self.bank, self.t_bank = 0.0, world.time  # V at reactor time t_bank
        self.draw = 0.0  # A into the sample since t_bank, while the switch is closed
        self.v_set = 0.0
        self.watchdog = 10.0
        self.heard = world.time  # last line received
        self.codes: list[str] = []
        self.shots = 0
        self.fire_end = math.inf
        self.charger_broken = self.switch_stuck = False
        self._trace: list[tuple[float, float, float]] = []  # (t, V across the sample, I)
        world.source = self

    # --- the bank, lazily on the reactor clock (section 5) --------------------------------
    def _tau(self, resistance: float) -> float:
        return resistance * self.rating.capacitance

    def _dump_tau(self) -> float:
        r = self.rating
        return self._tau(r.dump_resistance * r.bleed_resistance / (r.dump_resistance + r.bleed_resistance))

    def _advance_to(self, t: float) -> None:
        """The bank voltage at t under the present state."""
        dt, v, r = t - self.t_bank, self.bank, self.rating
        if dt <= 0:
            return
        if self.state == "FIRING":
            v -= (self.draw + v / r.bleed_resistance) * dt / r.capacitance
        elif self.state == "CHARGING":
            v_inf = r.charge_current * r.bleed_resistance
            v = v_inf + (v - v_inf) * math.exp(-dt / self._tau(r.bleed_resistance))
        elif self.state in ("DUMPING", "FAULT"):
            v *= math.exp(-dt / self._dump_tau())
        else:
            v *= math.exp(-dt / self._tau(r.bleed_resistance))
        self.bank, self.t_bank = v, t

    def _transition_time(self) -> float:
        """When the present state ends by itself."""
        r, v, t = self.rating, self.bank, self.t_bank
        if self.state == "CHARGING":
            if v >= self.v_set:
                return t
            v_inf = r.charge_current * r.bleed_resistance
            return t + self._tau(r.bleed_resistance) * math.log((v_inf - v) / (v_inf - self.v_set))
        if self.state == "DUMPING":
            return t + self._dump_tau() * math.log(v / r.safe_voltage) if v > r.safe_voltage else t
        return self.fire_end if self.state == "FIRING" else math.inf

    def _watched(self) -> bool:
        return self.state in LIVE or (self.state == "IDLE" and self.bank > self.rating.safe_voltage)

    def _settle(self, now: float) -> None:
        """Apply what happens by itself up to `now`: charged, dumped, shot over, watchdog."""
        while True:
            change = self._transition_time()
            deadline = self.heard + self.watchdog if self._watched() else math.inf
            if min(change, deadline) > now:
                self._advance_to(now)
                return
            if change <= deadline:
                self._advance_to(change)
                self._finish()
            else:
                self._advance_to(deadline)
                if self._watched():
                    self.state = "DUMPING"
                    self._latch("WATCHDOG")

    def _finish(self) -> None:
        if self.state == "CHARGING":
            self.state, self.bank = "CHARGED", self.v_set
        elif self.state == "DUMPING":
            self.state = "IDLE"
        else:
            self._end_shot()
            if not any(amps > 0 for _, _, amps in self._trace):
                self._fault("SWITCH")

    def _end_shot(self) -> None:
        """The switch opens now."""
        self._trace.append((self.t_bank, 0.0, 0.0))
        self.state, self.draw, self.fire_end = "IDLE", 0.0, math.inf

    def _latch(self, code: str) -> None:
        if code not in self.codes:
            self.codes.append(code)

    def _fault(self, code: str) -> None:
        self.state = "FAULT"
        self._latch(code)

    def _now(self) -> float:
        self.world.advance()
        now = self.world.time
        self._settle(now)
        return now

    # --- the world's electrical source (sim/fjh_world.py) ---------------------------------
    def drive(self, t: float) -> tuple[bool, float, float]:
        self._settle(t)
        return self.state == "FIRING" and not self.switch_stuck, self.bank, math.inf

    def next_change(self, t: float) -> float:
        return self.fire_end

    def observe(self, t: float, volts: float, amps: float, constant_current: bool) -> None:
        if self.state == "FIRING":
            self.draw = amps
            self._trace.append((t, volts, amps))

    # --- views for digitizers and tests ---------------------------------------------------
    def last_shot(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(reactor time s, volts across the sample, amps through it) of the last shot: one
        row per integration step while the switch was closed, each holding until the next
        row; the last row, when the switch opened, is zero."""
        with self.world.lock:
            self._now()
            rows = np.array(self._trace, dtype=float).reshape(-1, 3)
        return rows[:, 0], rows[:, 1], rows[:, 2]

    def probe(self, key: str) -> Callable[[np.ndarray], np.ndarray]:
        """A digitizer input across the sample ("volts") or on a current monitor ("amps"):
        reactor times -> the last shot's value then, zero outside it."""
        column = {"volts": 1, "amps": 2}[key]

        def signal(times: np.ndarray) -> np.ndarray:
            shot = self.last_shot()
            index = np.searchsorted(shot[0], times, side="right") - 1
            values = shot[column][np.clip(index, 0, None)] if shot[0].size else np.zeros(np.shape(times))
            return np.where(index >= 0, values, 0.0)

        return signal

    # --- fault injection -------------------------------------------------------------------
    def inject(self, fault: str) -> None:
        """Fault injection: "charger_fault" (the charger gives no current: a charge in
        progress faults now, the next CHG faults), "switch_stuck" (the switch stays open: the
        next shot faults) or "recover" (the hardware works again; codes stay until CLR)."""
        if fault not in self.FAULTS:
            raise ValueError(f"unknown fault {fault!r}; allowed: {', '.join(self.FAULTS)}")
        with self.world.lock:
            self._now()
            if fault == "charger_fault":
                self.charger_broken = True
                if self.state == "CHARGING":
                    self._fault("CHARGER")
            elif fault == "switch_stuck":
                self.switch_stuck = True
            else:
                self.charger_broken = self.switch_stuck = False

    # --- protocol (sections 1-3) -----------------------------------------------------------
    def handle(self, message: bytes) -> bytes | None:
        text = message.decode("ascii", "replace").strip().upper()
        with self.world.lock:
            now = self._now()
            self.heard = now  # every line, even an empty one, restarts the watchdog
            if not text:
                return None
            try:
                reply = self._execute(text, now)
            except _Refused as refusal:
                reply = f"ERR {refusal.code}"
        return (reply + "\r").encode("ascii")

    def _execute(self, text: str, now: float) -> str:
        mnemonic, _, argument = text.partition(" ")
        if len(text) > MAX_LINE or not _MNEMONIC.fullmatch(mnemonic):
            raise _Refused("SYNTAX")
        if mnemonic.endswith("?"):
            handler = getattr(self, f"_ask_{mnemonic[:-1].lower()}", None)
            if handler is None or argument:
                raise _Refused("SYNTAX")
            return handler()
        handler = getattr(self, f"_do_{mnemonic.lower()}", None)
        if handler is None:
            raise _Refused("SYNTAX")
        handler(argument, now)
        return "OK"

    def _ask_idn(self) -> str:
        return f"QUENCHLAB,CAPBANK,{self.serial},1.0"

    def _ask_cap(self) -> str:
        return f"{self.rating.capacitance:g}"

    def _ask_vmax(self) -> str:
        return f"{self.rating.max_voltage:g}"

    def _ask_vsafe(self) -> str:
        return f"{self.rating.safe_voltage:g}"

    def _ask_ichg(self) -> str:
        return f"{self.rating.charge_current:g}"

    def _ask_rdump(self) -> str:
        return f"{self.rating.dump_resistance:g}"

    def _ask_vset(self) -> str:
        return f"{self.v_set:.3f}"

    def _ask_vbank(self) -> str:
        return f"{self.bank:.3f}"

    def _ask_state(self) -> str:
        return self.state

    def _ask_flt(self) -> str:
        return ",".join(self.codes) or "NONE"

    def _ask_wdog(self) -> str:
        return f"{self.watchdog:g}"

    def _ask_shot(self) -> str:
        return str(self.shots)

    def _do_vset(self, argument: str, now: float) -> None:
        volts = _decimal(argument)
        if not 0 < volts <= self.rating.max_voltage:
            raise _Refused("RANGE")
        if self.state != "IDLE":
            raise _Refused("STATE")
        self.v_set = volts

    def _do_chg(self, argument: str, now: float) -> None:
        _no_argument(argument)
        if self.state == "CHARGING":
            return
        if self.state not in ("IDLE", "CHARGED"):
            raise _Refused("STATE")
        if self.codes:
            raise _Refused("FAULT")
        if self.v_set <= 0 or self.bank > self.v_set * TOP_UP_MARGIN:
            raise _Refused("RANGE")
        if self.charger_broken:
            self._fault("CHARGER")
            raise _Refused("FAULT")
        self.state = "CHARGING"

    def _do_arm(self, argument: str, now: float) -> None:
        self._move(argument, "CHARGED", "ARMED")

    def _do_disarm(self, argument: str, now: float) -> None:
        self._move(argument, "ARMED", "CHARGED")

    def _move(self, argument: str, origin: str, target: str) -> None:
        _no_argument(argument)
        if self.state not in (origin, target):
            raise _Refused("STATE")
        self.state = target

    def _do_fire(self, argument: str, now: float) -> None:
        milliseconds = _integer(argument, 1, MAX_FIRE_MS)
        if self.state == "FIRING":
            return
        if self.state != "ARMED":
            raise _Refused("STATE")
        self.shots += 1
        self._trace = []
        self.state, self.draw, self.fire_end = "FIRING", 0.0, now + milliseconds / 1000

    def _do_dump(self, argument: str, now: float) -> None:
        _no_argument(argument)
        if self.state == "FAULT":
            return
        if self.state == "FIRING":
            self._end_shot()
        self.state = "DUMPING"

    def _do_clr(self, argument: str, now: float) -> None:
        _no_argument(argument)
        if self.state == "FAULT":
            if self.bank > self.rating.safe_voltage:
                raise _Refused("STATE")
            if ("CHARGER" in self.codes and self.charger_broken) or ("SWITCH" in self.codes and self.switch_stuck):
                raise _Refused("FAULT")
            self.state = "IDLE"
        self.codes = []

    def _do_wdog(self, argument: str, now: float) -> None:
        self.watchdog = float(_integer(argument, *WATCHDOG_RANGE))


def _no_argument(argument: str) -> None:
    if argument:
        raise _Refused("SYNTAX")
