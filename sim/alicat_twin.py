"""Twin of an Alicat RS-232 bus: MC-series mass flow controllers and a P-series differential
pressure gauge sharing one serial line, each answering only to its unit ID.

Written from Alicat's "Serial Communications Primer" and the MC- and P/PC-series operating
manuals:
- a message is a unit ID (A-Z, `@` while streaming, `*` for every unit) and a command, ended
  by CR; commands are not case-sensitive. `*` commands are applied by every unit and
  answered by none (several units talking at once would garble the line).
- `A` polls the data frame. Controller: `A +014.70 +025.00 +05.000 +05.000 +05.000 O2`
  (pressure PSIA, temperature degC, volumetric flow LPM, mass flow SLPM, setpoint, gas),
  gauge: `B +00.352` (pressure in its unit); then any status codes. Flows carry five
  significant digits of the full scale.
- Status codes: HLD valve held, LCK display locked, MOV mass flow over range, VOV volumetric
  flow over range, POV pressure over range (OVR would be a totalizer rollover: these units have
  none). Over range, the reading stays at full scale. The gas name sits right-aligned in six.
- Gauge: `P` (older `$$P`; `TP` in the 2023 primer) tares the differential pressure: what it
  reads then becomes the zero.
- Controller: `S v` / `LS v` set the setpoint (0 to full scale, else `?`; S answers a frame,
  and so does a bare integer, the setpoint in counts of 64000 for full scale, 0-65535,
  LS `A +current +requested 7 SLPM`, current = requested as ramping is off), `LS` queries it;
  `G n` selects gas n of the standard gas table (frame); `HP` holds the valve where it is,
  `HC` holds it closed, `C` cancels (frames); `V` tares: the flow of that moment becomes the
  zero, so a tare with gas flowing offsets every later reading (frame).
- Every unit: `VE` firmware (`A   10v20.0-R24 Jan  9 2025,15:04:07`); `FPF n` full scale of
  statistic n (`A +010.00 7 SLPM`; `?` for a statistic the unit does not measure); `@=X` takes
  unit ID X without answering (`A@=@` starts streaming, `@@=A` stops it); `Rn` reads register
  n and `Wn=v` writes it, both answered `A   046 = 264` (three spaces, the register in three
  digits): 24 the setpoint in counts (64000 = full scale), 46 the gas (its number in the low 9
  bits), 91 the streaming interval in ms; another register keeps what is written to it and
  reads 0 before (the twin's choice: the primer lists more registers than the twin models). `L`
  locks the display and `U` unlocks it (frames, `LCK` among the status codes while locked);
  `??M*` the ten lines of manufacturer data (`A  M00 ALICAT SCIENTIFIC` ... `M09 Software
  Revision`), `??D*` the data frame's description (`A D00 ID_ NAME___...`, a row per field:
  statistic code, name, type, width/decimals, unit code and label). The older firmware's `$$`
  forms are taken too (`$$V`, `$$P`, `$$L`, `$$U`, `$$H` = hold where it is, `$$C`, `$$Rn`,
  `$$Wn=v`). Anything else answers `?`.
- Streaming (register 91 default, 50 ms): the frame without its unit ID. The pty server only
  answers messages, so the streaming unit's latest frame goes out ahead of the next answer
  on the line, as if it had been sent while that message was on the wire.

Physics: the valve brings the actual mass flow to the setpoint as a first-order lag (tau of
reactor time, computed lazily from the world's clock); the world reads that flow through
`world.gases[role].flow_at(t)`. Readings add a little noise. Not modelled: line pressure and
gas temperature (reported near 14.70 PSIA and 25 degC), totalizers, setpoint ramping, the
`??G*` gas table, absolute pressure tare (`PC` answers `?`).
"""
import functools
import math
import re

import numpy as np

from .aerosol_world import GAS_ROLES, AerosolWorld
from .noise import normals

GAS_TABLE = ("Air", "Ar", "CH4", "CO", "CO2", "C2H6", "H2", "He", "N2", "N2O", "Ne", "O2", "C3H8",
             "nC4H10", "C2H2", "C2H4", "iC4H10", "Kr", "Xe", "SF6")  # index = gas number
