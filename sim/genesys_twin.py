"""Twin of a TDK-Lambda Genesys GEN supply (GEN60-55 unless told otherwise) speaking the GEN
language on a serial line and driving the FJH world's sample.

Written from the "Genesys 3300W Technical Manual" (TDK-Lambda 83503001 Rev G), chapter 7 "RS232 &
RS485 remote control", and chapter 5 for the protections:
- 7.5 8N1, 1200-19200 baud, CR ends every command and reply. `ADR n` (0-30) selects one unit
  of the line: it answers OK and alone answers until the next ADR; the others stay silent.
  A command may end with a checksum `$hh` (the sum of its characters modulo 256, two hex
  digits); the reply then carries one too, and a wrong one answers C04.
- 7.6 errors instead of OK: E01 PV above 105 % of the rating or above 95 % of the OVP setting,
  E02 PV below UVL, E04 OVP below 105 % of PV or below the model's minimum, E06 UVL above PV,
  E07 OUT 1 during a fault shutdown; C01 illegal command, C02 missing parameter, C03 illegal
  parameter, C04 checksum, C05 setting out of range.
- 7.7.1 commands and arguments are case-insensitive, a space separates them, a number has at
  most 12 characters; a CR alone answers OK.
- 7.7.3-7.7.5 ADR, CLS, RST (output off, PV PC 0, OVP maximum, UVL 0, foldback and auto-restart
  off, remote), RMT, IDN? (`LAMBDA,GENX-Y`), REV?, SN?, DATE? (yyyy/mm/dd), PV, PC, OVP, UVL
  and their queries (which return the exact string sent), MV?/MC? (five digits), DVC?
  (MV,PV,MC,PC,OVP,UVL), STT? (MV(x),PV(x),MC(x),PC(x),SR(hh),FR(hh)), OUT (OUT 1 recovers from
  an OVP or foldback shutdown), OUT?, FLD (FLD 0 cancels a tripped foldback), FBD (adds
  n x 0.1 s to the foldback delay, 0-255), FBDRST, OVM, AST, MODE? (CV or CC with the output on,
  OFF when it is off or shut down by a fault).
- 7.11 registers, two hex digits: STAT? (CV 1, CC 2, NFLT 4, FLT 8, AST 16, FDE 32, LCL 128),
  SENA, SEVE?; FLT? (AC 2, OTP 4, FOLD 8, OVP 16, SO 32, OFF 64, ENA 128), FENA, FEVE?. An event
  bit is set when its condition bit rises while enabled, and cleared by reading it or CLS.
  NFLT: no enabled fault is present; FLT: the fault event register is not empty. The fault
  table: AC and OTP clear when their cause is gone, FOLD and OVP when OUT 1 turns the output on.
- ch. 5: a protection shuts the output down. After an AC fail or over-temperature the supply
  stays off in safe-start mode (AST OFF) until OUT 1, and resumes by itself in auto-restart.
The output is a CV/CC source on the sample's R(T): the world takes the lesser of PV/R and PC.

Where the manual is silent, the twin chooses and says so:
- OUT? reads the programmed state, ON through a fault shutdown (MODE? reads OFF then).
- E07 answers OUT 1 only while an AC fail or over-temperature persists: an OVP or foldback
  shutdown is what OUT 1 recovers from (the OUT command and the fault table say so), whether
  or not OUT 0 came first.
- Foldback trips after FOLD_DELAY (an estimate) plus FBD x 0.1 s of uninterrupted CC.
- PC above 105 % of the rated current, OVP above the model's maximum and UVL above its maximum
  answer C05; a query given an argument answers C03. Settings not yet sent read back in the
  five-digit format. RST also clears latched OVP and foldback bits.
- AC fail is a sag the control circuit rides through: the unit keeps answering. A full power
  loss is a link fault (no_reply) on the server.
- 7.7.3 SAV stores the settings (output, PV, PC, OVP, UVL, foldback, auto-restart, remote mode)
  in the "last settings" memory and RCL recalls them (those of power-on until a SAV); `\\` repeats
  the last command, answering what it answers; MDAV? answers 0 (no multi-drop option); MS? answers
  1: a unit alone is its own master (the manual gives 1-4 for a master, 0 for a slave; that a
  standalone unit reads 1 is the twin's reading).
Not modelled: service requests (`!nn`), global commands (GRST, GPV, ...), backspace, the
front panel (LOC does not block serial settings here), the rear
J1 connector (SO, OFF and ENA bits stay 0), remote sensing, output slew and ripple (settings act
at once). No list mode and no watchdog, as on the real supply: programs are timed by the host.
"""
import re
from dataclasses import dataclass

from .fjh_world import FJHWorld

