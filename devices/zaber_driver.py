"""Driver for a Zaber motion controller on the Zaber ASCII protocol: the sample collector's XY
stage (two axes of one controller) and the digital output that drives its shutter.

From the "Zaber ASCII Protocol Manual" (firmware 7):
- "Command message format": `/` device axis id command data, ended by LF here. Axis 0 is the
  whole device. Each command carries a message ID (0-99), which the reply echoes, and a
  checksum `:XX` ("Checksumming": the LRC of the bytes between `/` and `:`, so that their sum
  plus the checksum is 0 mod 256; the device verifies it on every command that has one).
- "Reply message format": `@` device axis id OK|RJ IDLE|BUSY flag data [`:XX`], ended by CRLF;
  RJ names its reason in the data (BADDATA, BADCOMMAND, ...); the flag is the highest-priority
  warning of the axis (of every axis at device scope), `--` for none.
- "Warning flags": F* are faults (FS stall, FQ encoder error, ...), latched until
  `warnings clear`; WR: no reference position, so `move abs` is rejected until `home`.
- Commands used: the empty command (status), `home`, `move abs`, `stop`, `get`, `warnings`,
  `warnings clear`, `io get do n`, `io set do n 0|1`.
- "Physical units": positions in microsteps; maxspeed in microsteps/s x 1.6384, accel in
  microsteps/s^2 x 1.6384 / 10000. Millimetres are the device layer's business.
Each reply is matched to its command by its message ID: an alert, an info line or a late
reply to an earlier try is skipped, and a reply that fails its checksum or does not parse is
discarded, so the transport resends the command (bounded) as after a timeout. A move is not
started while a fault is latched.
"""
import itertools
import re
import time
from typing import NamedTuple

from quenchlab.errors import InstrumentError

from .transport import SerialTransport

POLL = 0.002  # s between status polls while a move runs
_REPLY = re.compile(r"@(\d{2}) (\d+) (\d+|--) (OK|RJ) (IDLE|BUSY) (\S\S) (.*)")
REASONS = {"BADDATA": "a value out of range, e.g. a target outside the travel",
           "BADCOMMAND": "no such command or setting", "BADAXIS": "no such axis",
           "DEVICEONLY": "a whole-device command sent to one axis",
           "BADMESSAGEID": "a message ID outside 0-99", "STATUSBUSY": "busy",
           "PARKED": "the axis is parked", "AGAIN": "not now: send it again"}
FAULTS = {"FS": "stalled (FS): the axis stopped itself; free it, then clear_warnings()",
          "FQ": "encoder error (FQ): the position may be wrong; clear_warnings() and home",
          "FD": "driver disabled (FD): it overheated; let it cool",
          "FE": "limit sensor error (FE): a limit cannot be reached; check the stage"}


def lrc(text: str) -> str:
    """The checksum of `text`: two hex digits that bring its byte sum to 0 mod 256."""
    return f"{-sum(text.encode('ascii')) & 0xFF:02X}"


class Reply(NamedTuple):
    axis: int
    accepted: bool  # OK, not RJ
    busy: bool
    flag: str  # highest-priority warning, "--" for none
    data: str


