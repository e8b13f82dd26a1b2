"""Twin of a Teledyne SSI (SSI America) HPLC piston pump on an RS-232 line, 9600 baud.

Written from the SSI America operator's manual 90-2581 Rev B, appendix A.1.3 "Command
Interpreter" (the Series III class command set):
- two-letter commands in any case, one per line; every reply ends with `/`; an invalid command
  answers `Er/`. `#` clears the command buffer, which also clears itself one second after the
  last character of an unfinished command. The pump speaks only when asked.
- `RU` run, `ST` stop -> `OK/`. The flow, by head (5, 10 or 40 mL/min): `FLxxx` and `FOxxxx`
  in hundredths of mL/min on a 5 or 10 mL/min head (001-999, 0001-1000), in tenths on a 40
  mL/min head (001-399, 0001-0400); `FMxxxx` in thousandths (0001-9999).
- `PR` -> `OK,<psi>/`; `CC` -> `OK,<psi>,<flow>/`; `ID` -> `OK,v<x.xx> SR3O firmware/`;
  `CS` -> `OK,<flow>,<upper>,<lower>,PSI,<head: 0 standard, 1 macro>,<run 0|1>,<0: pressure
  board present>/`.
- `UPxxxx`: upper pressure limit in psi, four digits, at most 6000 (steel head), at least the
  lower limit + 100; `LPxxxx`: lower limit, 0 to the upper limit - 100.
- `RF` -> `OK,<stall>,<upper>,<lower>/`, 1 for a latched fault; a fault stops the pump.

Where the manual is silent, the twin chooses:
- CR ends a command (surrounding blanks and LF are ignored); an empty line and `#` get no reply.
- An argument must have exactly its digits (FL 3, the others 4) and lie in range, else `Er/`.
  FM is taken on 5 and 10 mL/min heads only (the manual's further "1000-1200 for 10.00-12.00
  mL/min" contradicts its own range and is not modelled).
- Power-up: flow 0, stopped, no fault, limits `upper` and `lower`; ID's revision is made up.
- CC and CS report the set flow, running or not (CS's run field tells which), with the decimals
  of the format that set it; pressures in whole psi.
- Pressure: first order on reactor time towards resistance x flow (0 when stopped), time
  constant R x C, C the compliance of the head and pulse damper: `volume` x 1e-4 per psi (an
  estimate: the damper's diaphragm, not the liquid, dominates). Defaults 60 psi per mL/min
  (300 psi at 5 mL/min) and 2 mL: 0.7 s, ten times that with a clogged nozzle.
- A running pump latches the upper fault when the pressure exceeds the upper limit, and the
  lower fault when it falls below a nonzero lower limit it had reached (so a start from 0 psi
  does not trip). `RU` clears every latched fault and runs: the manual names no command that
  clears one (SF sets one, RE resets the whole configuration).
- No host watchdog (the manual has none): the pump keeps pumping however long the host is silent.
- The world reads the flow as of the last command (a sample and hold of at most its STEP).
- Not modelled, answered `Er/`: SF, KD, KE, PC, RC, HT, PI, RE.
Fault hooks: `stall()` (the motor stalls: stall fault), `clog()` (the nozzle's resistance x
CLOG: the pressure climbs to the upper limit), `unclog()`.
"""
import math
from dataclasses import dataclass, replace

HEADS = (5.0, 10.0, 40.0)  # mL/min
MAX_PRESSURE = 6000  # psi, steel head
LIMIT_GAP = 100  # psi between the limits
COMPLIANCE = 1e-4  # mL stored per mL of head and damper volume per psi
CLOG = 10.0  # resistance factor of a clogged nozzle
CLEAR_AFTER = 1.0  # s after which an unfinished command is dropped
FIRMWARE = "v2.04 SR3O firmware"


class _Invalid(Exception):
    """Answered `Er/`."""


def _digits(argument: str, count: int) -> int:
    if len(argument) != count or not argument.isdigit():
        raise _Invalid
    return int(argument)


