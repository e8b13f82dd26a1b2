"""Driver for VICI Valco universal electric actuators (EUH, EUD, EUT) turning a multiposition
selector valve (actuator mode 3).

From the "Universal Electric Actuator" instruction manual, section "Optional Serial Interface"
(serial command table and command reference):
- RS-232, 9600 baud 8N1 unless changed with SB; CR ends every command and reply.
- `CP` answers `CPnn`, the documented multiposition reply (the legacy "Position is = nn" form
  appears only after LG1, which this driver never sends); `NP` answers `NPnn`; `NPnn` sets the
  number of positions (even, 2-40) and answers nothing, so the driver reads it back.
- `GOnn` goes to position nn (shortest route unless SM says otherwise), `HM` to position 1.
  `IFMn` sets the reply to such motion commands; the driver sends `IFM0` before its first
  motion, so a motion is never answered and is confirmed only by polling CP.
- `IDx` makes the unit answer only commands prefixed with x, and prefix its replies with x (as
  logged from real units, e.g. `0CNT10254`): give `device_id` for such units. (quenchlab read
  replies without the prefix until its twin was corrected.)
- `VR` answers several lines; the driver reads FIRMWARE_LINES of them (the manual does not give
  the count: five is what other client software for these actuators reads).
A move takes time, and a stuck or unlearned valve keeps reporting its old position, so `move`
polls CP until the target shows and fails with the last position seen. Any reply not in the
documented form (an unknown command answers an error line instead) raises an InstrumentError.
"""
import string
import time

import serial

from quenchlab.errors import InstrumentError

from .transport import SerialTransport, Steps

FIRMWARE_LINES = 5
POLL = 0.002  # s between CP polls while a move runs
RESEND = 0.5  # s CP may stand still away from the target before GO is sent again (one sent while moving is ignored)
DEVICE_IDS = string.digits + string.ascii_uppercase


class ViciValve:
    """One actuator on a serial line, optionally behind a device ID prefix."""

    def __init__(self, address: str, name: str = "valve", baudrate: int = 9600,
                 device_id: str | int | None = None, timeout: float = 0.5, retries: int = 2):
        self.prefix = "" if device_id is None else str(device_id).upper()
        if self.prefix and (len(self.prefix) > 1 or self.prefix not in DEVICE_IDS):
            raise ValueError(f"a device ID is one character 0-9 or A-Z, not {device_id!r}")
        self.io = SerialTransport(name, address, baudrate=baudrate, parity=serial.PARITY_NONE,
                                  timeout=timeout, retries=retries)
        self.name, self.address = name, address
        self._positions: int | None = None
        self._quiet = False

    def _ask(self, command: str) -> str:
        return self.io.run(self._ask_steps(command))

    def _ask_steps(self, command: str) -> Steps:
        """Send a query and return its value: the reply without the echoed mnemonic."""
        reply = (yield from self.io.query_steps(self.prefix + command)).removeprefix(self.prefix)
        if not reply.startswith(command):
            raise InstrumentError(self.name, self.address, self.prefix + command, f"answered {reply!r}")
        return reply[len(command):]

    def _send(self, command: str) -> None:
        self.io.write(self.prefix + command)

    def _number(self, command: str) -> int:
        return self.io.run(self._number_steps(command))

    def _number_steps(self, command: str) -> Steps:
        value = yield from self._ask_steps(command)
        if not value.isdigit():
            raise InstrumentError(self.name, self.address, self.prefix + command,
                                  f"answered {command + value!r}, not {command}nn (is the actuator in mode AM3?)")
        return int(value)

    def firmware(self) -> str:
        lines = self.io.query(self.prefix + "VR", FIRMWARE_LINES).split("\r")
        return "; ".join(line.strip() for line in lines)

    def identify(self) -> str:
        return self.firmware().split("; ")[0]

    def positions(self) -> int:
        """Number of positions of the valve (NP); remembered after the first query."""
        if self._positions is None:
            self._positions = self._number("NP")
        return self._positions

    def set_positions(self, count: int) -> None:
        if count % 2 or not 2 <= count <= 40:
            raise ValueError(f"a valve has an even number of positions within 2-40, not {count}")
        self._send(f"NP{count}")
        self._positions = None
        if (reported := self.positions()) != count:
            raise InstrumentError(self.name, self.address, f"{self.prefix}NP{count}",
                                  f"still reports {reported} positions")

    def position(self) -> int:
        """The position the actuator reports (CP): the last one reached while it moves."""
        return self._number("CP")

    def position_steps(self) -> Steps:
        return self._number_steps("CP")

    def _motion(self, command: str) -> None:
        if not self._quiet:
            self._send("IFM0")
            self._quiet = True
        self._send(command)

    def go(self, port: int) -> None:
        """Start a move to `port` (shortest route); does not wait for it."""
        count = self.positions()
        if not 1 <= port <= count:
            raise ValueError(f"{self.name} at {self.address}: port {port} is outside 1-{count}")
        self._motion(f"GO{port}")

    def home(self) -> None:
        """Start a move to position 1."""
        self._motion("HM")

    def move(self, port: int, timeout: float = 10.0) -> None:
        """Go to `port` and return once CP reports it; wall-clock `timeout` in seconds. The
        actuator ignores a motion command while it moves (one started by another caller, say):
        GO is sent again once CP has stood still for RESEND s away from the port."""
        self.go(port)
        deadline = time.monotonic() + timeout
        last, still_since = None, time.monotonic()
        while (at := self.position()) != port:
            now = time.monotonic()
            if now > deadline:
                raise InstrumentError(self.name, self.address, f"{self.prefix}GO{port}",
                                      f"did not reach port {port} within {timeout} s; "
                                      f"it still reports position {at} (stuck or unlearned valve?)")
            if at != last:
                last, still_since = at, now
            elif now - still_since > RESEND:
                self.go(port)
                still_since = now
            time.sleep(POLL)

    def close(self) -> None:
        self.io.close()
