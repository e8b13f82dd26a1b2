"""Twin of a New Era NE-1000 syringe pump (also sold as WPI Aladdin) on an RS-232 line.

Written from the "NE-1000 Multi-Phaser Syringe Pump User Manual" (New Era Pump Systems,
publication 1200-01), chapter 10 "RS-232 communications":
- 10.2.2 basic mode: <command data> CR; spaces and control characters are stripped and the text
  upper-cased; the answer is STX <response data> ETX.
- 10.2.3 safe mode (after `SAF n`, n = 1-255 s): STX <length> <command data> <CRC-16> ETX both
  ways; <length> counts the bytes left in the packet including itself; CCITT CRC (polynomial
  0x1021, initial value 0, as the manual's framed `SAF0` with CRC 0x55 0x43 shows), high byte
  first. A packet is dropped if 0.5 s pass between two of its bytes. With no valid packet for
  n s the pump stops with alarm T, and the timer waits for the next valid packet. The framed
  `SAF0` returns to basic mode. Plain text is not a packet: it is ignored in safe mode.
- 10.2.4 <response data> = two-digit address, status (I W X S P T U) or alarm A?<type>, then
  data or ?<error> (`?` unknown command, ?NA, ?OOR, ?COM bad packet, ?IGN).
- 10.3 an alarm is acknowledged by being reported in the reply to the next valid command,
  which is not executed. The pump powers up with alarm R (reset).
- 10.4 (one-phase program): VER, DIA (0.1-50 mm, only while stopped; sets the volume units,
  uL at or below 14 mm, and clears the dispensed volumes), DIR INF|WDR|REV (while pumping only
  without a volume target), RAT <float>[UM|MM|UH|MH] (no unit change while pumping; new rate
  at once), VOL <float>|UL|ML (0 = continuous), DIS, CLD INF|WDR, RUN, STP (pause; a second
  STP stops and clears the phase), PUR (maximum rate until STP), SAF; no command = status query.
- Specifications: at most 1699 mL/h with a 60 mL syringe (26.59 mm) and at least 0.73 uL/h
  with a 1 mL syringe (4.699 mm), i.e. fixed limits on the plunger speed.
- 10.3 alarm S, motor stalled: infusing, the plunger stalls at the end of the syringe's travel
  (the twin holds `content` mL in the barrel), registered once the pusher has pressed
  TRAVEL_SLACK past it (a target that ends within it completes); withdrawing has no such end the pump knows of:
  past the syringe's capacity the plunger draws air (the world's liquid path, sim/liquid_path.py).
Not modelled: multi-phase programs, keypad, TTL I/O, `*` system commands, and the auto-alarm
packets of safe mode (the serial server only answers).
"""
import binascii
import math
import re
from dataclasses import dataclass

STX, ETX = b"\x02", b"\x03"
BYTE_GAP = 0.5  # s between two bytes of a packet before it is dropped
TRAVEL_SLACK = 0.02  # mL of travel the pusher presses past the syringe's end before the stall registers
RATE_UNITS = {"UM": 1e-3, "MM": 1.0, "UH": 1 / 60000, "MH": 1 / 60}  # mL/min per unit
VOLUME_UNITS = {"UL": 1e-3, "ML": 1.0}


def _area(diameter: float) -> float:
    return math.pi * diameter ** 2 / 4  # mm^2


MAX_SPEED = 1699e3 / 60 / _area(26.59)  # mm/min of plunger travel
MIN_SPEED = 0.73 / 60 / _area(4.699)
_COMMAND = re.compile(r"(?P<address>\d{1,2})?(?P<command>[A-Z]{3})?(?P<argument>.*)")
_FLOAT = re.compile(r"(?=\.?\d)\d*\.?\d*")
_UNPRINTED = re.compile("[^\x21-\x7e\ufffd]")  # controls and blanks: what the pump skips


def _crc(data: bytes) -> bytes:
    """CCITT CRC-16, polynomial 0x1021, initial value 0 (binascii's CRC-CCITT), high byte first."""
    return binascii.crc_hqx(data, 0).to_bytes(2, "big")


class _Refused(Exception):
    """Answered with ?<code> after the status."""

    def __init__(self, code: str = ""):
        self.code = code


