"""Driver for the New Era NE-1000 syringe pump (also sold as WPI Aladdin) on RS-232, 8N1.

From the "NE-1000 Multi-Phaser Syringe Pump User Manual" (New Era Pump Systems, publication
1200-01), chapter 10 "RS-232 communications":
- 10.2.1 syntax legend: a <float> has at most 4 digits plus a decimal point, at most 3 of them
  after the point; rates are in UM|MM|UH|MH (uL/min, mL/min, uL/h, mL/h), volumes in UL|ML.
- 10.2.2 basic mode: <command data> CR to the pump, STX <response data> ETX back.
- 10.2.3 safe mode (`SAF n`, n = 1-255 s): STX <length> <command data> <CRC-16> ETX both ways.
  <length> counts the bytes left in the packet including itself (data + 4); the CRC is the
  16-bit CCITT CRC of the data, high byte first, with polynomial 0x1021 and initial value 0
  (the manual's framed `SAF0`, which returns the pump to basic mode, carries 0x55 0x43). The
  pump stops with alarm T when no valid packet arrives for n seconds: whoever drives this
  driver must talk to the pump more often than that (`status()` is the cheapest packet).
- 10.2.4 <response data> = two-digit address, a status (I W X S P T U) or an alarm A?<type>,
  then data or ?<error>; a packet without a command is a status query.
- 10.3 an alarm is acknowledged by reporting it in the reply to the next command, which is not
  executed; a pump that was just powered on reports alarm R once.
- 10.4 command set: VER, DIA, DIR, RAT, VOL (sets either the value or the units), DIS
  (`I<float>W<float><units>`), CLD INF|WDR, RUN, STP (pauses a running program; a second STP
  stops it and clears the phase), PUR, SAF.

`SAF` is always sent framed, so the driver can take the pump from either mode. A reply's framing
is read from the byte after STX: a length byte (below 0x20 for every reply of this command set)
in safe mode, the first digit of the address in basic mode.
"""
import binascii
import math
import re

from quenchlab.errors import InstrumentError

from .transport import Request, SerialTransport, Steps

STX, ETX, CR = b"\x02", b"\x03", b"\r"
STATUS = {"I": "infusing", "W": "withdrawing", "X": "purging", "S": "stopped", "P": "paused",
          "T": "timed pause", "U": "waiting for user"}
RUNNING = ("infusing", "withdrawing", "purging")
ALARMS = {"R": "power was interrupted (pump reset)", "S": "motor stalled",
          "T": "safe-mode communications timeout", "E": "pumping program error",
          "O": "pumping program phase out of range"}
ERRORS = {"": "command not recognised", "NA": "command not applicable now", "OOR": "data out of range",
          "COM": "invalid communications packet", "IGN": "command ignored (new phase starting)"}
RATE_UNITS = {"MM": 1.0, "UM": 1e-3, "MH": 1 / 60, "UH": 1 / 60000}  # mL/min per unit, preferred first
VOLUME_UNITS = {"ML": 1.0, "UL": 1e-3}  # mL per unit
TOLERANCE = 5e-3  # largest relative change a number may suffer to fit 4 digits
_REPLY = re.compile(r"(\d\d)(A\?[A-Z]|[A-Z])(.*)")


def crc16(data: bytes) -> int:
    """CCITT CRC-16, polynomial 0x1021, initial value 0 (10.2.3)."""
    return binascii.crc_hqx(data, 0)


def frame(data: bytes) -> bytes:
    """A safe-mode packet: STX, length, data, CRC (high byte first), ETX."""
    return STX + bytes([len(data) + 4]) + data + crc16(data).to_bytes(2, "big") + ETX


def unframe(packet: bytes) -> bytes:
    """The data of a safe-mode packet; ValueError if its length, ETX or CRC is wrong."""
    if len(packet) < 5 or packet[:1] != STX or packet[1] != len(packet) - 1 or packet[-1:] != ETX:
        raise ValueError(f"malformed safe-mode packet {packet!r}")
    data = packet[2:-3]
    if crc16(data).to_bytes(2, "big") != packet[-3:-1]:
        raise ValueError(f"CRC mismatch in {packet!r}")
    return data