ABSOLUTE, VOLUMETRIC, MASS, DIFFERENTIAL = 2, 4, 5, 7  # statistic codes (primer Appendix A)
PRESSURE_UNITS = {"PSID": (10, 6.894757), "kPa": (4, 1.0), "mbar": (6, 0.1)}  # unit code, kPa per unit
FIRMWARE = "10v20.0-R24"
BUILT = "Jan  9 2025,15:04:07"
COUNTS = 64000  # an integer setpoint's full scale (65535 at most)
GAS, SETPOINT_COUNTS, STREAMING = 46, 24, 91  # registers
OLD_FORMS = ("V", "P", "L", "U", "H", "C", "R", "W")  # what may follow `$$`
STREAM_INTERVAL = 0.05  # s of reactor time
RUNAWAY = 1.5  # x full scale: the flow through a valve forced wide open
NOISE = 2e-4  # x full scale, one sigma of a reading
LINE_PRESSURE, GAS_TEMPERATURE = 14.70, 25.0  # PSIA, degC
STANDARD_PRESSURE, STANDARD_TEMPERATURE = 14.696, 298.15  # PSIA, K (Alicat STP)
VOLUMETRIC_PER_MASS = (GAS_TEMPERATURE + 273.15) / STANDARD_TEMPERATURE * STANDARD_PRESSURE / LINE_PRESSURE
_NUMBER = r"\s*([-+]?(?:\d+\.?\d*|\.\d+))"


@functools.cache
def _format(full_scale: float) -> str:
    digits = max(1, math.floor(math.log10(full_scale)) + 1)
    decimals = max(0, 5 - digits)
    width = 1 + digits + (1 + decimals if decimals else 0)
    return f"{{:+0{width}.{decimals}f}}"


def _fixed(value: float, full_scale: float) -> str:
    """Sign and five significant digits of the full scale, e.g. +05.000 for 10."""
    return _format(full_scale).format(value)


def _width(text: str) -> str:
    """A number's width/decimals as ??D* gives them ("7/2")."""
    return f"{len(text)}/{len(text.partition('.')[2])}"


class _Unit:
    """What every unit answers, whatever it measures."""

    ranges: dict[int, tuple[float, int, str]]  # statistic -> full scale, unit code, unit label

    model = "MC"

    def __init__(self, bus: "AlicatBus", unit_id: str):
        self.bus, self.unit_id = bus, unit_id
        self.locked = False
        self.registers: dict[int, int] = {}
        self.serial_number = f"{521640 + len(bus.units)}"

    def answer(self, command: str, now: float) -> str | None:
        if command.startswith("$$") and command[2:3] in OLD_FORMS:
            command = "HP" if command[2:] == "H" else command[2:]
        if command == "":
            return f"{self.unit_id} {self.frame(now)}"
        if command == "VE":
            return f"{self.unit_id}   {FIRMWARE} {BUILT}"
        if command in ("L", "U"):
            self.locked = command == "L"
            return f"{self.unit_id} {self.frame(now)}"
        if command in ("??M*", "??D*"):
            return "\r".join(self.manufacturer() if command == "??M*" else self.description())
        register = re.fullmatch(r"R\s*(\d+)|W\s*(\d+)\s*=\s*(\d+)", command)
        if register:
            number = int(register[1] or register[2])
            if register[3] is not None:
                self.write_register(number, int(register[3]), now)
            return f"{self.unit_id}   {number:03d} = {self.read_register(number)}"
        if command.startswith("@="):
            if not re.fullmatch("[A-Z@]", command[2:]):
                return "?"
            self.unit_id = command[2:]
            return None
        match = re.fullmatch(r"FPF\s*(\d+)", command)
        if match:
            if int(match[1]) not in self.ranges:
                return "?"
            value, code, label = self.ranges[int(match[1])]
            return f"{self.unit_id} {_fixed(value, value)} {code} {label}"
        return self.command(command, now)

    def command(self, command: str, now: float) -> str | None:
        return "?"

    def read_register(self, number: int) -> int:
        if number == STREAMING:
            return round(self.bus.stream_interval * 1000)
        return self.registers.get(number, 0)

    def write_register(self, number: int, value: int, now: float) -> None:
        if number == STREAMING:
            self.bus.stream_interval = max(value, 1) / 1000
        else:
            self.registers[number] = value

    def status(self, codes: str) -> str:
        """The status codes at the end of a frame, LCK among them while the display is locked."""
        return (" LCK" if self.locked else "") + codes

    def manufacturer(self) -> list[str]:
        """??M*: ten lines, two spaces after the unit ID."""
        full_scale, code, label = self.ranges[self.main]
        fields = ("ALICAT SCIENTIFIC", "www.alicat.com", "Ph   520-290-6060", "info@alicat.com",
                  f"Model Number {self.model}-{full_scale:g}{label}-D", f"Serial Number {self.serial_number}",
                  "Date Manufactured 03/02/2025", "Date Calibrated   03/02/2025", "Calibrated By     BL",
                  f"Software Revision {FIRMWARE}")
        return [f"{self.unit_id}  M{i:02d} {field}" for i, field in enumerate(fields)]

    def description(self) -> list[str]:
        """??D*: the data frame's fields, one row each, under a header of the column names."""
        rows = [f"{self.unit_id} D00 ID_ NAME______________________ TYPE_______ WIDTH NOTES___________________"]
        for i, (code, name, kind, width, notes) in enumerate(self.columns(), start=1):
            rows.append(f"{self.unit_id} D{i:02d} {code:03d} {name:<26} {kind:<11} {width:>5} {notes}".rstrip())
        return rows

    def _noise(self, scale: float) -> float:
        return NOISE * scale * next(self.bus.normals)


