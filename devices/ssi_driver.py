"""Driver for a Teledyne SSI (SSI America) HPLC piston pump on RS-232, 9600 baud 8N1.

From the SSI America operator's manual 90-2581 Rev B, appendix A.1.3 "Command Interpreter"
(the command set of the Series III class pumps):
- two-letter commands, case-insensitive, one per line (ended here by CR, as the manual's table
  does not show a terminator); every reply ends with `/`; an invalid command is answered `Er/`,
  after which `#` clears the pump's command buffer.
- `RU`, `ST` -> `OK/`. `FOxxxx` sets the flow in hundredths of mL/min on a 5 or 10 mL/min head
  (0001-1000) and in tenths on a 40 mL/min head (0001-0400); the driver always uses FO.
- `PR` -> `OK,<psi>/`; `CC` -> `OK,<psi>,<flow>/`; `ID` -> `OK,<firmware>/`;
  `CS` -> `OK,<flow>,<upper>,<lower>,<units>,<head 0 standard|1 macro>,<run 0|1>,<board>/`
  (board: 0 when the pressure board is present).
- `UPxxxx` / `LPxxxx`: pressure limits in psi, four digits; upper <= 6000 (steel head; 5000
  plastic), upper >= lower + 100.
- `RF` -> `OK,<stall>,<upper>,<lower>/` (1 = latched). A fault stops the pump. The manual
  names no command that clears a fault (SF sets one, RE resets the whole configuration); this
  driver takes `RU` for it, as the twin does (sim/ssi_twin.py): `run()` clears and restarts.
The pump has NO host watchdog: a host that dies leaves it pumping at its last flow until
someone sends ST or presses STOP. Whoever starts it must make sure it is stopped.
"""
import math
import re
from dataclasses import dataclass

from quenchlab.errors import InstrumentError

from .transport import Request, SerialTransport, Steps

CR = b"\r"
HEADS = {5.0: 0.01, 10.0: 0.01, 40.0: 0.1}  # head range in mL/min -> FO step, mL/min
MAX_PRESSURE = 6000  # psi, the upper limit's ceiling (stainless steel head)
LIMIT_GAP = 100  # psi the upper limit must stay above the lower one
TOLERANCE = 5e-3  # largest relative change a flow may suffer to fit the head's step
FAULTS = {"stall": "motor stalled", "upper": "pressure above the upper limit",
          "lower": "pressure below the lower limit"}  # in RF's order
_REPLY = re.compile(r"(OK|Er)((?:,[^,/]*)*)/")


def _complete(received: bytes) -> bool:
    return b"/" in received


@dataclass(frozen=True)
class Setup:
    """The pump's setup as CS reports it."""

    flow: float  # mL/min
    upper: int  # psi
    lower: int  # psi
    units: str
    head: str  # "standard" or "macro"
    running: bool
    pressure_board: bool


class PumpFault(InstrumentError):
    """The pump holds a latched fault (RF) and has stopped. `liquid`: every fault belongs to the
    liquid being pumped, not to the pump or its line. An upper-pressure fault is a line
    blocking downstream: a nozzle clogging with this sample's precursor (a precipitate, a
    viscous solution); it is taken for the sample's, since flushing with solvent and running
    again tells it from a line that stays blocked (which trips again there). A stall is the
    pump's own: the upper limit stops a piston pump long before pressure could stall its motor,
    so a stall is mechanical (seized piston, seal, drive). A lower-pressure fault is a leak or a
    lost prime (air drawn in): the line's, and every later sample would meet it too."""

    LIQUID = ("upper",)

    def __init__(self, instrument: str, address: str, command: str, faults: set[str]):
        self.faults = frozenset(faults)
        self.liquid = self.faults <= set(self.LIQUID)
        named = ", ".join(FAULTS[fault] for fault in FAULTS if fault in self.faults)
        super().__init__(instrument, address, command, f"pump fault latched: {named}")