def reply_complete(received: bytes) -> bool:
    """True once `received` holds a whole reply: counted by its length byte in safe mode (its
    CRC may contain ETX or CR), up to ETX in basic mode."""
    start = received.find(STX)
    if start < 0 or len(received) < start + 2:
        return False
    if received[start + 1] < 0x20:
        return len(received) >= start + 1 + received[start + 1]
    return ETX in received[start + 1:]


def unpack(received: bytes) -> str:
    """The <response data> of a complete reply, in either framing."""
    start = received.find(STX)
    if received[start + 1] < 0x20:
        data = unframe(received[start:start + 1 + received[start + 1]])
    else:
        data = received[start + 1:received.index(ETX, start + 1)]
    return data.decode("ascii")


def parse_reply(text: str) -> tuple[int, str, str]:
    """(address, status letter or `A?<type>` alarm, data) of a reply's <response data>."""
    match = _REPLY.fullmatch(text)
    if match is None:
        raise ValueError(f"not a pump reply: {text!r}")
    return int(match[1]), match[2], match[3]


def format_number(value: float) -> str:
    """`value` as a pump <float> (at most 4 digits, 3 decimals), keeping as many decimals as
    fit; ValueError if it cannot be written within TOLERANCE (e.g. 12345, 0.0001)."""
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"the pump takes finite numbers >= 0, not {value}")
    for decimals in (3, 2, 1, 0):
        text = f"{value:.{decimals}f}"
        if sum(c.isdigit() for c in text) <= 4:
            break
    else:
        raise ValueError(f"{value} needs more than 4 digits")
    if abs(float(text) - value) > TOLERANCE * value:
        raise ValueError(f"{value} cannot be written in 4 digits (closest: {text})")
    return text


def fit_units(value: float, units: dict[str, float]) -> tuple[str, str]:
    """(number, unit) writing `value` (in the base unit) most exactly, then with the finest last
    digit; remaining ties go to the first unit."""
    best = None
    for unit, size in units.items():
        try:
            text = format_number(value / size)
        except ValueError:
            continue
        step = 10.0 ** -len(text.partition(".")[2]) * size
        key = abs(float(text) * size - value), step
        if best is None or key < best[0]:
            best = key, text, unit
    if best is None:
        raise ValueError(f"{value} cannot be written in 4 digits in any of {list(units)}")
    return best[1], best[2]


class PumpAlarm(InstrumentError):
    """The pump reported an alarm (10.3); reporting it acknowledged it. `liquid`: the alarm
    belongs to the liquid being pumped, not to the pump or its link. A stall (S) is the plunger
    that cannot move: a line blocked by this liquid (a precipitate, a viscous solution) or an
    empty syringe; it is taken for the blockage, the sample's, because stopping, going back
    to the solvent and pumping again tells the two apart (an empty syringe or a line that
    stays blocked stalls again there). A rate out of range (O) is this sample's program.
    A reset (R, power lost), a safe-mode timeout (T, the host fell silent) and a program error
    (E) are the line's."""

    LIQUID = ("S", "O")

    def __init__(self, instrument: str, address: str, command: str, pump: int, alarm: str):
        self.alarm = alarm
        self.liquid = alarm in self.LIQUID
        super().__init__(instrument, address, command,
                         f"pump {pump} raised alarm {alarm} ({ALARMS.get(alarm, 'unknown alarm')})")