def _number(text: str) -> float:
    """A <float> of the legend (10.2.1): at most 4 digits, at most 3 after the point."""
    if not _FLOAT.fullmatch(text):
        raise _Refused()
    decimals = len(text.partition(".")[2])
    if sum(c.isdigit() for c in text) > 4 or decimals > 3:
        raise _Refused("OOR")
    return float(text)


def _show(value: float) -> str:
    """`value` written as the pump writes numbers (4 digits; saturates at 9999)."""
    value = min(value, 9999.0)
    for decimals in (3, 2, 1):
        text = f"{value:.{decimals}f}"
        if sum(map(str.isdigit, text)) <= 4:
            return text
    return f"{value:.0f}"


@dataclass(frozen=True)
class _Run:
    start: float  # reactor s
    rate: float  # mL/min
    direction: str
    purge: bool
    end: float  # when the volume target is reached (inf without one)
    empty: float = math.inf  # when an infusing plunger meets the end of the syringe's travel


class NE1000Twin:
    """The pump pushing liquid into the world's line; served by a PtyServer."""

    terminator = b"\r"

    def __init__(self, world, address: int = 0, baudrate: int = 9600, diameter: float = 26.59,
                 content: float = 0.0):
        self.world, self.address, self.baudrate = world, address, baudrate
        self.diameter = diameter
        self.content = content  # mL in the barrel (the plunger's position), up to the present run
        self.volume_units = "UL" if diameter <= 14.0 else "ML"
        self.rate_value, self.rate_units = 0.0, "MM"  # RUN answers ?OOR until a rate is set
        self.direction = "INF"
        self.target = 0.0  # mL to dispense, 0 = continuous
        self.infused = self.withdrawn = 0.0  # mL, up to the start of the present run
        self.phase_done = 0.0  # mL dispensed in the paused phase
        self.safe = 0  # safe-mode timeout, s (0 = basic mode)
        self.alarm: str | None = "R"  # just powered on
        self._state = "S"  # S or P while the motor is idle
        self._run: _Run | None = None
        self._heard: float | None = None  # last valid packet, while the safe-mode timer runs
        self._pending: tuple[int, float] | None = None  # (bytes, arrival) of an unfinished packet
        world.pump = self

    # --- physics, lazily on the reactor clock ----------------------------------------------
    def _limits(self) -> tuple[float, float]:
        """(min, max) rate in mL/min for the syringe."""
        area = _area(self.diameter) / 1000  # mL per mm of travel
        return MIN_SPEED * area, MAX_SPEED * area

    def _deadline(self) -> float:
        return self._heard + self.safe if self.safe and self._heard is not None else math.inf

    def flow_at(self, t: float) -> float:
        """mL/min at reactor time t: pushed out (> 0) or drawn in (< 0)."""
        run = self._run
        if run is None or not run.start <= t < min(run.end, run.empty, self._deadline()):
            return 0.0
        return run.rate if run.direction == "INF" else -run.rate

    def _settle(self, now: float) -> None:
        """Apply what happened by itself up to `now`: volume target reached, host silent."""
        deadline = self._deadline()
        if self._run and self._run.empty <= min(now, deadline, self._run.end):
            self._halt(self._run.empty, "S")
            self.alarm = "S"  # the end of the syringe's travel
        if self._run and self._run.end <= min(now, deadline):
            self._halt(self._run.end, "S")
        if deadline <= now:
            if self._run:
                self._halt(deadline, "S")
            self.alarm, self._heard = "T", None

    def _start(self, now: float, purge: bool = False) -> None:
        rate = self._limits()[1] if purge else self.rate_value * RATE_UNITS[self.rate_units]
        remaining = math.inf if purge or not self.target else self.target - self.phase_done
        if remaining <= 0:
            self._state, self.phase_done = "S", 0.0
            return
        empty = now + (self.content + TRAVEL_SLACK) * 60 / rate if self.direction == "INF" else math.inf
        self._run = _Run(now, rate, self.direction, purge, now + remaining * 60 / rate, empty)

    def _halt(self, t: float, state: str) -> None:
        """Stop the motor at t, into state P (phase kept) or S (phase cleared)."""
        run, self._run, self._state = self._run, None, state
        volume = run.rate * (t - run.start) / 60
        if run.direction == "INF":
            self.infused += volume
            self.content = max(0.0, self.content - volume)
        else:
            self.withdrawn += volume
            self.content += volume
        if not run.purge:
            self.phase_done = self.phase_done + volume if state == "P" else 0.0

    def _rebase(self, now: float, change) -> None:
        """Apply `change` to a moving pump without losing what it has pumped so far."""
        run = self._run
        if run:
            self._halt(now, "P")
        change()
        if run:
            self._start(now, run.purge)

    def _status(self) -> str:
        if self._run is None:
            return self._state
        return "X" if self._run.purge else "I" if self._run.direction == "INF" else "W"

    # --- fault hooks and views for tests -----------------------------------------------------
    def stall(self) -> None:
        """The motor stalls: pumping stops and alarm S latches until reported (10.3)."""
        with self.world.lock:
            self.world.advance()
            now = self.world.clock.now()
            self._settle(now)
            if self._run:
                self._halt(now, "S")
            self.alarm = "S"

    def slip(self, volume: float = 5.0) -> None:
        """The plunger slips `volume` mL toward the end of its travel (a worn half-nut), its liquid
        spilled: the counters no longer tell what the syringe holds."""
        with self.world.lock:
            self.world.advance()
            now = self.world.clock.now()
            self._settle(now)
            self._rebase(now, lambda: setattr(self, "content", max(0.0, self.content - volume)))
            path = self.world.path
            path.content = max(0.0, getattr(path, "content", 0.0) - volume)

    FAULTS = ("stall", "slip")

    def inject(self, fault: str) -> None:
        """Fault injection: "stall" (the motor stalls, alarm S), "slip" (5 mL of plunger travel lost)."""
        {"stall": self.stall, "slip": self.slip}[fault]()

    @property
    def status(self) -> str:
        """The status letter the pump would report now."""
        with self.world.lock:
            self._settle(self.world.clock.now())
            return self._status()

    # --- protocol ----------------------------------------------------------------------------
    def split(self, buffer: bytes) -> tuple[list[bytes], bytes]:
        """Packets by their length byte (a CRC byte may be CR or ETX), text up to CR."""
        now = self.world.clock.now()
        if self._pending and now - self._pending[1] > BYTE_GAP:
            buffer = buffer[self._pending[0]:]  # an unfinished packet timed out
        messages = []
        while buffer:
            if buffer[:1] == STX:
                if len(buffer) < 2 or len(buffer) < 1 + buffer[1]:
                    break
                size = max(2, 1 + buffer[1])
                messages.append(buffer[:size])
                buffer = buffer[size:]
                continue
            ends = [i for i in (buffer.find(b"\r"), buffer.find(STX)) if i >= 0]
            if not ends:
                break
            cut = min(ends)
            if buffer[cut:cut + 1] == b"\r":
                messages.append(buffer[:cut])
                cut += 1
            buffer = buffer[cut:]  # text cut short by a packet is noise
        self._pending = (len(buffer), now) if buffer[:1] == STX else None
        return messages, buffer

    def handle(self, message: bytes) -> bytes | None:
        with self.world.lock:
            self.world.advance()
            now = self.world.clock.now()
            self._settle(now)
            if message[:1] == STX:
                data = self._unframe(message)
                if data is None:
                    return self._encode(self._status() + "?COM")
            elif self.safe:
                return None  # not a packet: ignored in safe mode
            else:
                data = message
            text = _UNPRINTED.sub("", data.decode("ascii", "replace"))
            match = _COMMAND.fullmatch(text.upper())
            if match["address"] and int(match["address"]) != self.address:
                return None
            if self.safe:
                self._heard = now  # a valid packet restarts the timer
            if self.alarm:
                alarm, self.alarm = self.alarm, None
                return self._encode(f"A?{alarm}")
            return self._encode(self._status_after(match["command"], match["argument"], now))

    def _status_after(self, command: str | None, argument: str, now: float) -> str:
        handler = getattr(self, f"_cmd_{command.lower()}", None) if command else None
        try:
            if handler is None and (command or argument):
                raise _Refused()
            data = handler(argument, now) if handler else ""
        except _Refused as refusal:
            data = "?" + refusal.code
        return self._status() + data

    @staticmethod
    def _unframe(packet: bytes) -> bytes | None:
        if len(packet) < 5 or packet[1] != len(packet) - 1 or packet[-1:] != ETX:
            return None
        data = packet[2:-3]
        return data if _crc(data) == packet[-3:-1] else None

    def _encode(self, body: str) -> bytes:
        data = f"{self.address:02d}{body}".encode("ascii")
        if self.safe:
            return STX + bytes([len(data) + 4]) + data + _crc(data) + ETX
        return STX + data + ETX

    # --- command set (10.4) ------------------------------------------------------------------
    def _require_stopped(self) -> None:
        if self._run or self._state != "S":
            raise _Refused("NA")

    def _cmd_ver(self, argument: str, now: float) -> str:
        return "NE1000V3.928"

    def _cmd_dia(self, argument: str, now: float) -> str:
        if not argument:
            return _show(self.diameter)
        value = _number(argument)
        self._require_stopped()
        if not 0.1 <= value <= 50.0:
            raise _Refused("OOR")
        self.diameter = value
        self.volume_units = "UL" if value <= 14.0 else "ML"
        self.infused = self.withdrawn = 0.0
        return ""

    def _cmd_rat(self, argument: str, now: float) -> str:
        if not argument:
            return _show(self.rate_value) + self.rate_units
        match = re.fullmatch(r"(.*?)(UM|MM|UH|MH)?", argument)
        value, units = _number(match[1]), match[2] or self.rate_units
        if self._run and units != self.rate_units:
            raise _Refused("NA")
        low, high = self._limits()
        if not low <= value * RATE_UNITS[units] <= high:
            raise _Refused("OOR")

        def change():
            self.rate_value, self.rate_units = value, units
        self._rebase(now, change)
        return ""

    def _cmd_dir(self, argument: str, now: float) -> str:
        if not argument:
            return self.direction
        if argument not in ("INF", "WDR", "REV"):
            raise _Refused()
        if self._run and (self.target or self._run.purge):
            raise _Refused("NA")
        new = argument if argument != "REV" else "WDR" if self.direction == "INF" else "INF"
        self._rebase(now, lambda: setattr(self, "direction", new))
        return ""

    def _cmd_vol(self, argument: str, now: float) -> str:
        if not argument:
            return _show(self.target / VOLUME_UNITS[self.volume_units]) + self.volume_units
        if self._run:
            raise _Refused("NA")
        if argument in VOLUME_UNITS:
            self.volume_units = argument
        else:
            self.target = _number(argument) * VOLUME_UNITS[self.volume_units]
        return ""

    def _cmd_dis(self, argument: str, now: float) -> str:
        moved = self._run.rate * (now - self._run.start) / 60 if self._run else 0.0
        infusing = self._run is not None and self._run.direction == "INF"
        infused = self.infused + (moved if infusing else 0.0)
        withdrawn = self.withdrawn + (0.0 if infusing else moved)
        unit = VOLUME_UNITS[self.volume_units]
        return f"I{_show(infused / unit)}W{_show(withdrawn / unit)}{self.volume_units}"

    def _cmd_cld(self, argument: str, now: float) -> str:
        if argument not in ("INF", "WDR"):
            raise _Refused()
        self._rebase(now, lambda: setattr(self, "infused" if argument == "INF" else "withdrawn", 0.0))
        return ""

    def _cmd_run(self, argument: str, now: float) -> str:
        if argument not in ("", "1"):
            raise _Refused("OOR")  # the program has one phase
        if self._run:
            return ""
        low, high = self._limits()
        if not low <= self.rate_value * RATE_UNITS[self.rate_units] <= high:
            raise _Refused("OOR")
        if self._state == "S":
            self.phase_done = 0.0
        self._start(now)
        return ""

    def _cmd_stp(self, argument: str, now: float) -> str:
        if self._run:
            self._halt(now, "S" if self._run.purge else "P")
        elif self._state == "P":
            self._state, self.phase_done = "S", 0.0
        return ""

    def _cmd_pur(self, argument: str, now: float) -> str:
        self._require_stopped()
        self._start(now, purge=True)
        return ""

    def _cmd_saf(self, argument: str, now: float) -> str:
        if not argument:
            return str(self.safe)
        if not argument.isdigit() or int(argument) > 255:
            raise _Refused("OOR")
        self.safe, self._heard = int(argument), now
        return ""