class SsiPump:
    """One SSI pump with a head of `head_max_flow` mL/min (5, 10 or 40) on a serial line."""

    def __init__(self, address: str, name: str = "pump", baudrate: int = 9600, head_max_flow: float = 10.0,
                 timeout: float = 0.3, retries: int = 2):
        if head_max_flow not in HEADS:
            raise ValueError(f"an SSI head delivers 5, 10 or 40 mL/min, not {head_max_flow}")
        self.io = SerialTransport(name, address, baudrate=baudrate, terminator=CR, timeout=timeout,
                                  retries=retries)
        self.name, self.address = name, address
        self.head_max_flow, self.step = head_max_flow, HEADS[head_max_flow]

    # --- one exchange -------------------------------------------------------------------
    def _command(self, command: str) -> list[str]:
        return self.io.run(self._command_steps(command))

    def _command_steps(self, command: str) -> Steps:
        """Send `command`; return the fields of its `OK,...,.../` reply, or raise on `Er/`."""
        received = yield Request(command.encode("ascii") + CR, _complete, command)
        text = received.decode("ascii", "replace").strip()
        match = _REPLY.fullmatch(text)
        if match is None:
            raise InstrumentError(self.name, self.address, command, f"garbled reply {text!r}")
        if match[1] == "Er":
            self.io.write("#")  # clears what may remain in the pump's command buffer (A.1.3)
            raise InstrumentError(self.name, self.address, command, "answered Er/ (invalid command or value)")
        return match[2].split(",")[1:]

    def _numbers_steps(self, command: str, count: int) -> Steps:
        fields = yield from self._command_steps(command)
        try:
            if len(fields) != count:
                raise ValueError
            return [float(field) for field in fields]
        except ValueError:
            raise InstrumentError(self.name, self.address, command,
                                  f"expected {count} numbers, got {','.join(fields)!r}") from None

    # --- the command table (A.1.3) ------------------------------------------------------
    def identify(self) -> str:
        """Pump type and firmware revision (ID)."""
        return ",".join(self._command("ID"))

    def setup(self) -> Setup:
        fields = self._command("CS")
        try:
            flow, upper, lower, units, head, running, board = fields
            return Setup(float(flow), int(upper), int(lower), units, ("standard", "macro")[int(head)],
                         bool(int(running)), board == "0")
        except (ValueError, IndexError):
            raise InstrumentError(self.name, self.address, "CS", f"unexpected setup {','.join(fields)!r}") from None

    def flow(self) -> float:
        """The set flow, mL/min (CS)."""
        return self.setup().flow

    def running(self) -> bool:
        return self.setup().running

    def set_flow(self, ml_per_min: float) -> None:
        """Set the flow (FO), refused before anything is sent if the head cannot deliver it;
        confirmed by reading CS back."""
        count = round(ml_per_min / self.step) if math.isfinite(ml_per_min) else 0
        if not (1 <= count and count * self.step <= self.head_max_flow
                and abs(count * self.step - ml_per_min) <= TOLERANCE * ml_per_min):
            raise ValueError(f"{self.name} at {self.address}: cannot set {ml_per_min} mL/min: its "
                             f"{self.head_max_flow:g} mL/min head takes {self.step:g} to {self.head_max_flow:g} "
                             f"mL/min in steps of {self.step:g} (nothing sent)")
        command, wanted = f"FO{count:04d}", round(count * self.step, 2)
        with self.io.lock:
            self._command(command)
            if (reported := self.flow()) != wanted:
                raise InstrumentError(self.name, self.address, command, f"reports {reported} mL/min set, not {wanted}")

    def set_limits(self, upper: int, lower: int) -> None:
        """Pressure limits in psi (UP, LP), sent in the order the pump accepts from its present
        limits (each must stay LIMIT_GAP from the other); confirmed by reading CS back."""
        if not (isinstance(upper, int) and isinstance(lower, int) and 0 <= lower
                and lower + LIMIT_GAP <= upper <= MAX_PRESSURE):
            raise ValueError(f"{self.name} at {self.address}: limits must be whole psi with 0 <= lower and "
                             f"lower + {LIMIT_GAP} <= upper <= {MAX_PRESSURE}, not upper {upper}, lower {lower}")
        with self.io.lock:
            commands = [f"UP{upper:04d}", f"LP{lower:04d}"]
            if upper < self.setup().lower + LIMIT_GAP:
                commands.reverse()
            for command in commands:
                self._command(command)
            setup = self.setup()
            if (setup.upper, setup.lower) != (upper, lower):
                raise InstrumentError(self.name, self.address, ", ".join(commands),
                                      f"reports limits {setup.upper}/{setup.lower} psi")

    def run(self) -> None:
        """RU: pump at the set flow; also clears latched faults (see the module docstring)."""
        self._command("RU")

    def stop(self) -> None:
        self._command("ST")

    def spray(self, ml_per_min: float) -> None:
        """Pump `ml_per_min` (0: stop): the flow set and confirmed, then RU; refused (PumpFault)
        while a fault is latched, which RU would clear unseen."""
        if not ml_per_min:
            self.stop()
            return
        self.check()
        self.set_flow(ml_per_min)
        self.run()

    def pressure(self) -> float:
        """Head pressure, psi (PR)."""
        return self.io.run(self._numbers_steps("PR", 1))[0]

    def faults(self) -> set[str]:
        """The latched faults (RF): a subset of {"stall", "upper", "lower"}."""
        return self.io.run(self._faults_steps())

    def _faults_steps(self) -> Steps:
        flags = yield from self._numbers_steps("RF", len(FAULTS))
        return {fault for fault, flag in zip(FAULTS, flags) if flag}

    def check(self) -> None:
        """Raise PumpFault if a fault is latched (RF)."""
        self.io.run(self._check_steps())

    def _check_steps(self) -> Steps:
        latched = yield from self._faults_steps()
        if latched:
            raise PumpFault(self.name, self.address, "RF", latched)

    def conditions(self, check: bool = True) -> tuple[float, float]:
        """(psi, mL/min): what the process logger records each row."""
        return self.io.run(self.conditions_steps(check))

    def conditions_steps(self, check: bool = True) -> Steps:
        """With `check`, RF first: raises PumpFault if a fault is latched (CC alone cannot tell a
        stopped pump); then CC: returns (psi, set flow in mL/min)."""
        if check:
            yield from self._check_steps()
        psi, flow = yield from self._numbers_steps("CC", 2)
        return psi, flow

    def close(self) -> None:
        self.io.close()