class NE1000:
    """One pump at network address `pump_address` (0-99) on a serial line. `safe_mode` is the
    silence timeout in seconds (1-255) the driver enables at connect, or 0 for basic mode."""

    def __init__(self, address: str, pump_address: int = 0, name: str = "pump", baudrate: int = 9600,
                 safe_mode: int = 10, timeout: float = 0.3, retries: int = 2):
        if not 0 <= pump_address <= 99:
            raise ValueError(f"pump address must be 0-99, got {pump_address}")
        self.io = SerialTransport(name, address, baudrate=baudrate, terminator=CR, timeout=timeout,
                                  retries=retries)
        self.name, self.address, self.pump_address = name, address, pump_address
        self.safe_mode = 0
        self.last_status = "unknown"
        try:
            self._connect(safe_mode)
        except BaseException:
            self.io.close()
            raise

    def _connect(self, safe_mode: int) -> None:
        try:
            self._set_mode(safe_mode)
        except PumpAlarm as alarm:
            if alarm.alarm not in ("R", "T"):
                raise
            # a pump just powered on reports alarm R once; one left in safe mode by the last
            # session reports its timeout, T (10.3): both are acknowledged by being reported
            self._set_mode(safe_mode)

    def _set_mode(self, seconds: int) -> None:
        if seconds:
            self.enable_safe_mode(seconds)
        else:
            self.disable_safe_mode()

    # --- one exchange -------------------------------------------------------------------
    def _command(self, command: str, framed: bool | None = None) -> tuple[str, str]:
        return self.io.run(self._command_steps(command, framed))

    def _command_steps(self, command: str, framed: bool | None = None) -> Steps:
        """Send `command` to this pump; return (status letter, data) or raise on an alarm or
        error. The framing is that of the mode the pump is in when the packet goes: the line
        is held from here (steps run holding it)."""
        text = f"{self.pump_address}{command}"
        framed = bool(self.safe_mode) if framed is None else framed
        packet = frame(text.encode("ascii")) if framed else text.encode("ascii") + CR
        received = yield Request(packet, reply_complete, text)
        try:
            address, status, data = parse_reply(unpack(received))
        except (ValueError, UnicodeDecodeError) as error:
            raise InstrumentError(self.name, self.address, text, f"garbled reply ({error})") from None
        if address != self.pump_address:
            raise InstrumentError(self.name, self.address, text, f"reply came from pump {address}")
        if status.startswith("A?"):
            raise PumpAlarm(self.name, self.address, text, address, status[2:])
        if status not in STATUS:
            raise InstrumentError(self.name, self.address, text, f"unknown status {status!r}")
        if data.startswith("?"):
            problem = f"pump {address} answered {data} ({ERRORS.get(data[1:], 'unknown error')})"
            raise InstrumentError(self.name, self.address, text, problem)
        self.last_status = STATUS[status]  # every reply carries the pump's status (10.2.4)
        return status, data

    def _query(self, command: str) -> str:
        return self._command(command)[1]

    def _reading(self, command: str, pattern: str, units: dict[str, float]) -> tuple[list[float], str]:
        return self.io.run(self._reading_steps(command, pattern, units))

    def _reading_steps(self, command: str, pattern: str, units: dict[str, float]) -> Steps:
        """The numbers and the unit of a reply matching `pattern` (numbers first, unit last)."""
        _, data = yield from self._command_steps(command)
        match = re.fullmatch(pattern, data)
        if match is None or match[match.lastindex] not in units:
            raise InstrumentError(self.name, self.address, f"{self.pump_address}{command}",
                                  f"unexpected reply {data!r}")
        return [float(number) for number in match.groups()[:-1]], match[match.lastindex]

    def _quantity(self, command: str, units: dict[str, float]) -> float:
        """A query answered `<float><units>`, in the base unit of `units`."""
        (number,), unit = self._reading(command, r"([\d.]+)([A-Z]{2})", units)
        return number * units[unit]

    # --- the command table (10.4) -------------------------------------------------------
    def version(self) -> str:
        return self._query("VER")

    def status(self) -> str:
        """What the pump is doing, in words (see STATUS)."""
        return STATUS[self._command("")[0]]

    def diameter(self) -> float:
        """Syringe inside diameter, mm."""
        return float(self._query("DIA"))

    def set_diameter(self, mm: float) -> None:
        """Only while stopped; also sets the volume units and clears the dispensed volumes."""
        self._command(f"DIA{format_number(mm)}")

    def rate(self) -> float:
        """Pumping rate, mL/min."""
        return self._quantity("RAT", RATE_UNITS)

    def set_rate(self, ml_per_min: float) -> None:
        """Pumping rate in mL/min, sent in the unit that writes it best in 4 digits; while
        pumping, in the unit in force (the pump refuses a change of unit then, ?NA). The pump
        answers ?OOR beyond its limits for the syringe."""
        if not ml_per_min > 0:
            raise ValueError(f"rate must be > 0 mL/min, got {ml_per_min} (use stop())")
        with self.io.lock:
            units = RATE_UNITS
            if self.status() in RUNNING:
                unit = self._reading("RAT", r"([\d.]+)([A-Z]{2})", RATE_UNITS)[1]
                units = {unit: RATE_UNITS[unit]}
            number, unit = fit_units(ml_per_min, units)
            self._command(f"RAT{number}{unit}")

    def direction(self) -> str:
        return self._query("DIR")

    def set_direction(self, direction: str) -> None:
        if direction not in ("INF", "WDR"):
            raise ValueError(f"direction must be 'INF' or 'WDR', got {direction!r}")
        self._command(f"DIR{direction}")

    def volume(self) -> float:
        """Volume to be dispensed, mL (0 = pump continuously)."""
        return self._quantity("VOL", VOLUME_UNITS)

    def set_volume(self, ml: float) -> None:
        """Volume to be dispensed in mL (0 = continuous): the units, then the number."""
        number, unit = fit_units(ml, VOLUME_UNITS) if ml else ("0", "ML")
        with self.io.lock:
            self._command(f"VOL{unit}")
            self._command(f"VOL{number}")

    def dispensed(self) -> tuple[float, float]:
        """(infused, withdrawn) volume since the last clear, mL."""
        return self.io.run(self.dispensed_steps())

    def dispensed_steps(self) -> Steps:
        (infused, withdrawn), unit = yield from self._reading_steps("DIS", r"I([\d.]+)W([\d.]+)([A-Z]{2})",
                                                                    VOLUME_UNITS)
        return infused * VOLUME_UNITS[unit], withdrawn * VOLUME_UNITS[unit]

    def clear_dispensed(self) -> None:
        with self.io.lock:
            self._command("CLDINF")
            self._command("CLDWDR")

    def run(self) -> None:
        self._command("RUN")

    def start(self, direction: str, ml_per_min: float, ml: float = 0.0) -> None:
        """Stop, then pump `ml` (0: continuously) in `direction` at `ml_per_min`; the pump stops
        by itself once the volume is dispensed (10.4)."""
        with self.io.lock:
            self.stop()
            self.set_direction(direction)
            self.set_rate(ml_per_min)
            self.set_volume(ml)
            self.run()

    def spray(self, ml_per_min: float) -> None:
        """Infuse continuously at `ml_per_min` (0: stop)."""
        if ml_per_min:
            self.start("INF", ml_per_min)
        else:
            self.stop()

    def purge(self) -> None:
        """Pump at the syringe's maximum rate until stop()."""
        self._command("PUR")

    def stop(self) -> None:
        """Stop pumping and end the program: STP pauses, a second STP stops (10.4). A pending
        alarm is raised instead; every alarm has already stopped the pump."""
        with self.io.lock:
            if self._command("STP")[0] == "P":
                self._command("STP")

    def enable_safe_mode(self, seconds: int) -> None:
        """Framed packets from now on; the pump stops with alarm T after `seconds` of silence."""
        if not (isinstance(seconds, int) and 1 <= seconds <= 255):
            raise ValueError(f"safe-mode timeout must be an integer 1-255 s, got {seconds!r}")
        with self.io.lock:  # no other thread's command between the switch and the framing it asks for
            self._command(f"SAF{seconds}", framed=True)
            self.safe_mode = seconds

    def safe_mode_timeout(self) -> int:
        """The safe-mode timeout the pump holds, s (`SAF` without a value queries it; 0: basic mode)."""
        return int(self._query("SAF"))

    def disable_safe_mode(self) -> None:
        """Back to basic mode with the framed SAF0 of 10.2.2 (answered in basic mode)."""
        with self.io.lock:
            self._command("SAF0", framed=True)
            self.safe_mode = 0

    def close(self) -> None:
        self.io.close()