AC, OTP, FOLD, OVP = 2, 4, 8, 16  # FLT? bits; SO 32, OFF 64 and ENA 128 (J1, front panel) stay 0
CV, CC, NFLT, FLT, AST, FDE, LCL = 1, 2, 4, 8, 16, 32, 128
STATUS_EVENTS = CV | CC | NFLT | FLT | LCL  # AST and FDE have no event bit
SHUTDOWN = AC | OTP | FOLD | OVP  # faults that hold the output off
PERSISTENT = AC | OTP  # cleared only when their cause goes away
FOLD_DELAY = 0.25  # s, the standard foldback delay (an estimate)
REMOTE = {"0": "LOC", "LOC": "LOC", "1": "REM", "REM": "REM", "2": "LLO", "LLO": "LLO"}
SWITCH = {"0": False, "OFF": False, "1": True, "ON": True}
_NUMBER = re.compile(r"\+?(\d+\.?\d*|\.\d+)")


class _Refused(Exception):
    """Answered with an error code instead of OK."""

    def __init__(self, code: str):
        self.code = code


@dataclass(frozen=True)
class Rating:
    """A model's ratings; defaults from the GEN60-55 rows of the programming range tables."""

    volts: float = 60.0
    amps: float = 55.0
    ovp_min: float = 5.0
    ovp_max: float = 66.0
    uvl_max: float = 57.0

    @property
    def model(self) -> str:
        return f"GEN{self.volts:g}-{self.amps:g}"


def _checksum(text: str) -> str:
    return f"{sum(text.encode('ascii', 'replace')) % 256:02X}"


def _fixed(value: float, full_scale: float, digits: int = 5) -> str:
    """`value` in `digits` digits, as many before the point as `full_scale` needs (60 V: 05.123)."""
    whole = len(str(int(full_scale)))
    decimals = max(0, digits - whole)
    width = whole + 1 + decimals if decimals else whole
    return f"{value:0{width}.{decimals}f}"


def _number(argument: str, high: float = float("inf")) -> float:
    if not argument:
        raise _Refused("C02")
    if len(argument) > 12 or not _NUMBER.fullmatch(argument):
        raise _Refused("C03")
    value = float(argument)
    if value > high:
        raise _Refused("C05")
    return value


def _integer(argument: str, high: int) -> int:
    if not argument:
        raise _Refused("C02")
    if not argument.isdigit():
        raise _Refused("C03")
    if int(argument) > high:
        raise _Refused("C05")
    return int(argument)


def _choice(argument: str, table: dict):
    if not argument:
        raise _Refused("C02")
    if argument not in table:
        raise _Refused("C03")
    return table[argument]


def _register(argument: str) -> int:
    if not argument:
        raise _Refused("C02")
    if not re.fullmatch(r"[0-9A-F]{1,2}", argument):
        raise _Refused("C03")
    return int(argument, 16)


def _nothing(argument: str) -> None:
    if argument:
        raise _Refused("C03")