@dataclass(frozen=True)
class _Course:
    """The pressure from `start` (reactor s): first order from `psi` towards `target` with time
    constant `tau`; the motor pushes `flow` mL/min until `trip`, when `fault` latches."""

    start: float
    psi: float
    target: float
    tau: float
    flow: float
    trip: float = math.inf
    fault: str | None = None

    def psi_at(self, t: float) -> float:
        return self.target + (self.psi - self.target) * math.exp(-(t - self.start) / self.tau)

    def reaching(self, level: float) -> float:
        """When the pressure passes `level`, which lies between its start and its target."""
        return self.start + self.tau * math.log((self.target - self.psi) / (self.target - level))


class SsiTwin:
    """The pump pushing liquid into the world's line; served by a PtyServer."""

    terminator = b"\r"
    FAULTS = ("stall", "clog")

    def __init__(self, world, *, head_max_flow: float = 10.0, baudrate: int = 9600, resistance: float = 60.0,
                 upper: int = 1500, lower: int = 0, volume: float = 2.0):
        if head_max_flow not in HEADS:
            raise ValueError(f"an SSI head delivers 5, 10 or 40 mL/min, not {head_max_flow}")
        if not (resistance > 0 and volume > 0 and 0 <= lower and lower + LIMIT_GAP <= upper <= MAX_PRESSURE):
            raise ValueError("resistance and volume must be > 0, and 0 <= lower, lower + 100 <= upper <= 6000")
        self.world, self.baudrate = world, baudrate
        self.head_max_flow, self.resistance, self.volume = head_max_flow, resistance, volume
        self.upper, self.lower = upper, lower
        self.step = 0.01 if head_max_flow <= 10 else 0.1  # mL/min per count of FL and FO
        self.flow, self.decimals = 0.0, round(-math.log10(self.step))
        self.running, self.clogged = False, False
        self.latched: set[str] = set()
        self.received = 0  # commands handled
        self._pending: tuple[int, float] | None = None  # (bytes, arrival) of an unfinished command
        self._course = _Course(world.clock.now(), 0.0, 0.0, self._tau(), 0.0)
        world.pump = self

    # --- physics, lazily on the reactor clock ----------------------------------------------
    def _resistance(self) -> float:
        return self.resistance * (CLOG if self.clogged else 1.0)  # psi per mL/min

    def _tau(self) -> float:
        return self._resistance() * self.volume * COMPLIANCE * 60  # s

    def flow_at(self, t: float) -> float:
        """mL/min pushed into the line at reactor time t (0 stopped or faulted)."""
        course = self._course
        return course.flow if t < course.trip else 0.0

    def _settle(self, now: float) -> None:
        """Latch a limit the pressure crossed by `now`: the pump stopped there."""
        course = self._course
        if course.trip <= now:
            self.running = False
            self.latched.add(course.fault)
            self._steer(course.trip)

    def _steer(self, t: float) -> None:
        """A new course from t, for the state as it is now."""
        pushing = self.running and not self.latched
        flow = self.flow if pushing else 0.0
        course = _Course(t, self._course.psi_at(t), self._resistance() * flow, self._tau(), flow)
        trip = self._trip(course) if pushing else None
        self._course = replace(course, trip=trip[0], fault=trip[1]) if trip else course

    def _trip(self, course: _Course) -> tuple[float, str] | None:
        """When, and by which limit, a running pump on `course` latches a fault."""
        if course.psi > self.upper:
            return course.start, "upper"
        if course.target > self.upper:
            return course.reaching(self.upper), "upper"
        if course.psi >= self.lower > course.target:  # a lower limit it had reached
            return course.reaching(self.lower), "lower"
        return None

    # --- fault hooks -------------------------------------------------------------------------
    def _alter(self, change) -> None:
        with self.world.lock:
            self.world.advance()
            now = self.world.clock.now()
            self._settle(now)
            change()
            self._steer(now)

    def stall(self) -> None:
        """The motor stalls: the pump stops with the stall fault latched."""
        def change():
            self.running = False
            self.latched.add("stall")
        self._alter(change)

    def clog(self) -> None:
        """The nozzle clogs: CLOG times the resistance, the pressure climbs."""
        self._alter(lambda: setattr(self, "clogged", True))

    def unclog(self) -> None:
        self._alter(lambda: setattr(self, "clogged", False))

    def inject(self, fault: str) -> None:
        """Fault injection: "stall" or "clog"."""
        {"stall": self.stall, "clog": self.clog}[fault]()

    # --- protocol ----------------------------------------------------------------------------
    def split(self, buffer: bytes) -> tuple[list[bytes], bytes]:
        """Commands up to CR; `#` drops what came before it, as does a second's silence."""
        now = self.world.clock.now()
        if self._pending and now - self._pending[1] > CLEAR_AFTER:
            buffer = buffer[self._pending[0]:]
        messages = []
        while (cut := min((i for i in (buffer.find(b"\r"), buffer.find(b"#")) if i >= 0), default=-1)) >= 0:
            if buffer[cut:cut + 1] == b"\r":
                messages.append(buffer[:cut])
            buffer = buffer[cut + 1:]
        self._pending = (len(buffer), now) if buffer else None
        return messages, buffer

    def handle(self, message: bytes) -> bytes | None:
        text = message.decode("ascii", "replace").strip().upper()
        if not text:
            return None
        self.received += 1
        with self.world.lock:
            self.world.advance()
            now = self.world.clock.now()
            self._settle(now)
            handler = getattr(self, f"_cmd_{text[:2].lower()}", None) if text[:2].isalpha() else None
            try:
                if handler is None:
                    raise _Invalid
                reply = handler(text[2:], now)
            except _Invalid:
                reply = "Er"
            return (reply + "/").encode("ascii")

    # --- command set (A.1.3) -----------------------------------------------------------------
    @staticmethod
    def _bare(argument: str) -> None:
        """Commands without an argument refuse one."""
        if argument:
            raise _Invalid

    def _psi(self, argument: str, now: float) -> int:
        self._bare(argument)
        return round(self._course.psi_at(now))

    def _flow_text(self) -> str:
        return f"{self.flow:.{self.decimals}f}"

    def _cmd_ru(self, argument: str, now: float) -> str:
        self._bare(argument)
        self.running = True
        self.latched.clear()
        self._steer(now)
        return "OK"

    def _cmd_st(self, argument: str, now: float) -> str:
        self._bare(argument)
        self.running = False
        self._steer(now)
        return "OK"

    def _set_flow(self, argument: str, digits: int, step: float, now: float) -> str:
        count = _digits(argument, digits)
        if not 1 <= count or count * step > self.head_max_flow + 1e-9:
            raise _Invalid
        self.flow, self.decimals = round(count * step, 3), round(-math.log10(step))
        self._steer(now)
        return "OK"

    def _cmd_fl(self, argument: str, now: float) -> str:
        return self._set_flow(argument, 3, self.step, now)

    def _cmd_fo(self, argument: str, now: float) -> str:
        return self._set_flow(argument, 4, self.step, now)

    def _cmd_fm(self, argument: str, now: float) -> str:
        if self.head_max_flow > 10:
            raise _Invalid
        return self._set_flow(argument, 4, 0.001, now)

    def _cmd_pr(self, argument: str, now: float) -> str:
        return f"OK,{self._psi(argument, now)}"

    def _cmd_cc(self, argument: str, now: float) -> str:
        return f"OK,{self._psi(argument, now)},{self._flow_text()}"

    def _cmd_cs(self, argument: str, now: float) -> str:
        self._bare(argument)
        head = 0 if self.head_max_flow <= 10 else 1
        return f"OK,{self._flow_text()},{self.upper},{self.lower},PSI,{head},{int(self.running)},0"

    def _cmd_id(self, argument: str, now: float) -> str:
        self._bare(argument)
        return "OK," + FIRMWARE

    def _cmd_up(self, argument: str, now: float) -> str:
        value = _digits(argument, 4)
        if not self.lower + LIMIT_GAP <= value <= MAX_PRESSURE:
            raise _Invalid
        self.upper = value
        self._steer(now)
        return "OK"

    def _cmd_lp(self, argument: str, now: float) -> str:
        value = _digits(argument, 4)
        if not value <= self.upper - LIMIT_GAP:
            raise _Invalid
        self.lower = value
        self._steer(now)
        return "OK"

    def _cmd_rf(self, argument: str, now: float) -> str:
        self._bare(argument)
        return "OK," + ",".join(str(int(fault in self.latched)) for fault in ("stall", "upper", "lower"))
