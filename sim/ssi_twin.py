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
- `SF` puts the pump in fault mode (FAULT LED) and stops it at once; `KD`/`KE` disable and
  enable the keypad; `PCxx` sets the pressure compensation in hundreds of psi (00-50), `RC`
  -> `OK,<x or xx>/` reads it; `HTx` sets the head type (1/2 steel/plastic 10 mL/min, 3/4
  40 mL/min, 5/6 5 mL/min), stopping the pump and resetting the compensation and the limits;
  the upper limit is at most 5000 psi on a plastic head, 6000 on steel.
- `PI` -> `OK,<flow>,<run>,<compensation>,<head type>,<board 0>,<external mode 0 frequency|1
  voltage>,<started under frequency>,<started under voltage>,<upper fault>,<lower fault>,
  <priming>,<keypad lockout>,<PUMP-RUN in>,<PUMP-STOP in>,<ENABLE in>,0,<stall fault>/` (p. A-4).
- `RE` resets the pump configuration to its power-up state (p. A-4).

Where the manual is silent, the twin chooses:
- CR ends a command (surrounding blanks and LF are ignored); an empty line and `#` get no reply.
- An argument must have exactly its digits (FL 3, the others 4) and lie in range, else `Er/`.
  FM is taken on 5 and 10 mL/min heads only (the manual's further "1000-1200 for 10.00-12.00
  mL/min" contradicts its own range and is not modelled).
- Power-up: flow 0, stopped, no fault, limits `upper` and `lower`, compensation 0, keypad
  enabled (the manual's sentence on KD's power-up default breaks off); ID's revision is made up.
  RE returns to that and clears latched faults; the head type is kept (it is the hardware's).
- HT's text breaks off after "the pressure compensation and pressure lim[its]": the twin resets
  them to their power-up values (the upper one cut to the head's most), and keeps the flow, cut
  to the new head's range and step.
- SF's fault is none of RF's three: RF and PI report 0 for it; the pump stays stopped until RU.
- PI's head type is the HT number (the RH command it refers to is not in the pages at hand);
  no external control, priming or rear-panel input is modelled (their fields read 0).
- Pressure compensation is stored and read back; its effect on the delivered flow is not modelled.
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
- The "Next Generation" command set (MF, MP, FI, CF, bare UP/LP queries, ...) is another
  firmware's: this pump answers it `Er/`.
Fault hooks: `stall()` (the motor stalls: stall fault), `clog()` (the nozzle's resistance x
CLOG: the pressure climbs to the upper limit), `unclog()`.
"""
import math
import time
from dataclasses import dataclass, replace

HEADS = (5.0, 10.0, 40.0)  # mL/min
HEAD_TYPES = {1: (10.0, False), 2: (10.0, True), 3: (40.0, False), 4: (40.0, True),
              5: (5.0, False), 6: (5.0, True)}  # HT number -> (mL/min, plastic)
MAX_PRESSURE = {False: 6000, True: 5000}  # psi, steel and plastic heads
MAX_COMPENSATION = 50  # hundreds of psi
LIMIT_GAP = 100  # psi between the limits
COMPLIANCE = 1e-4  # mL stored per mL of head and damper volume per psi
CLOG = 10.0  # resistance factor of a clogged nozzle
CLEAR_AFTER = 1.0  # s of the wall clock (the line's) after which an unfinished command is dropped
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

    def __init__(self, world, *, head_max_flow: float = 10.0, plastic: bool = False, baudrate: int = 9600,
                 resistance: float = 60.0, upper: int = 1500, lower: int = 0, volume: float = 2.0):
        if head_max_flow not in HEADS:
            raise ValueError(f"an SSI head delivers 5, 10 or 40 mL/min, not {head_max_flow}")
        most = MAX_PRESSURE[plastic]
        if not (resistance > 0 and volume > 0 and 0 <= lower and lower + LIMIT_GAP <= upper <= most):
            raise ValueError(f"resistance and volume must be > 0, and 0 <= lower, lower + 100 <= upper <= {most}")
        self.world, self.baudrate = world, baudrate
        self.resistance, self.volume = resistance, volume
        self.head = next(n for n, head in HEAD_TYPES.items() if head == (head_max_flow, plastic))  # HT number
        self.power_up_limits = (upper, lower)
        self.running, self.clogged = False, False
        self.latched: set[str] = set()  # "stall", "upper", "lower"; "forced" by SF
        self._configure()
        self.received = 0  # commands handled
        self._pending: tuple[int, float] | None = None  # (bytes, arrival) of an unfinished command
        self._course = _Course(world.clock.now(), 0.0, 0.0, self._tau(), 0.0)
        world.pump = self

    @property
    def head_max_flow(self) -> float:
        return HEAD_TYPES[self.head][0]

    @property
    def step(self) -> float:
        """mL/min per count of FL and FO."""
        return 0.01 if self.head_max_flow <= 10 else 0.1

    def _configure(self) -> None:
        """The power-up configuration (RE): flow 0, the power-up limits, no compensation, keypad on."""
        self.flow, self.decimals = 0.0, round(-math.log10(self.step))
        self._reset_compensation_and_limits()
        self.keypad_locked = False

    def _reset_compensation_and_limits(self) -> None:
        upper, self.lower = self.power_up_limits
        self.upper = min(upper, MAX_PRESSURE[HEAD_TYPES[self.head][1]])
        self.compensation = 0  # hundreds of psi

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
        """Commands up to CR; `#` drops what came before it, as does a second's silence on the line
        (wall time, however fast the reactor clock runs)."""
        now = time.monotonic()
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

    def _stop(self, argument: str, now: float) -> str:
        self._bare(argument)
        self.running = False
        self._steer(now)
        return "OK"

    _cmd_st = _stop

    def _cmd_sf(self, argument: str, now: float) -> str:
        self.latched.add("forced")
        return self._stop(argument, now)

    def _cmd_re(self, argument: str, now: float) -> str:
        self._configure()
        self.latched.clear()
        return self._stop(argument, now)

    def _cmd_ht(self, argument: str, now: float) -> str:
        head = _digits(argument, 1)
        if head not in HEAD_TYPES:
            raise _Invalid
        self.head = head
        self.flow = min(round(round(self.flow / self.step) * self.step, 3), self.head_max_flow)
        self.decimals = round(-math.log10(self.step))
        self._reset_compensation_and_limits()
        return self._stop("", now)

    def _keypad(self, argument: str, locked: bool) -> str:
        self._bare(argument)
        self.keypad_locked = locked
        return "OK"

    def _cmd_kd(self, argument: str, now: float) -> str:
        return self._keypad(argument, True)

    def _cmd_ke(self, argument: str, now: float) -> str:
        return self._keypad(argument, False)

    def _cmd_pc(self, argument: str, now: float) -> str:
        value = _digits(argument, 2)
        if value > MAX_COMPENSATION:
            raise _Invalid
        self.compensation = value
        return "OK"

    def _cmd_rc(self, argument: str, now: float) -> str:
        self._bare(argument)
        return f"OK,{self.compensation}"

    def _cmd_pi(self, argument: str, now: float) -> str:
        self._bare(argument)
        fault = {name: int(name in self.latched) for name in ("stall", "upper", "lower")}
        fields = (self._flow_text(), int(self.running), self.compensation, self.head, 0, 0, 0, 0,
                  fault["upper"], fault["lower"], 0, int(self.keypad_locked), 0, 0, 0, 0, fault["stall"])
        return "OK," + ",".join(map(str, fields))

    def _set_flow(self, argument: str, digits: int, step: float, now: float, most: int = 9999) -> str:
        count = _digits(argument, digits)
        if not 1 <= count <= most or count * step > self.head_max_flow + 1e-9:
            raise _Invalid
        self.flow, self.decimals = round(count * step, 3), round(-math.log10(step))
        self._steer(now)
        return "OK"

    def _cmd_fl(self, argument: str, now: float) -> str:
        return self._set_flow(argument, 3, self.step, now, most=399 if self.step == 0.1 else 999)  # 39.9 on a 40

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
        if not self.lower + LIMIT_GAP <= value <= MAX_PRESSURE[HEAD_TYPES[self.head][1]]:
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
        return "OK," + ",".join(str(int(fault in self.latched)) for fault in ("stall", "upper", "lower"))  # SF's: none