class FlowController(_Unit):
    """An MC-series mass flow controller feeding one gas role of the world."""

    main = MASS

    def __init__(self, bus: "AlicatBus", unit_id: str, gas: int, full_scale: float, tau: float):
        super().__init__(bus, unit_id)
        self.gas, self.full_scale, self.tau = gas, full_scale, tau
        self._fixed = _format(full_scale).format
        self.ranges = {MASS: (full_scale, 7, "SLPM"), VOLUMETRIC: (full_scale, 7, "LPM"),
                       ABSOLUTE: (100.0, 10, "PSIA")}
        self.setpoint = 0.0
        self.hold = ""  # "", "HP" (valve where it is) or "HC" (valve closed)
        self.forced = False
        self.zero = 0.0  # actual flow that reads as zero (set by a tare)
        self._t0, self._q0, self._target = bus.world.time, 0.0, 0.0

    # --- physics -----------------------------------------------------------------------
    def flow_at(self, t: float) -> float:
        """Actual mass flow (SLPM) through the valve at reactor time t."""
        decay = math.exp(-max(0.0, t - self._t0) / self.tau)
        return self._target + (self._q0 - self._target) * decay

    def _retarget(self, now: float) -> None:
        """The valve starts from the present flow towards what the new state asks."""
        flow = self.flow_at(now)
        if self.forced:
            target = RUNAWAY * self.full_scale
        elif self.hold == "HC":
            target = 0.0
        elif self.hold == "HP":
            target = flow
        else:
            target = max(0.0, self.setpoint + self.zero)
        self._t0, self._q0, self._target = now, flow, target

    def over_range(self, forced: bool) -> None:
        """Fault hook: the valve runs wide open (True) or back under control (False)."""
        with self.bus.world.lock:
            self.bus.world.advance()
            self.forced = forced
            self._retarget(self.bus.world.time)

    FAULTS = ("over_range", "in_range")

    def inject(self, fault: str) -> None:
        """Fault injection: "over_range" (the valve runs wide open) or "in_range"."""
        self.over_range({"over_range": True, "in_range": False}[fault])

    # --- protocol ----------------------------------------------------------------------
    def frame(self, now: float) -> str:
        mass = self.flow_at(now) - self.zero
        volumetric = mass * VOLUMETRIC_PER_MASS
        scale, noise, fixed = self.full_scale, self._noise, self._fixed
        status = self.status((" HLD" if self.hold else "") + (" MOV" if mass > scale else "")
                             + (" VOV" if volumetric > scale else ""))  # in the order sent
        return (f"{LINE_PRESSURE + noise(1.0):+07.2f} {GAS_TEMPERATURE + noise(10.0):+07.2f} "
                f"{fixed(min(volumetric + noise(scale), scale))} {fixed(min(mass + noise(scale), scale))} "
                f"{fixed(self.setpoint)} {GAS_TABLE[self.gas]:>6}{status}")

    def columns(self) -> list[tuple]:
        flow = _width(self._fixed(0.0))
        return [(700, "Unit ID", "string", 1, ""), (ABSOLUTE, "Abs Press", "s decimal", "7/2", "010 02 PSIA"),
                (3, "Flow Temp", "s decimal", "7/2", "002 02 `C"),
                (VOLUMETRIC, "Volu Flow", "s decimal", flow, "007 02 LPM"),
                (MASS, "Mass Flow", "s decimal", flow, "007 02 SLPM"),
                (37, "Mass Flow Setpt", "s decimal", flow, "007 02 SLPM"), (703, "Gas", "string", 6, ""),
                *((702, "*Status", "string", 3, code) for code in ("HLD", "LCK", "MOV", "VOV"))]

    def read_register(self, number: int) -> int:
        if number == GAS:
            return self.gas | 0x100  # bit 8 set, as read from real units
        if number == SETPOINT_COUNTS:
            return round(self.setpoint / self.full_scale * COUNTS)
        return super().read_register(number)

    def write_register(self, number: int, value: int, now: float) -> None:
        if number == GAS and (value & 0x1FF) < len(GAS_TABLE):
            self.gas = value & 0x1FF
        elif number == SETPOINT_COUNTS and value <= 65535:
            self._counts(value, now)
        elif number not in (GAS, SETPOINT_COUNTS):
            super().write_register(number, value, now)

    def _counts(self, counts: int, now: float) -> None:
        self.setpoint = counts / COUNTS * self.full_scale
        self._retarget(now)

    def command(self, command: str, now: float) -> str | None:
        setpoint = re.fullmatch(r"(L?S)(?:" + _NUMBER + r")?", command)
        gas = re.fullmatch(r"G" + _NUMBER, command)
        if setpoint:
            return self._setpoint(setpoint[1], setpoint[2], now)
        if command.isdigit():  # an integer setpoint: counts of 64000 for full scale
            if int(command) > 65535:
                return "?"
            self._counts(int(command), now)
            return f"{self.unit_id} {self.frame(now)}"
        if gas:
            if not gas[1].isdigit() or int(gas[1]) >= len(GAS_TABLE):
                return "?"
            self.gas = int(gas[1])
        elif command in ("HP", "HC", "C"):
            self.hold = "" if command == "C" else command
            self._retarget(now)
        elif command == "V":
            self.zero = self.flow_at(now)
            self._retarget(now)
        else:
            return "?"
        return f"{self.unit_id} {self.frame(now)}"

    def _setpoint(self, name: str, value: str | None, now: float) -> str:
        if value is not None:
            if not 0.0 <= float(value) <= self.full_scale:
                return "?"
            self.setpoint = float(value)
            self._retarget(now)
        elif name == "S":
            return "?"
        if name == "S":
            return f"{self.unit_id} {self.frame(now)}"
        sp = _fixed(self.setpoint, self.full_scale)
        return f"{self.unit_id} {sp} {sp} 7 SLPM"


