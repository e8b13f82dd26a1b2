"""Driver for a TDK-Lambda Genesys GEN supply (e.g. GEN60-55), GEN language on RS-232/RS-485.

From the "Genesys 3300W Technical Manual" (TDK-Lambda 83503001 Rev G), chapter 7 "RS232 & RS485
remote control":
- 7.5 8N1 at 1200-19200 baud; CR ends every command and reply. `ADR n` (0-30) selects the unit
  that answers until the next ADR. Units on one RS-485 line share one transport here
  (`SerialTransport.shared`), and the driver sends ADR again whenever the line may have another
  unit selected: another driver spoke to its unit, or a command went unanswered (a unit that
  was power-cycled has forgotten it was selected).
- 7.6 every command is answered: OK, the query's answer, or an error code (ERRORS); the
  driver raises a `GenesysError` naming the code and its meaning.
- 7.7.3-7.7.5 command set: IDN? (`LAMBDA,GENX-Y`), RMT, PV/PC and their queries, MV?/MC?
  (measured, five digits), DVC? (MV,PV,MC,PC,OVP,UVL), MODE? (CV or CC with the output on; OFF
  when it is off or shut down by a fault), OUT (OUT 1 also recovers from an OVP or foldback
  shutdown), OUT?, OVP, OVM, UVL, FLD, FBD (0.1 s steps, 0-255), AST (auto-restart; OFF is
  safe-start: after an AC fail the output stays off until OUT 1, ch. 5), CLS, RST.
- 7.11 registers: FLT? (fault condition) and FEVE? (fault events, cleared by the reading) as
  two hex digits (FAULT_BITS); FENA chooses which faults become events. A unit may send a
  service request `!nn` unasked: such lines are skipped.
Ranges are the caller's business (the supply itself answers E01, C05, ...); the driver refuses
only numbers it cannot write (nan, inf, more than 12 characters).
"""
import math
import re
import weakref
from dataclasses import dataclass

from quenchlab.errors import InstrumentError

from .transport import SerialTransport

CR = b"\r"
BAUD_RATES = (1200, 2400, 4800, 9600, 19200)
ERRORS = {
    "E01": "voltage setting above 105 % of the rating or above 95 % of the OVP setting",
    "E02": "voltage setting below the UVL setting",
    "E04": "OVP setting below the allowed minimum (about 105 % of the voltage setting)",
    "E06": "UVL setting above the voltage setting",
    "E07": "the output cannot be turned on during a fault shutdown",
    "C01": "illegal command or query",
    "C02": "missing parameter",
    "C03": "illegal parameter",
    "C04": "checksum error",
    "C05": "setting out of range",
}
FAULT_BITS = {2: "AC fail", 4: "over-temperature", 8: "foldback", 16: "over-voltage",
              32: "rear-panel shut-off", 64: "front-panel output off", 128: "enable open"}
MODES = ("CV", "CC", "OFF")
_SRQ = re.compile(rb"!\d\d")
_IDN = re.compile(r"LAMBDA,\s*GEN(\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)")


class GenesysError(InstrumentError):
    """The supply answered an error code instead of OK or a value."""

    def __init__(self, instrument: str, address: str, command: str, code: str):
        self.code = code
        super().__init__(instrument, address, command,
                         f"answered {code} ({ERRORS.get(code, 'unknown error code')})")


@dataclass
class _Line:
    """What the drivers sharing one serial line know about it."""

    selected: int | None = None  # the unit the last ADR selected
    users: int = 0


_LINES: "weakref.WeakKeyDictionary[SerialTransport, _Line]" = weakref.WeakKeyDictionary()


def _answered(received: bytes) -> bool:
    """True once a whole line other than a service request has arrived."""
    return any(not _SRQ.fullmatch(line) for line in received.split(CR)[:-1])


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"the supply takes finite numbers, not {value}")
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    if len(text) > 12:
        raise ValueError(f"{value} does not fit the 12 characters of a GEN number")
    return text