class GenesysTwin:
    """One Genesys unit at ADR `address`, the electrical source of the world's sample."""

    terminator = b"\r"

    def __init__(self, world: FJHWorld, address: int = 6, baudrate: int = 9600,
                 rating: Rating = Rating(), serial: str = "SIM0001"):
        self.world, self.address, self.baudrate, self.rating = world, address, baudrate, rating
        self.serial = serial
        self.selected = False  # no unit answers before its first ADR
        self.received = 0  # messages that reached the unit at its baud rate
        self.faults = 0
        self.fena = self.feve = self.sena = self.seve = 0
        self.fold_steps = 0  # FBD, kept through RST (it lives in the unit's EEPROM)
        self.constant_current = False
        self.cc_since: float | None = None
        self.reset()
        self._saved = self._settings()  # the "last settings" memory, as at power-on
        self._last_command = ""  # what \\ repeats
        self._last_faults, self._last_status = 0, self._status()
        world.source = self

    def reset(self) -> None:
        """RST (7.7.3): a safe and known state."""
        v, a = self.rating.volts, self.rating.amps
        self.pv, self.pv_text = 0.0, _fixed(0, v)
        self.pc, self.pc_text = 0.0, _fixed(0, a)
        self.ovp, self.ovp_text = self.rating.ovp_max, _fixed(self.rating.ovp_max, v, 4)
        self.uvl, self.uvl_text = 0.0, _fixed(0, v, 4)
        self.output = self.fold = self.auto_restart = False
        self.remote = "REM"
        self.faults &= ~(FOLD | OVP)

    # --- fault injection -------------------------------------------------------------------
    FAULTS = ("ovp", "over_temperature", "ac_fail", "recover")

    def inject(self, fault: str) -> None:
        """Fault injection: "ovp" (an over-voltage trip, e.g. from a load transient),
        "over_temperature" or "ac_fail" (both hold the output off until "recover", when their
        cause goes away)."""
        with self.world.lock:
            self.world.advance()
            if fault == "recover":
                if self.faults & PERSISTENT and not self.auto_restart:
                    self.output = False  # safe-start: stays off until OUT 1
                self.faults &= ~PERSISTENT
            else:
                self.faults |= {"ovp": OVP, "over_temperature": OTP, "ac_fail": AC}[fault]
            self._update_events()

    # --- the world's view (ElectricalSource) -----------------------------------------------
    def _delivering(self) -> bool:
        return self.output and not self.faults & SHUTDOWN

    def drive(self, t: float) -> tuple[bool, float, float]:
        return self._delivering(), self.pv, self.pc

    def _fold_time(self) -> float:
        return self.cc_since + FOLD_DELAY + 0.1 * self.fold_steps

    def next_change(self, t: float) -> float:
        if self.fold and self.cc_since is not None:
            return self._fold_time()
        return float("inf")

    def observe(self, t: float, volts: float, amps: float, constant_current: bool) -> None:
        delivering = self._delivering()
        if delivering and volts > self.ovp:
            self.faults |= OVP
        in_cc = delivering and constant_current
        self.cc_since = (t if self.cc_since is None else self.cc_since) if in_cc else None
        if self.fold and in_cc and t >= self._fold_time():
            self.faults |= FOLD
            self.cc_since = None
        self.constant_current = constant_current
        self._update_events()

    # --- registers (7.11) ------------------------------------------------------------------
    def _status(self) -> int:
        bits = (CC if self.constant_current else CV) if self._delivering() else 0
        bits |= 0 if self.faults & self.fena else NFLT
        bits |= FLT if self.feve else 0
        bits |= (AST if self.auto_restart else 0) | (FDE if self.fold else 0)
        return bits | (LCL if self.remote == "LOC" else 0)

    def _update_events(self) -> None:
        self.feve |= self.faults & ~self._last_faults & self.fena
        self._last_faults = self.faults
        status = self._status()
        self.seve |= status & ~self._last_status & self.sena & STATUS_EVENTS
        self._last_status = status

    # --- protocol (7.5-7.7) ----------------------------------------------------------------
    def handle(self, message: bytes) -> bytes | None:
        self.received += 1
        with self.world.lock:
            self.world.advance()
            reply = self._answer(message.decode("ascii", "replace").strip())
            self._update_events()
        return None if reply is None else (reply + "\r").encode("ascii", "replace")

    def _answer(self, text: str) -> str | None:
        body, checksum = text, None
        if "$" in text:
            body, _, checksum = text.rpartition("$")
        valid = checksum is None or checksum.upper() == _checksum(body)
        word, _, argument = body.upper().partition(" ")
        argument = argument.strip()
        reply = self._adr(argument) if valid and word == "ADR" else None
        if not self.selected:
            return None
        if valid and word == "\\":  # repeat the last command (7.7.3)
            word, _, argument = self._last_command.partition(" ")
        elif valid:
            self._last_command = f"{word} {argument}"
        if reply is None:
            reply = self._execute(word, argument) if valid else "C04"
        return reply if checksum is None else f"{reply}${_checksum(reply)}"

    def _adr(self, argument: str) -> str:
        try:
            unit = _integer(argument, 30)
        except _Refused as refused:
            return refused.code  # heard only if this unit is the one selected
        self.selected = unit == self.address
        return "OK"

    def _execute(self, word: str, argument: str) -> str:
        if not word:
            return "OK"
        if not re.fullmatch(r"[A-Z]+\??", word):
            return "C01"
        handler = getattr(self, "_cmd_" + word.lower().replace("?", "_q"), None)
        if handler is None:
            return "C01"
        try:
            if word.endswith("?"):
                _nothing(argument)
            return handler(argument) or "OK"
        except _Refused as refused:
            return refused.code

    def _v(self, value: float, digits: int = 5) -> str:
        return _fixed(value, self.rating.volts, digits)

    def _a(self, value: float) -> str:
        return _fixed(value, self.rating.amps)

    # initialization and identification (7.7.3, 7.7.4)
    def _cmd_cls(self, argument):
        _nothing(argument)
        self.feve = self.seve = 0

    def _cmd_rst(self, argument):
        _nothing(argument)
        self.reset()

    def _settings(self) -> dict:
        return {k: getattr(self, k) for k in ("pv", "pv_text", "pc", "pc_text", "ovp", "ovp_text", "uvl", "uvl_text",
                                                "output", "fold", "auto_restart", "remote")}

    def _cmd_sav(self, argument):
        _nothing(argument)
        self._saved = self._settings()

    def _cmd_rcl(self, argument):
        _nothing(argument)
        for key, value in self._saved.items():
            setattr(self, key, value)

    def _cmd_mdav_q(self, argument):
        return "0"

    def _cmd_ms_q(self, argument):
        return "1"

    def _cmd_rmt(self, argument):
        self.remote = _choice(argument, REMOTE)

    def _cmd_rmt_q(self, argument):
        return self.remote

    def _cmd_idn_q(self, argument):
        return f"LAMBDA,{self.rating.model}"

    def _cmd_rev_q(self, argument):
        return "quenchlab twin 1.0"

    def _cmd_sn_q(self, argument):
        return self.serial

    def _cmd_date_q(self, argument):
        return "2024/01/15"

    # output (7.7.5)
    def _cmd_pv(self, argument):
        volts = _number(argument)
        if volts > 1.05 * self.rating.volts or volts > 0.95 * self.ovp:
            raise _Refused("E01")
        if volts < self.uvl:
            raise _Refused("E02")
        self.pv, self.pv_text = volts, argument

    def _cmd_pv_q(self, argument):
        return self.pv_text

    def _cmd_mv_q(self, argument):
        return self._v(self.world.volts)

    def _cmd_pc(self, argument):
        self.pc = _number(argument, 1.05 * self.rating.amps)
        self.pc_text = argument

    def _cmd_pc_q(self, argument):
        return self.pc_text

    def _cmd_mc_q(self, argument):
        return self._a(self.world.amps)

    def _cmd_dvc_q(self, argument):
        w = self.world
        return ",".join((self._v(w.volts), self._v(self.pv), self._a(w.amps), self._a(self.pc),
                         self._v(self.ovp, 4), self._v(self.uvl, 4)))

    def _cmd_stt_q(self, argument):
        w = self.world
        return (f"MV({self._v(w.volts)}),PV({self.pv_text}),MC({self._a(w.amps)}),PC({self.pc_text}),"
                f"SR({self._status():02X}),FR({self.faults:02X})")

    def _cmd_mode_q(self, argument):
        if not self._delivering():
            return "OFF"
        return "CC" if self.constant_current else "CV"

    def _cmd_out(self, argument):
        on = _choice(argument, SWITCH)
        if on:
            if self.faults & PERSISTENT:
                raise _Refused("E07")
            self.faults &= ~(FOLD | OVP)
        self.output = on

    def _cmd_out_q(self, argument):
        return "ON" if self.output else "OFF"

    # protection (7.7.5)
    def _cmd_ovp(self, argument):
        volts = _number(argument, self.rating.ovp_max)
        if volts < max(1.05 * self.pv, self.rating.ovp_min):
            raise _Refused("E04")
        self.ovp, self.ovp_text = volts, argument

    def _cmd_ovp_q(self, argument):
        return self.ovp_text

    def _cmd_ovm(self, argument):
        _nothing(argument)
        self.ovp, self.ovp_text = self.rating.ovp_max, self._v(self.rating.ovp_max, 4)

    def _cmd_uvl(self, argument):
        volts = _number(argument, self.rating.uvl_max)
        if volts > self.pv:
            raise _Refused("E06")
        self.uvl, self.uvl_text = volts, argument

    def _cmd_uvl_q(self, argument):
        return self.uvl_text

    def _cmd_fld(self, argument):
        self.fold = _choice(argument, SWITCH)
        self.cc_since = None  # the delay counts from arming
        if not self.fold:
            self.faults &= ~FOLD

    def _cmd_fld_q(self, argument):
        return "ON" if self.fold else "OFF"

    def _cmd_fbd(self, argument):
        self.fold_steps = _integer(argument, 255)

    def _cmd_fbd_q(self, argument):
        return str(self.fold_steps)

    def _cmd_fbdrst(self, argument):
        _nothing(argument)
        self.fold_steps = 0

    def _cmd_ast(self, argument):
        self.auto_restart = _choice(argument, SWITCH)

    def _cmd_ast_q(self, argument):
        return "ON" if self.auto_restart else "OFF"

    # registers (7.11)
    def _cmd_stat_q(self, argument):
        return f"{self._status():02X}"

    def _cmd_flt_q(self, argument):
        return f"{self.faults:02X}"

    def _cmd_sena(self, argument):
        self.sena = _register(argument)

    def _cmd_sena_q(self, argument):
        return f"{self.sena:02X}"

    def _cmd_fena(self, argument):
        self.fena = _register(argument)

    def _cmd_fena_q(self, argument):
        return f"{self.fena:02X}"

    def _cmd_seve_q(self, argument):
        events, self.seve = self.seve, 0
        return f"{events:02X}"

    def _cmd_feve_q(self, argument):
        events, self.feve = self.feve, 0
        return f"{events:02X}"