class PressureGauge(_Unit):
    """A P-series differential gauge across the filter: world.filter_pressure_drop in `unit`."""

    model, main = "PD", DIFFERENTIAL

    def __init__(self, bus: "AlicatBus", unit_id: str, unit: str, full_scale: float):
        super().__init__(bus, unit_id)
        code, self.kpa_per_unit = PRESSURE_UNITS[unit]
        self.full_scale, self.unit, self.code = full_scale, unit, code
        self.ranges = {DIFFERENTIAL: (full_scale, code, unit)}
        self.zero = 0.0  # the reading a tare made zero

    def _pressure(self) -> float:
        return self.bus.world.filter_pressure_drop / self.kpa_per_unit - self.zero + self._noise(self.full_scale)

    def frame(self, now: float) -> str:
        pressure = self._pressure()
        status = self.status(" POV" if pressure > self.full_scale else "")
        return _fixed(min(pressure, self.full_scale), self.full_scale) + status

    def columns(self) -> list[tuple]:
        return [(700, "Unit ID", "string", 1, ""),
                (DIFFERENTIAL, "Diff Press", "s decimal", _width(_fixed(0.0, self.full_scale)),
                 f"{self.code:03d} 02 {self.unit}"),
                *((702, "*Status", "string", 3, code) for code in ("LCK", "POV"))]

    def command(self, command: str, now: float) -> str | None:
        if command in ("P", "TP"):  # tare the gauge pressure
            self.zero += self._pressure()
            return f"{self.unit_id} {self.frame(now)}"
        return "?"