class ZaberStage:
    """The axes of one controller at `device` on a serial line."""

    def __init__(self, address: str, device: int = 1, baudrate: int = 115200, name: str = "collector",
                 timeout: float = 0.5, retries: int = 2):
        self.io = SerialTransport(name, address, baudrate=baudrate, terminator=b"\n",
                                  timeout=timeout, retries=retries)
        self.name, self.address, self.device = name, address, device
        self._ids = itertools.cycle(range(100))

    # --- messages ----------------------------------------------------------------------------
    def _reply(self, received: bytes, ident: int) -> Reply | None:
        """This command's reply among the complete lines received, if it came whole and intact."""
        for raw in received.split(b"\r\n")[:-1]:
            text = raw.decode("ascii", "replace")
            content, marked, checksum = text.partition(":")
            match = _REPLY.fullmatch(content)
            if not match or (marked and checksum != lrc(content[1:])):
                continue
            device, axis, echoed, flag, status, warning, data = match.groups()
            if int(device) == self.device and echoed == f"{ident:02d}":
                return Reply(int(axis), flag == "OK", status == "BUSY", warning, data)
        return None

    def ask(self, command: str, axis: int = 0) -> tuple[str, Reply]:
        """Send `command` to `axis` (0: the whole device); return what was sent and the reply."""
        with self.io.lock:
            ident = next(self._ids)
            body = f"{self.device} {axis} {ident:02d} {command}".rstrip()
            received = self.io.exchange(f"/{body}:{lrc(body)}\n".encode("ascii"),
                                        lambda got: self._reply(got, ident) is not None, "/" + body)
            return "/" + body, self._reply(received, ident)

    def command(self, command: str, axis: int = 0) -> Reply:
        """`ask`, raising an InstrumentError if the device rejects the command."""
        sent, reply = self.ask(command, axis)
        if reply.accepted:
            return reply
        if reply.flag == "WR" and reply.data == "BADDATA":
            problem = "not homed: home the collector first"
        else:
            problem = f"rejected it: {reply.data} ({REASONS.get(reply.data, 'see the manual')})"
        raise InstrumentError(self.name, self.address, sent, problem)

    def get(self, setting: str, axis: int = 0) -> str:
        return self.command(f"get {setting}", axis).data

    def _number(self, setting: str, axis: int) -> int:
        value = self.get(setting, axis)
        if not re.fullmatch(r"-?\d+", value):
            raise InstrumentError(self.name, self.address, f"get {setting}", f"answered {value!r}, not a number")
        return int(value)

    # --- motion ------------------------------------------------------------------------------
    def position(self, axis: int) -> int:
        """Microsteps, as the axis reads now (also while it moves)."""
        return self._number("pos", axis)

    def positions(self) -> tuple[int, ...]:
        """Every axis's position, in one query at device scope."""
        return tuple(int(value) for value in self.get("pos").split())

    def maxspeed(self, axis: int) -> int:
        return self._number("maxspeed", axis)

    def accel(self, axis: int) -> int:
        return self._number("accel", axis)

    def travel(self, axis: int) -> int:
        """limit.max: the farthest position a move may target, in microsteps (limit.min is 0)."""
        return self._number("limit.max", axis)

    def busy(self, axis: int = 0) -> bool:
        """Whether the axis (0: any axis) moves; raises on a latched fault flag."""
        sent, reply = self.ask("", axis)
        if reply.flag.startswith("F"):
            raise InstrumentError(self.name, self.address, sent, FAULTS.get(reply.flag, f"fault {reply.flag}"))
        return reply.busy

    def home(self, axis: int = 0) -> None:
        """Start homing the axis (0: every axis); does not wait."""
        self.command("home", axis)

    def move_absolute(self, axis: int, microsteps: int) -> None:
        """Start a move of the axis to `microsteps`; does not wait. Refused while a fault is latched."""
        self.busy(axis)
        self.command(f"move abs {int(microsteps)}", axis)

    def wait_idle(self, axis: int = 0, timeout: float = 30.0) -> None:
        """Poll until the axis (0: every axis) is idle; wall-clock `timeout` in seconds."""
        deadline = time.monotonic() + timeout
        while self.busy(axis):
            if time.monotonic() > deadline:
                raise InstrumentError(self.name, self.address, f"/{self.device} {axis}",
                                      f"still moving after {timeout:g} s, at {self.get('pos', axis)} microsteps")
            time.sleep(POLL)

    def stop(self, axis: int = 0) -> None:
        """Decelerate the axis (0: every axis) to a stop."""
        self.command("stop", axis)

    def warnings(self, axis: int = 0) -> set[str]:
        """The active warning flags of the axis (0: of the device and every axis)."""
        return set(self.command("warnings", axis).data.split()[1:])

    def clear_warnings(self) -> None:
        """Clear the latched warnings (FS, FQ ...) of every axis; NI stays until a move is sent while idle."""
        self.command("warnings clear")

    # --- digital outputs ---------------------------------------------------------------------
    def output(self, channel: int) -> bool:
        return self.command(f"io get do {channel}").data == "1"

    def set_output(self, channel: int, on: bool) -> None:
        """Switch digital output `channel` and confirm it reads back."""
        self.command(f"io set do {channel} {int(on)}")
        if self.output(channel) != on:
            raise InstrumentError(self.name, self.address, f"io set do {channel} {int(on)}",
                                  f"output {channel} still reads {'on' if not on else 'off'}")

    def close(self) -> None:
        self.io.close()
