"""Twin of a VICI Valco universal electric actuator (EUH/EUD/EUT) turning a multiposition valve.

Written from the "Universal Electric Actuator" instruction manual, section "Optional Serial
Interface" (serial command table and command reference): 9600 baud 8N1 unless SB sets another
rate, CR ends commands and replies. Settings answer nothing (the command reference shows a
reply only for queries); queries answer their mnemonic and the value (`CP` -> `CPnn`,
`NP` -> `NPnn`, `AM` -> `AM3`, `SM` -> `SMA`, `CNT` -> `CNTnnnnn`).
`GOnn` goes to position nn by the route SM sets (A shortest, F toward higher numbers, R toward
lower), `CWnn`/`CCnn` force the direction, `GO`/`CW`/`CC` alone step one position, `HM` goes
to position 1 (ignored if already there). `NPnn` sets the number of positions (even, 2-40).
`IFMn` sets the reply to motion commands (0 none). `IDx` (0-9, A-Z) makes the unit answer only
commands prefixed with x or with the broadcast `*`, and prefix its replies with x; `ID*` clears
it. `VR` answers several lines (`VR2`: the serial board's firmware). `CNT` counts the positions
moved. `DELn` sets the delimiter that ends commands and replies (1 CR, the default; 2 LF; 3
CRLF). `LGn`: 1 answers as the older microelectric actuators did, "Position is = n" to CP and
"NP = n" to NP (those two shapes are what clients written for LG1 parse; the other replies are
kept). `/?` lists the commands, one per line.

Where the manual is silent, the twin chooses and says so here:
- Timing: a move of n positions lasts n * step_time + SETTLE. The 0.12 s + 0.02 s defaults
  make one 36-degree step (a 10-position valve) last 140 ms, what the switching-time table of
  VICI's two-position microelectric actuator manual gives for its ED motor at 36 degrees (EH
  70 ms, ET 330 ms); the universal manual's multiposition table was not at hand, and each
  further position is assumed to cost step_time (the motor does not stop in between).
- While moving, CP reports the last position the rotor passed; the target only once settled.
  `port_at` is None for the whole move (the rotor only brushes the ports it passes).
- A motion command received while moving is ignored.
- IFM starts at 1 (the factory setting is not given). At IFM1/IFM2 a motion command is
  answered at once with the position at that moment (`CPnn`): it never claims an arrival. The
  manual does not print the basic (1) and extended (2) replies; the twin answers both alike.
- An unknown command, a bad argument or a position outside 1-NP answers "Bad command".
- Not modelled, answered "Bad command": the two-position modes (AM1, AM2 and their TO, TT, DT,
  LRN), SO and STAT.
Fault hooks: `stick()` (the motor stops responding, the unit still answers), `unstick()`.
"""
import math
import string
import threading
from dataclasses import dataclass, replace

STEP_TIME = 0.12  # s per position
SETTLE = 0.02  # s, once per move
BAD = "Bad command"
BAUD_CODES = {"48": 4800, "96": 9600, "192": 19200, "384": 38400, "576": 57600, "1152": 115200}
FIRMWARE = ("VICI Valco Universal Actuator", "Model EUD, multiposition", "Main PCB firmware 1.10",
            "Serial PCB firmware 1.02", "quenchlab twin")
MNEMONICS = ("CNT", "IFM", "DEL", "AM", "CC", "CP", "CW", "GO", "HM", "ID", "LG", "NP", "SB", "SM", "VR", "/?")
DELIMITERS = {"1": b"\r", "2": b"\n", "3": b"\r\n"}
COMMANDS = ("AM   mode (3: multiposition)", "CC   counterclockwise, CCnn to position nn", "CNT  positions moved",
            "CP   current position", "CW   clockwise, CWnn to position nn", "DEL  delimiter: 1 CR, 2 LF, 3 CRLF",
            "GO   next position, GOnn to position nn", "HM   home: position 1", "ID   device ID, ID* none",
            "IFM  reply to motion commands: 0 none, 1 basic, 2 extended", "LG   replies: 0 short, 1 legacy",
            "NP   number of positions", "SB   baud rate / 100", "SM   route: A shortest, F up, R down",
            "VR   firmware")
MOTIONS = {"CC", "CW", "GO", "HM"}
IDS = string.digits + string.ascii_uppercase
HISTORY = 64  # moves kept for port_at(t) in the recent past


def _wrap(position: int, count: int) -> int:
    return (position - 1) % count + 1


