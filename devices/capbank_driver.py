"""Driver for the controller of a capacitor-bank FJH supply on a serial line, 115200 8N1.

From docs/capbank-protocol.md:
- section 1: one ASCII line per command and one reply line, both ending in CR; numbers are
  plain decimals, so the driver refuses non-finite numbers before anything is sent.
- section 2: the command table. The hardware figures (CAP?, VMAX?, VSAFE?, ICHG?, RDUMP?) are
  read once at connect: `energy(volts)` = 1/2 C V^2 lets a caller check its limits before it
  sets or charges anything.
- section 3: an `ERR <code>` reply raises `Refused`, which names the code.
- section 4: a command asking for the state already reached answers OK, so the transport's
  bounded resends are harmless; a FIRE resent after its shot ended is refused, and `fire`
  then confirms the shot by the shot counter (SHOT?).
- section 6: the controller dumps by itself after WDOG seconds without a line: whoever holds a
  charged bank must talk to it more often than that (`state()` is the cheapest line).
"""
import math
import threading
import time

from quenchlab.errors import InstrumentError

from .transport import SerialTransport

STATES = ("IDLE", "CHARGING", "CHARGED", "ARMED", "FIRING", "DUMPING", "FAULT")
ERRORS = {"SYNTAX": "command not understood", "RANGE": "value out of range",
          "STATE": "not allowed in the present state", "FAULT": "a fault code is latched or its cause persists"}
HARDWARE = {"capacitance": "CAP?", "max_voltage": "VMAX?", "safe_voltage": "VSAFE?",
            "charge_current": "ICHG?", "dump_resistance": "RDUMP?"}
MAX_FIRE_MS = 1000
WATCHDOG_RANGE = (1, 3600)  # s
POLL = 0.005  # wall s between STATE? polls while waiting


class Refused(InstrumentError):
    """The controller answered `ERR <code>` (section 3) and changed nothing."""

    def __init__(self, instrument: str, address: str, command: str, code: str):
        self.code = code
        super().__init__(instrument, address, command, f"refused: ERR {code} ({ERRORS.get(code, 'unknown error')})")


def _finite(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, not {value!r}")
    return float(value)


class CapBank:
    """One controller: charger, discharge switch and dump of one capacitor bank."""

    def __init__(self, address: str, name: str = "capbank", baudrate: int = 115200,
                 timeout: float = 0.5, retries: int = 2):
        self.io = SerialTransport(name, address, baudrate=baudrate, timeout=timeout, retries=retries)
        self.name, self.address = name, address
        try:
            self.hardware = {key: self._number(command) for key, command in HARDWARE.items()}
        except BaseException:
            self.io.close()
            raise

    # --- one exchange -------------------------------------------------------------------
    def _ask(self, command: str) -> str:
        reply = self.io.query(command)
        if reply.startswith("ERR "):
            raise Refused(self.name, self.address, command, reply[4:])
        return reply

    def _do(self, command: str) -> None:
        reply = self._ask(command)
        if reply != "OK":
            raise InstrumentError(self.name, self.address, command, f"answered {reply!r}, not OK")

    def _number(self, command: str) -> float:
        reply = self._ask(command)
        try:
            return _finite(float(reply), command)
        except ValueError:
            raise InstrumentError(self.name, self.address, command, f"answered {reply!r}, not a number") from None

    # --- the command table (section 2) ----------------------------------------------------
    def identify(self) -> str:
        return self._ask("IDN?")

    def rating(self) -> dict[str, float]:
        """The hardware: capacitance F, max_voltage V, safe_voltage V, charge_current A,
        dump_resistance ohm."""
        return dict(self.hardware)

    def energy(self, volts: float) -> float:
        """Energy in J the bank holds at `volts`: 1/2 C V^2 (section 5)."""
        return 0.5 * self.hardware["capacitance"] * _finite(volts, "voltage") ** 2

    def voltage_setting(self) -> float:
        return self._number("VSET?")

    def set_voltage(self, volts: float) -> None:
        """Charge voltage, 0 < V <= VMAX, in IDLE only."""
        text = f"{_finite(volts, 'voltage'):.3f}"
        if not 0 < float(text) <= self.hardware["max_voltage"]:
            raise ValueError(f"charge voltage must be within 0-{self.hardware['max_voltage']:g} V, got {volts}")
        self._do(f"VSET {text}")

    def bank_voltage(self) -> float:
        return self._number("VBANK?")

    def state(self) -> str:
        reply = self._ask("STATE?")
        if reply not in STATES:
            raise InstrumentError(self.name, self.address, "STATE?", f"answered {reply!r}, not a state")
        return reply

    def faults(self) -> list[str]:
        """Latched codes (section 7): CHARGER, SWITCH, WATCHDOG; empty when none."""
        reply = self._ask("FLT?")
        return [] if reply == "NONE" else reply.split(",")

    def clear_faults(self) -> None:
        self._do("CLR")

    def watchdog(self) -> float:
        return self._number("WDOG?")

    def set_watchdog(self, seconds: int) -> None:
        if (isinstance(seconds, bool) or not isinstance(seconds, int)
                or not WATCHDOG_RANGE[0] <= seconds <= WATCHDOG_RANGE[1]):
            raise ValueError(f"watchdog must be an integer 1-3600 s, got {seconds!r}")
        self._do(f"WDOG {seconds}")

    def shots(self) -> int:
        return int(self._number("SHOT?"))

    def charge(self) -> None:
        """Start charging to the charge voltage (IDLE or CHARGED -> CHARGING)."""
        self._do("CHG")

    def arm(self) -> None:
        self._do("ARM")

    def disarm(self) -> None:
        self._do("DISARM")

    def fire(self, milliseconds: int) -> int:
        """Close the switch for `milliseconds` (1-1000); returns the shot's number. The
        controller answers once the switch has closed: wait for IDLE to see the shot end."""
        if isinstance(milliseconds, bool) or not isinstance(milliseconds, int) or not 1 <= milliseconds <= MAX_FIRE_MS:
            raise ValueError(f"fire time must be an integer 1-{MAX_FIRE_MS} ms, got {milliseconds!r}")
        with self.io.lock:
            before = self.shots()
            try:
                self._do(f"FIRE {milliseconds}")
            except Refused as refusal:
                if refusal.code != "STATE" or self.shots() != before + 1:
                    raise
        return before + 1

    def dump(self) -> None:
        """Drain the bank through the dump resistor (any state; aborts a running shot)."""
        self._do("DUMP")

    def wait_for(self, *states: str, timeout: float, cancel: threading.Event | None = None) -> str:
        """Poll the state until it is one of `states`; raise if the controller reports FAULT
        (naming its codes), after `timeout` wall seconds, or once `cancel` is set."""
        deadline = time.monotonic() + timeout
        while (state := self.state()) not in states:
            if cancel is not None and cancel.is_set():
                raise InstrumentError(self.name, self.address, "STATE?", f"cancelled while {state}")
            if state == "FAULT":
                raise InstrumentError(self.name, self.address, "STATE?",
                                      f"controller in FAULT ({', '.join(self.faults()) or 'no code'})")
            if time.monotonic() > deadline:
                raise InstrumentError(self.name, self.address, "STATE?",
                                      f"still {state} after {timeout} s, waiting for {' or '.join(states)}")
            time.sleep(POLL)
        return state

    def close(self) -> None:
        self.io.close()
