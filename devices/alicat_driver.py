"""Driver for Alicat instruments on one RS-232 line: MC-series mass flow controllers and
P-series pressure gauges, told apart by their unit ID (A-Z).

From Alicat's "Serial Communications Primer" and the MC-series operating manual ("Serial
Communications", "Quick Serial Command Guide"):
- 19200 baud 8N1; a command is the unit ID, the command and CR; commands are not
  case-sensitive; every answer is one line ending in CR (primer "Connecting and Setup").
- Polling `A` answers the data frame (primer "The Alicat Data Frame"): for a flow controller
  unit ID, pressure, temperature, volumetric flow, mass flow, setpoint, gas, then any status
  codes; a pressure gauge answers unit ID, pressure, then any status codes (P/PC-series
  manual, "Collecting Pressure Data"). Values are in the unit's engineering units (ours:
  PSIA, degC, SLPM).
- Status codes (primer "Status/Error Codes"): see STATUS_CODES. OVR is the totalizer rolling
  over; a flow above the sensor's range is MOV (mass) or VOV (volumetric).
- `S v` new setpoint, answered by a data frame; `LS` queries it, answered
  `A +current +requested unit_code unit_label` (primer "Query/Change Setpoint", 10v05+).
- `G n` selects gas n (MC manual gas table), answered by a data frame.
- `HP` holds the valve where it is, `HC` holds it closed, `C` cancels the hold; each answers
  a data frame carrying HLD while held (primer "Hold Valve(s)").
- `V` tares the flow (data frame); `VE` firmware version; `FPF n` full scale of statistic n,
  answered `A +value unit_code unit_label` (primer "Full-Scale Values", Appendix A codes).
- An unknown command answers `?` (firmware in the field prefixes the unit ID: `A ?`).
- `A@=@` makes A stream its frame (without the unit ID) every 50 ms, `@@=A` stops it; only
  one unit per port may stream. A streamed line may reach us ahead of a reply: we skip it.
"""
import math
import re
from typing import NamedTuple

from quenchlab.errors import InstrumentError

from .transport import Request, SerialTransport, Steps

# Gas numbers of the standard gases (MC-series manual, gas table; primer Appendix C).
GASES = {"Air": 0, "Ar": 1, "CH4": 2, "CO": 3, "CO2": 4, "C2H6": 5, "H2": 6, "He": 7, "N2": 8,
         "N2O": 9, "Ne": 10, "O2": 11, "C3H8": 12, "nC4H10": 13, "C2H2": 14, "C2H4": 15,
         "iC4H10": 16, "Kr": 17, "Xe": 18, "SF6": 19}
STATUS_CODES = {
    "ADC": "internal analog-to-digital converter error",
    "EXH": "exhaust valve override active",
    "HLD": "valve held (HP/HC)",
    "LCK": "front panel locked",
    "MOV": "mass flow over the sensor's range",
    "OPL": "over pressure limit",
    "OVR": "totalizer rolled over",
    "POV": "pressure over range",
    "TMF": "totalizer missed flow (over range while totalizing)",
    "TOV": "temperature over range",
    "VOV": "volumetric flow over range",
}
# Statistic codes (primer Appendix A) for FPF.
ABSOLUTE_PRESSURE, VOLUMETRIC_FLOW, MASS_FLOW, GAUGE_PRESSURE, DIFFERENTIAL_PRESSURE = 2, 4, 5, 6, 7
FLOW_UNIT = "SLPM"
_REJECTED = re.compile(r"([A-Z] )?\?")
_NUMERIC = frozenset("+-.0123456789")


class DataFrame(NamedTuple):
    """One poll's answer; a gauge has no flow, setpoint, temperature or gas (None)."""

    unit_id: str
    pressure: float
    temperature: float | None = None
    volumetric_flow: float | None = None
    mass_flow: float | None = None
    setpoint: float | None = None
    gas: str | None = None
    status: tuple[str, ...] = ()


class FullScale(NamedTuple):
    value: float
    unit: str


def parse_frame(line: str) -> DataFrame:
    """A flow controller's frame (5 numbers and a gas) or a gauge's (1 number), then status."""
    unit_id, *fields = line.split()
    numbers = []
    for field in fields:
        if field[0] not in _NUMERIC:  # the gas or a status code: no exception raised per frame
            break
        try:
            numbers.append(float(field))
        except ValueError:
            break
    rest = fields[len(numbers):]
    if len(numbers) == 5 and rest:
        pressure, temperature, volumetric, mass, setpoint = numbers
        return DataFrame(unit_id, pressure, temperature, volumetric, mass, setpoint, rest[0], tuple(rest[1:]))
    if len(numbers) == 1:
        return DataFrame(unit_id, numbers[0], status=tuple(rest))
    raise ValueError(f"not an Alicat data frame: {line!r}")


# A reply line starts with a unit ID or is '?'; a streamed frame starts with a sign
_REPLY_LINE = re.compile(rb"(?:\A|(?<=\r))([A-Za-z?][^\r]*)\r")


def _answered(received: bytes) -> bool:
    return _REPLY_LINE.search(received) is not None