def _number(text: str) -> int:
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


def _nothing(text: str) -> None:
    if text:
        raise ValueError(text)


@dataclass(frozen=True)
class Move:
    """One rotation: leaves `origin` at reactor time `start`, `steps` positions in `direction`."""

    start: float
    origin: int
    steps: int
    direction: int  # +1 toward higher position numbers, -1 toward lower
    count: int  # positions of the valve
    step_time: float
    halted: float = math.inf  # reactor time the motor stopped responding, if it did

    @property
    def end(self) -> float:
        return self.start + self.steps * self.step_time + SETTLE

    @property
    def target(self) -> int:
        return _wrap(self.origin + self.direction * self.steps, self.count)

    def reached(self, t: float) -> int:
        """The last position the rotor reached by reactor time t."""
        t = min(t, self.halted)
        if t >= self.end:
            return self.target
        passed = min(self.steps - 1, max(0, int((t - self.start) // self.step_time)))
        return _wrap(self.origin + self.direction * passed, self.count)

    def port_at(self, t: float) -> int | None:
        return self.target if t >= self.end and self.halted >= self.end else None


class ViciTwin:
    """The actuator in multiposition mode, its rotor moving on the world's reactor clock."""

    terminator = b"\r"

    def __init__(self, world, positions: int = 10, baudrate: int = 9600,
                 step_time: float = STEP_TIME, device_id: str | None = None):
        if positions % 2 or not 2 <= positions <= 40:
            raise ValueError(f"a valve has an even number of positions within 2-40, not {positions}")
        self.world = world
        self.positions = positions
        self.baudrate = baudrate
        self.step_time = step_time
        self.device_id = None if device_id is None else str(device_id).upper()
        self.direction = "A"  # SM: shortest route
        self.reply_mode = 1  # IFM
        self.terminator = b"\r"  # DEL
        self.legacy = False  # LG
        self.cycles = 0  # CNT
        self.stuck = False
        self.received = 0  # messages that reached the unit at its baud rate
        self._moves: list[Move] = []
        self._lock = threading.RLock()

    # --- the rotor -------------------------------------------------------------------------
    def _now(self) -> float:
        return self.world.clock.now()

    def _move_at(self, t: float) -> Move | None:
        return next((move for move in reversed(self._moves) if move.start <= t), None)

    def _position(self, t: float) -> int:
        move = self._move_at(t)
        if move is not None:
            return move.reached(t)
        return self._moves[0].origin if self._moves else 1

    def port_at(self, t: float) -> int | None:
        """The port connected at reactor time t; None while the rotor is between ports."""
        with self._lock:
            move = self._move_at(t)
            if move is not None:
                return move.port_at(t)
            return self._moves[0].origin if self._moves else 1

    def _busy(self, t: float) -> bool:
        return bool(self._moves) and self._moves[-1].halted == math.inf and t < self._moves[-1].end

    def _rotate(self, steps: int, direction: int) -> str | None:
        now = self._now()
        if steps and not self.stuck and not self._busy(now):
            self._moves.append(Move(now, self._position(now), steps, direction, self.positions, self.step_time))
            del self._moves[:-HISTORY]
            self.cycles = (self.cycles + steps) % 65536
        return None if self.reply_mode == 0 else f"CP{self._position(now):02d}"

    def _go(self, target: int, rule: str) -> str | None:
        here = self._position(self._now())
        up, down = (target - here) % self.positions, (here - target) % self.positions
        if rule == "F" or (rule == "A" and up <= down):
            return self._rotate(up, +1)
        return self._rotate(down, -1)

    def _target(self, text: str) -> int:
        target = _number(text)
        if not 1 <= target <= self.positions:
            raise ValueError(text)
        return target

    # --- fault hooks -----------------------------------------------------------------------
    def stick(self) -> None:
        """The motor stops responding: a move in progress stops where it is and no move starts;
        the unit still answers, and CP keeps the last position reached."""
        with self._lock:
            self.stuck = True
            now = self._now()
            if self._busy(now):
                self._moves[-1] = replace(self._moves[-1], halted=now)

    def unstick(self) -> None:
        with self._lock:
            self.stuck = False

    FAULTS = ("stuck", "free")

    def inject(self, fault: str) -> None:
        """Fault injection: "stuck" (the motor stops obeying) or "free"."""
        {"stuck": self.stick, "free": self.unstick}[fault]()

    # --- protocol --------------------------------------------------------------------------
    def handle(self, message: bytes) -> bytes | None:
        self.received += 1
        body = self._addressed(message.decode("ascii", "replace").strip().upper())
        if not body:
            return None
        mnemonic = next((m for m in MNEMONICS if body.startswith(m)), None)
        if mnemonic in MOTIONS:
            self.world.advance()  # the world integrates up to the switch with the old port
        with self._lock:
            end = self.terminator  # a DEL command is answered with the delimiter it came with
            try:
                handler = "_cmd_list" if mnemonic == "/?" else f"_cmd_{mnemonic.lower()}" if mnemonic else None
                answer = getattr(self, handler)(body[len(mnemonic):]) if handler else BAD
            except ValueError:
                answer = BAD
        if answer is None:
            return None
        lines = answer.split("\r")
        prefix = self.device_id or ""
        return b"".join((prefix + line).encode("ascii") + end for line in lines)

    def _addressed(self, text: str) -> str | None:
        """The command without its device ID prefix, or None if it is meant for another unit."""
        if text.startswith("*"):
            return text[1:]
        if self.device_id is None:
            return text
        return text[1:] if text.startswith(self.device_id) else None

    def _cmd_cp(self, argument: str) -> str:
        _nothing(argument)
        here = self._position(self._now())
        return f"Position is = {here}" if self.legacy else f"CP{here:02d}"

    def _cmd_go(self, argument: str) -> str | None:
        if not argument:
            return self._rotate(1, -1 if self.direction == "R" else +1)
        return self._go(self._target(argument), self.direction)

    def _cmd_cw(self, argument: str) -> str | None:
        return self._go(self._target(argument), "F") if argument else self._rotate(1, +1)

    def _cmd_cc(self, argument: str) -> str | None:
        return self._go(self._target(argument), "R") if argument else self._rotate(1, -1)

    def _cmd_hm(self, argument: str) -> str | None:
        _nothing(argument)
        return self._go(1, self.direction)

    def _cmd_np(self, argument: str) -> str | None:
        if not argument:
            return f"NP = {self.positions}" if self.legacy else f"NP{self.positions:02d}"
        count = _number(argument)
        now = self._now()
        if count % 2 or not 2 <= count <= 40 or self._busy(now) or self._position(now) > count:
            raise ValueError(argument)
        self.positions = count
        return None

    def _cmd_am(self, argument: str) -> str | None:
        if argument not in ("", "3"):
            raise ValueError(argument)  # two-position modes are not modelled
        return "AM3" if not argument else None

    def _cmd_sm(self, argument: str) -> str | None:
        if not argument:
            return f"SM{self.direction}"
        if argument not in ("A", "F", "R"):
            raise ValueError(argument)
        self.direction = argument
        return None

    def _cmd_ifm(self, argument: str) -> str | None:
        if not argument:
            return f"IFM{self.reply_mode}"
        if argument not in ("0", "1", "2"):
            raise ValueError(argument)
        self.reply_mode = int(argument)
        return None

    def _cmd_id(self, argument: str) -> None:
        if argument == "*":
            self.device_id = None
        elif len(argument) == 1 and argument in IDS:
            self.device_id = argument
        else:
            raise ValueError(argument)

    def _cmd_sb(self, argument: str) -> str | None:
        if not argument:
            return f"SB{self.baudrate // 100}"
        if argument not in BAUD_CODES:
            raise ValueError(argument)
        self.baudrate = BAUD_CODES[argument]
        return None

    def _cmd_vr(self, argument: str) -> str:
        if argument == "2":
            return FIRMWARE[3]
        _nothing(argument)
        return "\r".join(FIRMWARE)

    def _cmd_del(self, argument: str) -> str | None:
        if not argument:
            return "DEL" + next(k for k, v in DELIMITERS.items() if v == self.terminator)
        if argument not in DELIMITERS:
            raise ValueError(argument)
        self.terminator = DELIMITERS[argument]
        return None

    def _cmd_lg(self, argument: str) -> str | None:
        if not argument:
            return f"LG{int(self.legacy)}"
        if argument not in ("0", "1"):
            raise ValueError(argument)
        self.legacy = argument == "1"
        return None

    def _cmd_list(self, argument: str) -> str:
        _nothing(argument)
        return "\r".join(COMMANDS)

    def _cmd_cnt(self, argument: str) -> str | None:
        if not argument:
            return f"CNT{self.cycles:05d}"
        value = _number(argument)
        if value > 65535:
            raise ValueError(argument)
        self.cycles = value
        return None