class AlicatBus:
    """Every Alicat unit on one serial line; serve it with one PtyServer."""

    terminator = b"\r"

    def __init__(self, world: AerosolWorld, baudrate: int = 19200, seed: int | None = None):
        self.world, self.baudrate = world, baudrate
        self.normals = normals(np.random.default_rng(seed))
        self.units: list[_Unit] = []
        self._streamed = -math.inf  # reactor time of the last streamed frame
        self.stream_interval = STREAM_INTERVAL  # s, register 91

    def _check_id(self, unit_id: str) -> None:
        if not re.fullmatch("[A-Z]", unit_id) or any(u.unit_id == unit_id for u in self.units):
            raise ValueError(f"unit ID must be a free letter A-Z, got {unit_id!r}")

    def add_controller(self, unit_id: str, role: str, gas: str | int, full_scale: float,
                       tau: float = 0.2) -> FlowController:
        """A mass flow controller supplying `role`; the world reads its flow from then on."""
        self._check_id(unit_id)
        if role not in GAS_ROLES or role in self.world.gases:
            raise ValueError(f"role must be a free one of {GAS_ROLES}, got {role!r}")
        names = [name.lower() for name in GAS_TABLE]
        number = gas if isinstance(gas, int) else names.index(gas.lower()) if gas.lower() in names else -1
        if not 0 <= number < len(GAS_TABLE):
            raise ValueError(f"gas must be one of {GAS_TABLE} or its number, got {gas!r}")
        with self.world.lock:
            self.world.advance()
            unit = FlowController(self, unit_id, number, full_scale, tau)
            self.world.gases[role] = unit
        self.units.append(unit)
        return unit

    def add_gauge(self, unit_id: str, unit: str = "PSID", full_scale: float = 15.0) -> PressureGauge:
        self._check_id(unit_id)
        if unit not in PRESSURE_UNITS:
            raise ValueError(f"gauge unit must be one of {list(PRESSURE_UNITS)}, got {unit!r}")
        gauge = PressureGauge(self, unit_id, unit, full_scale)
        self.units.append(gauge)
        return gauge

    def handle(self, message: bytes) -> bytes | None:
        text = message.decode("ascii", errors="replace").strip().upper()
        with self.world.lock:
            self.world.advance()
            now = self.world.time
            lines = self._stream(now)
            if text[:1] == "*":
                for unit in self.units:
                    unit.answer(text[1:].strip(), now)
            elif text:
                addressed = [unit for unit in self.units if unit.unit_id == text[0]]
                reply = addressed[0].answer(text[1:].strip(), now) if len(addressed) == 1 else None
                lines += [reply] if reply else []
        return ("\r".join(lines) + "\r").encode("ascii") if lines else None

    def _stream(self, now: float) -> list[str]:
        streaming = [unit for unit in self.units if unit.unit_id == "@"]
        if len(streaming) != 1 or now - self._streamed < self.stream_interval:
            return []
        self._streamed = now
        return [streaming[0].frame(now)]