class AlicatUnit:
    """One unit (controller or gauge) on a serial line that other units may share: the
    first unit to open the port sets its baud rate, timeout and retries."""

    def __init__(self, address: str, unit_id: str, name: str = "alicat", baudrate: int = 19200,
                 timeout: float = 0.2, retries: int = 2):
        if not re.fullmatch("[A-Z]", unit_id):
            raise ValueError(f"an Alicat unit ID is one letter A-Z, got {unit_id!r}")
        self.io = SerialTransport.shared(name, address, baudrate=baudrate, timeout=timeout, retries=retries)
        self.name, self.address, self.unit_id = name, address, unit_id
        self._flow_full_scale: float | None = None

    def _ask(self, command: str) -> str:
        return self.io.run(self._ask_steps(command))

    def _ask_steps(self, command: str) -> Steps:
        """Send `command` to this unit and return its reply line."""
        message = self.unit_id + command
        try:
            received = yield Request(message.encode("ascii") + b"\r", _answered, message)
        except InstrumentError:
            raise InstrumentError(self.name, self.address, message,
                                  f"unit {self.unit_id} did not answer ({self.io.retries + 1} tries)") from None
        reply = _REPLY_LINE.search(received)[1].decode("ascii", "replace")
        if _REJECTED.fullmatch(reply.strip()):
            raise InstrumentError(self.name, self.address, message,
                                  f"unit {self.unit_id} answered '?' (command refused)")
        if reply.split()[0] != self.unit_id:
            raise InstrumentError(self.name, self.address, message,
                                  f"reply from unit {reply.split()[0]!r}, not {self.unit_id!r}: {reply!r}")
        return reply

    def _frame(self, command: str) -> DataFrame:
        return self.io.run(self._frame_steps(command))

    def _frame_steps(self, command: str) -> Steps:
        reply = yield from self._ask_steps(command)
        try:
            return parse_frame(reply)
        except ValueError as error:
            raise InstrumentError(self.name, self.address, self.unit_id + command, str(error)) from None

    def poll(self) -> DataFrame:
        return self._frame("")

    def poll_steps(self) -> Steps:
        return self._frame_steps("")

    def full_scale(self, statistic: int = MASS_FLOW) -> FullScale:
        """Full scale of a statistic and its engineering unit, e.g. (10.0, 'SLPM')."""
        fields = self._ask(f"FPF {statistic}").split()
        if len(fields) != 4:
            raise InstrumentError(self.name, self.address, f"{self.unit_id}FPF {statistic}",
                                  f"unexpected full-scale reply {' '.join(fields)!r}")
        return FullScale(float(fields[1]), fields[3])

    def flow_full_scale(self) -> float:
        """Mass-flow full scale in SLPM (asked once, then remembered)."""
        if self._flow_full_scale is None:
            value, unit = self.full_scale(MASS_FLOW)
            if unit != FLOW_UNIT:
                raise InstrumentError(self.name, self.address, f"{self.unit_id}FPF {MASS_FLOW}",
                                      f"mass flow is in {unit}, quenchlab expects {FLOW_UNIT}")
            self._flow_full_scale = value
        return self._flow_full_scale

    def set_setpoint(self, slpm: float) -> DataFrame:
        """New mass-flow setpoint; the unit's reply must echo it (within 0.1 % of full scale)."""
        full_scale = self.flow_full_scale()
        if not 0.0 <= slpm <= full_scale:
            raise ValueError(f"{self.name}: setpoint {slpm} SLPM is outside 0-{full_scale} SLPM (full scale)")
        frame = self._frame(f"S {slpm:.6g}")
        if frame.setpoint is None or not math.isclose(frame.setpoint, slpm, abs_tol=1e-3 * full_scale):
            raise InstrumentError(self.name, self.address, f"{self.unit_id}S {slpm:.6g}",
                                  f"setpoint reads back {frame.setpoint}, not {slpm}")
        return frame

    def setpoint(self) -> float:
        """The requested setpoint in SLPM (`LS`)."""
        fields = self._ask("LS").split()
        if len(fields) != 5 or fields[4] != FLOW_UNIT:
            raise InstrumentError(self.name, self.address, f"{self.unit_id}LS",
                                  f"unexpected setpoint reply {' '.join(fields)!r}")
        return float(fields[2])

    def set_gas(self, gas: str | int) -> DataFrame:
        """Select a gas by name ('O2') or number (11); the reply must name it."""
        names = {number: name for name, number in GASES.items()}
        number = gas if isinstance(gas, int) else {n.lower(): v for n, v in GASES.items()}.get(gas.lower())
        if number not in names:
            raise ValueError(f"{self.name}: unknown gas {gas!r}; known: {', '.join(GASES)}")
        frame = self._frame(f"G {number}")
        if (frame.gas or "").lower() != names[number].lower():
            raise InstrumentError(self.name, self.address, f"{self.unit_id}G {number}",
                                  f"gas reads back {frame.gas}, not {names[number]}")
        return frame

    def hold(self, closed: bool = False) -> DataFrame:
        """Hold the valve where it is (or closed); the frame must show HLD."""
        return self._check_hold("HC" if closed else "HP", held=True)

    def cancel_hold(self) -> DataFrame:
        return self._check_hold("C", held=False)

    def _check_hold(self, command: str, held: bool) -> DataFrame:
        frame = self._frame(command)
        if ("HLD" in frame.status) != held:
            state = "on" if held else "off"
            raise InstrumentError(self.name, self.address, self.unit_id + command,
                                  f"status {' '.join(frame.status) or 'empty'} does not show the hold {state}")
        return frame

    def tare(self) -> DataFrame:
        """Zero the flow reading: only with no gas flowing, or the offset stays in every reading."""
        return self._frame("V")

    def firmware(self) -> str:
        fields = self._ask("VE").split(maxsplit=1)
        if len(fields) != 2:
            raise InstrumentError(self.name, self.address, f"{self.unit_id}VE", "empty firmware reply")
        return fields[1]

    def close(self) -> None:
        """Closes the shared port, for every unit on it."""
        self.io.close()