class Genesys:
    """One Genesys unit at `unit` (its ADR address, 0-30) on a serial line."""

    def __init__(self, address: str, unit: int = 6, name: str = "supply", baudrate: int = 9600,
                 timeout: float = 0.3, retries: int = 2):
        if not 0 <= unit <= 30:
            raise ValueError(f"a Genesys address is 0-30, got {unit}")
        if baudrate not in BAUD_RATES:
            raise ValueError(f"a Genesys talks at {', '.join(map(str, BAUD_RATES))} baud, not {baudrate}")
        self.io = SerialTransport.shared(name, address, baudrate=baudrate, terminator=CR,
                                         timeout=timeout, retries=retries)
        self.name, self.address, self.unit = name, address, unit
        self.where = f"{address} ADR {unit}"
        self._line = _LINES.setdefault(self.io, _Line())
        self._line.users += 1
        try:
            self._set("")  # a bare CR answers OK: the unit is there and selected
        except BaseException:
            self.close()
            raise

    # --- one exchange -------------------------------------------------------------------
    def _raw(self, command: str) -> str:
        received = self.io.exchange(command.encode("ascii") + CR, _answered, command)
        reply = next(line for line in received.split(CR) if not _SRQ.fullmatch(line))
        return reply.decode("ascii", "replace")

    def _checked(self, command: str, reply: str) -> str:
        if re.fullmatch(r"[EC]\d\d", reply):
            raise GenesysError(self.name, self.where, command, reply)
        return reply

    def _ask(self, command: str) -> str:
        """Send `command` to this unit (selecting it first if needed) and return its reply."""
        with self.io.lock:
            for _ in range(2):
                try:
                    if self._line.selected != self.unit:
                        self._line.selected = None
                        if self._raw(f"ADR {self.unit}") != "OK":
                            continue
                        self._line.selected = self.unit
                    return self._checked(command, self._raw(command))
                except GenesysError:
                    raise
                except InstrumentError:
                    self._line.selected = None  # unanswered: select the unit again, once
            raise InstrumentError(self.name, self.where, command,
                                  f"no answer, even after selecting unit {self.unit} again with ADR")

    def _set(self, command: str) -> None:
        reply = self._ask(command)
        if reply != "OK":
            raise InstrumentError(self.name, self.where, command, f"answered {reply!r}, not OK")

    def _float(self, command: str) -> float:
        reply = self._ask(command)
        try:
            return float(reply)
        except ValueError:
            raise InstrumentError(self.name, self.where, command, f"answered {reply!r}, not a number") from None

    def _choice(self, command: str, allowed: tuple[str, ...]) -> str:
        reply = self._ask(command)
        if reply not in allowed:
            raise InstrumentError(self.name, self.where, command, f"answered {reply!r}, not one of {allowed}")
        return reply

    def _register(self, command: str) -> int:
        reply = self._ask(command)
        if not re.fullmatch(r"[0-9A-Fa-f]{2}", reply):
            raise InstrumentError(self.name, self.where, command, f"answered {reply!r}, not two hex digits")
        return int(reply, 16)

    # --- identity and remote mode --------------------------------------------------------
    def identify(self) -> str:
        return self._ask("IDN?")

    def rating(self) -> tuple[float, float]:
        """(volts, amps) the model is rated for, from IDN?."""
        reply = self.identify()
        match = _IDN.fullmatch(reply)
        if match is None:
            raise InstrumentError(self.name, self.where, "IDN?", f"answered {reply!r}, not LAMBDA,GENX-Y")
        return float(match[1]), float(match[2])

    def set_remote(self, mode: str = "REM") -> None:
        """LOC, REM or LLO (remote with the front panel locked out)."""
        if mode not in ("LOC", "REM", "LLO"):
            raise ValueError(f"remote mode must be LOC, REM or LLO, not {mode!r}")
        self._set(f"RMT {mode}")

    def remote_mode(self) -> str:
        return self._choice("RMT?", ("LOC", "REM", "LLO"))

    # --- setpoints, measurements, output -------------------------------------------------
    def set_voltage(self, volts: float) -> None:
        self._set(f"PV {_number(volts)}")

    def voltage_setting(self) -> float:
        return self._float("PV?")

    def set_current(self, amps: float) -> None:
        self._set(f"PC {_number(amps)}")

    def current_setting(self) -> float:
        return self._float("PC?")

    def measured_voltage(self) -> float:
        return self._float("MV?")

    def measured_current(self) -> float:
        return self._float("MC?")

    def readings(self) -> dict[str, float]:
        """Measured and programmed output, OVP and UVL, in one DVC? query."""
        reply = self._ask("DVC?")
        keys = ("volts", "voltage_setting", "amps", "current_setting", "ovp", "uvl")
        try:
            values = [float(field) for field in reply.split(",")]
        except ValueError:
            values = []
        if len(values) != len(keys):
            raise InstrumentError(self.name, self.where, "DVC?", f"answered {reply!r}, not six numbers")
        return dict(zip(keys, values))

    def measure(self) -> tuple[float, float]:
        """(volts, amps) at the output."""
        values = self.readings()
        return values["volts"], values["amps"]

    def mode(self) -> str:
        """CV, CC, or OFF (output off or shut down by a fault)."""
        return self._choice("MODE?", MODES)

    def output_on(self) -> None:
        """OUT 1; it also clears a latched OVP or foldback shutdown (E07 if a fault persists)."""
        self._set("OUT 1")

    def output_off(self) -> None:
        """OUT 0, confirmed by reading back both the output setting and the mode."""
        with self.io.lock:
            self._set("OUT 0")
            if self.output_state() or self.mode() != "OFF":
                raise InstrumentError(self.name, self.where, "OUT 0", "the output still reads on after OUT 0")

    def output_state(self) -> bool:
        """The programmed output state (OUT?): it stays on through a fault shutdown."""
        return self._choice("OUT?", ("ON", "OFF")) == "ON"

    def output_enabled(self) -> bool:
        """True only if the output is on and delivering (no fault shutdown)."""
        return self.mode() != "OFF"

    # --- protection -------------------------------------------------------------------------
    def set_ovp(self, volts: float) -> None:
        self._set(f"OVP {_number(volts)}")

    def set_ovp_max(self) -> None:
        self._set("OVM")

    def ovp(self) -> float:
        return self._float("OVP?")

    def set_uvl(self, volts: float) -> None:
        self._set(f"UVL {_number(volts)}")

    def uvl(self) -> float:
        return self._float("UVL?")

    def set_foldback(self, armed: bool) -> None:
        """Arm (the output shuts down when the supply goes into CC) or cancel foldback."""
        self._set(f"FLD {'ON' if armed else 'OFF'}")

    def foldback(self) -> bool:
        return self._choice("FLD?", ("ON", "OFF")) == "ON"

    def set_foldback_delay(self, seconds: float) -> None:
        """Delay added to the standard foldback delay, in 0.1 s steps up to 25.5 s."""
        steps = round(seconds / 0.1) if math.isfinite(seconds) else -1
        if not 0 <= steps <= 255:
            raise ValueError(f"the added foldback delay is 0-25.5 s, not {seconds}")
        self._set(f"FBD {steps}")

    def foldback_delay(self) -> float:
        return self._float("FBD?") * 0.1

    def set_auto_restart(self, on: bool) -> None:
        """AST ON: the output comes back by itself after an AC fail; OFF (safe-start) keeps it off."""
        self._set(f"AST {'ON' if on else 'OFF'}")

    def auto_restart(self) -> bool:
        return self._choice("AST?", ("ON", "OFF")) == "ON"

    def protection_settings(self) -> dict[str, float]:
        return {"ovp": self.ovp(), "uvl": self.uvl(), "foldback": float(self.foldback()),
                "foldback_delay": self.foldback_delay()}

    # --- registers --------------------------------------------------------------------------
    def fault_register(self) -> int:
        """FLT?: the faults present now, as bits (FAULT_BITS)."""
        return self._register("FLT?")

    def faults(self) -> list[str]:
        """Names of the faults present now."""
        bits = self.fault_register()
        return [name for bit, name in FAULT_BITS.items() if bits & bit]

    def enable_fault_events(self, bits: int = sum(FAULT_BITS)) -> None:
        """FENA: the faults that latch into the fault event register."""
        self._set(f"FENA {bits:02X}")

    def fault_events(self) -> list[str]:
        """Names of the enabled faults that occurred since the last reading (FEVE? clears)."""
        bits = self._register("FEVE?")
        return [name for bit, name in FAULT_BITS.items() if bits & bit]

    def clear(self) -> None:
        """CLS: clear the fault and status event registers."""
        self._set("CLS")

    def reset(self) -> None:
        """RST: output off, settings zero, OVP maximum, UVL zero, foldback off."""
        self._set("RST")

    def close(self) -> None:
        self._line.users -= 1
        if self._line.users == 0:
            self.io.close()
