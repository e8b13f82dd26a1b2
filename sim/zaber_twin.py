"""Twin of a two-axis Zaber controller (an X-MCC-style controller with two linear stages) on the
Zaber ASCII protocol: the aerosol reactor's sample collector, an XY stage carrying the filter
plate, with a shutter on one of the controller's digital outputs.

Written from the "Zaber ASCII Protocol Manual" (firmware 7):
- Message format: `/` device axis id command data `:` checksum, ended by LF, CR or both.
  Device 0 (or none) addresses every device, axis 0 (or none) the whole device; the message
  ID (0-99, `--` for none) is echoed in the reply, an ID outside 0-99 answers BADMESSAGEID.
  The checksum is the LRC of the bytes between `/` and `:` (sum + checksum = 0 mod 256);
  replies carry one only while `comm.checksum` is 1 (default 0).
- Reply: `@` device(2 digits) axis [id] OK|RJ IDLE|BUSY flag data, ended by CRLF. RJ names its
  reason in the data: BADCOMMAND, BADDATA, BADAXIS, DEVICEONLY, BADMESSAGEID. BUSY while the
  axis (at device scope: any axis) moves; the flag is the highest-priority warning of the axis
  (of every axis at device scope), `--` for none; the empty command only reports status.
- Warning flags: FS stall (latched until `warnings clear`), WR no reference position (from
  power-up until homed or `set pos`), NI a movement command interrupted a move in progress
  (until a movement command is sent while the axis is idle: the manual does not list it among
  the flags `warnings clear` clears). `warnings` answers the count and the flags, `warnings
  clear` the flags it cleared.
- `home` moves to the home sensor at `limit.approach.maxspeed` and sets the position to 0;
  `move abs n`, `move rel n` (microsteps; the target within limit.min to limit.max, else RJ
  BADDATA), `move min`, `move max`, `move vel v` (signed maxspeed data: towards the end of
  travel until `stop`); `stop` decelerates at `accel`, `estop` stops at once; at device scope
  they act on every axis. `system reset` answers, then restarts as at power-up (motion stopped,
  no reference, outputs off; settings kept). `tools echo text` answers the text.
- Settings (`get`/`set`): device `deviceid` (`device.id`), `system.serial`, `version`,
  `version.build`, `system.axiscount`, `system.access`, `device.hw.modified`, `comm.rs232.baud`,
  `comm.checksum` (settable); axis `pos` (settable: sets the reference), `maxspeed`, `accel`,
  `limit.approach.maxspeed` (settable), `limit.min`, `limit.max`, `limit.home.triggered`,
  `motion.busy`, `resolution`, `peripheralid` (`peripheral.id`), `peripheral.serial`,
  `peripheral.hw.modified`. An axis setting read at device scope answers one value per axis.
- Native units ("Physical units"): position in microsteps; maxspeed = microsteps/s x 1.6384;
  accel = microsteps/s^2 x 1.6384 / 10000 (0: no ramp).
- `io info` (analog out, analog in, digital out, digital in), `io get do [n]`, `io set do n 0|1`.

Where the manual is silent, the twin chooses and says so here:
- The default microstep, 0.49609375 um, is a 6.35 mm lead screw at 200 full steps per turn
  and the default resolution of 64 microsteps per step; `deviceid`, `peripheralid`, the serials
  and `version` are placeholders (zaber-motion looks them up only when identifying). The version,
  7.21, is one that has every setting the twin serves and none it lacks (comm.packet.size.max,
  multi-setting `get` and the other settings of 7.26 and later are not served).
- A command whose checksum fails is ignored: no reply, nothing done (its address cannot be
  trusted either, and the manual's rejection reasons include none for a checksum). Alerts
  (`comm.alert`), info messages, streams, triggers and lockstep are not modelled: answered
  BADCOMMAND, as a setting or command the twin does not have.
- Relative, min/max and velocity moves need a reference, as absolute ones do (the twin's
  choice: it keeps an unhomed collector from moving at all). `move vel 0` stops as `stop` does.
- Moves follow a trapezoidal profile from rest; a move sent while the axis moves starts its
  profile from where the axis is, at rest (no velocity blending). A stall stops the axis at
  once. Settings changed during a move apply from the next one.
- At power-up each carriage sits at `power_up_mm` and `pos` reads 0 there; homing drives it to
  the home sensor (0 mm) and the reference is set when it arrives; a stop or stall on the way
  leaves the axis without reference. A latched FS does not refuse later moves.
- Device settings read at axis scope, and `io` at axis scope, answer DEVICEONLY; writing a
  read-only setting answers BADCOMMAND. Digital outputs: 4, all off at power-up.
Fault hook: `stall(axis=None)` (every axis if None): FS, the axis stops where it is.
"""
import math
import re
import threading
from dataclasses import dataclass, field, replace
from functools import cached_property

from quenchlab.clock import ReactorClock

VELOCITY_UNIT = 1.6384  # maxspeed data per microstep/s
ACCEL_UNIT = 1.6384 / 10000  # accel data per microstep/s^2
PRIORITY = ("FD", "FQ", "FS", "FT", "FB", "FP", "FE", "WH", "WL", "WP", "WV", "WT", "WM", "WR",
            "NC", "NI", "ND", "NU", "NJ")  # highest first
CLEARABLE = {"FS"}  # by `warnings clear`
DIGITAL_OUTPUTS = 4
HISTORY = 64  # segments (and shutter changes) kept for where(t) in the recent past
DEVICE = {"deviceid": "30222", "device.id": "30222", "system.serial": "12345", "version": "7.21",
          "version.build": "1877", "system.axiscount": "2", "system.access": "1",
          "device.hw.modified": "0"}  # placeholders, see above
PERIPHERAL = {"resolution": "64", "peripheralid": "70245", "peripheral.id": "70245", "peripheral.serial": "0",
              "peripheral.hw.modified": "0"}


def lrc(text: str) -> str:
    """The manual's checksum of `text`: two hex digits that bring its byte sum to 0 mod 256."""
    return f"{-sum(text.encode('ascii')) & 0xFF:02X}"


class _Rejected(Exception):
    """Answered RJ with this reason."""


def _integer(text: str) -> int:
    if not re.fullmatch(r"-?\d+", text):
        raise _Rejected("BADDATA")
    return int(text)


def _profile(distance: float, speed: float, accel: float) -> tuple[tuple[float, float, float], ...]:
    """Phases (duration s, velocity at start, acceleration) of a trapezoidal move from rest."""
    d, sign = abs(distance), math.copysign(1.0, distance)
    if not d:
        return ()
    if not accel:
        return ((d / speed, sign * speed, 0.0),)
    ramp = speed / accel
    if d < speed * ramp:  # a triangle: the peak speed is never reached
        speed = math.sqrt(d * accel)
        ramp = speed / accel
        return ((ramp, 0.0, sign * accel), (ramp, sign * speed, -sign * accel))
    return ((ramp, 0.0, sign * accel), ((d - speed * ramp) / speed, sign * speed, 0.0),
            (ramp, sign * speed, -sign * accel))


@dataclass(frozen=True)
class Segment:
    """One motion of an axis from reactor time `start`: from `origin` to `target` (microsteps
    from the home sensor) in phases of constant acceleration; frozen where it was at `halted`
    (a stall)."""

    start: float
    origin: float
    target: float
    phases: tuple[tuple[float, float, float], ...]
    home: bool = False
    halted: float = math.inf

    @cached_property
    def arrival(self) -> float:
        return self.start + sum(phase[0] for phase in self.phases)

    @property
    def end(self) -> float:
        return min(self.arrival, self.halted)

    def state(self, t: float) -> tuple[float, float]:
        """(position, velocity) at reactor time t."""
        if self.arrival <= t < self.halted:
            return self.target, 0.0
        left, x, v = min(t, self.halted) - self.start, self.origin, 0.0
        for duration, v0, a in self.phases:
            dt = min(max(left, 0.0), duration)
            x, v = x + v0 * dt + a * dt * dt / 2, v0 + a * dt
            left -= duration
        return x, (v if t < self.end else 0.0)


@dataclass
class _Axis:
    maxspeed: int
    accel: int
    approach: int  # limit.approach.maxspeed
    travel: int  # limit.max
    start: float  # where the carriage sat at power-up, microsteps from the home sensor
    offset: float  # where `pos` reads 0, microsteps from the home sensor (0 once homed)
    segments: list[Segment] = field(default_factory=list)
    homed: bool = False
    flags: set[str] = field(default_factory=set)  # latched FS, NI

    def segment(self, t: float) -> Segment | None:
        return next((s for s in reversed(self.segments) if s.start <= t), None)

    def physical(self, t: float) -> float:
        segment = self.segment(t)
        return segment.state(t)[0] if segment else self.start

    def busy(self, t: float) -> bool:
        return bool(self.segments) and t < self.segments[-1].end

    def settle(self, t: float) -> None:
        """A home that has arrived by t sets the reference."""
        last = self.segments[-1] if self.segments else None
        if last and last.home and not self.homed and last.arrival <= t < last.halted:
            self.homed, self.offset = True, 0.0

    def warnings(self) -> set[str]:
        return self.flags | ({"WR"} if not self.homed else set())

    def begin(self, t: float, target: float, speed: float, home: bool = False) -> None:
        """A movement command at t: a move from rest to `target` at maxspeed data `speed`
        (NI if it interrupts one in progress)."""
        here = self.physical(t)
        phases = _profile(target - here, speed / VELOCITY_UNIT, self.accel / ACCEL_UNIT)
        self._append(t, Segment(t, here, target, phases, home))

    def stop(self, t: float, at_once: bool = False) -> None:
        """Decelerate at accel (at once for an estop) from the present velocity of the move in
        progress (NI)."""
        here, v = self.segments[-1].state(t)
        accel = self.accel / ACCEL_UNIT
        if not (accel and v) or at_once:
            return self._append(t, Segment(t, here, here, ()))
        sign = math.copysign(1.0, v)
        self._append(t, Segment(t, here, here + sign * v * v / (2 * accel), ((abs(v) / accel, v, -sign * accel),)))

    def _append(self, t: float, segment: Segment) -> None:
        (self.flags.add if self.busy(t) else self.flags.discard)("NI")
        self.segments.append(segment)
        del self.segments[:-HISTORY]


class ZaberTwin:
    """The controller with its two stages, moving on the reactor clock; served by a PtyServer."""

    terminator = b"\n"

    def __init__(self, clock: ReactorClock, *, microstep_um: float = 0.49609375,
                 travel_mm: tuple[float, float] = (150.0, 150.0), maxspeed_mm_s: float = 20.0,
                 accel_mm_s2: float = 200.0, home_speed_mm_s: float = 10.0,
                 power_up_mm: tuple[float, float] = (75.0, 75.0), shutter_output: int = 1,
                 address: int = 1, baudrate: int = 115200):
        if not 1 <= shutter_output <= DIGITAL_OUTPUTS:
            raise ValueError(f"the shutter is on a digital output 1-{DIGITAL_OUTPUTS}, not {shutter_output}")
        self.clock, self.microstep_um, self.shutter_output = clock, microstep_um, shutter_output
        self.address, self.baudrate = address, baudrate
        steps = 1000 / microstep_um  # per mm
        self.axes = [_Axis(maxspeed=round(maxspeed_mm_s * steps * VELOCITY_UNIT),
                           accel=round(accel_mm_s2 * steps * ACCEL_UNIT),
                           approach=round(home_speed_mm_s * steps * VELOCITY_UNIT),
                           travel=round(travel * steps), start=start * steps, offset=start * steps)
                     for travel, start in zip(travel_mm, power_up_mm)]
        self.outputs = [0] * DIGITAL_OUTPUTS
        self.checksum = False  # comm.checksum
        self.received = 0  # messages that reached the controller at its baud rate
        self._shutter: list[tuple[float, bool]] = []  # (reactor time, open) at each change
        self._still: tuple | None = None  # (the last commands, when their motion ended, where)
        self._lock = threading.RLock()

    # --- the physics world's view ------------------------------------------------------------
    def where(self, t: float) -> tuple[float, float, bool]:
        """(x mm, y mm, shutter open) at reactor time t. The world asks at each of its steps:
        once the last command's motion is over, the answer is kept until the next command."""
        with self._lock:
            motions = [axis.segments[-1] for axis in self.axes if axis.segments]
            commands = (self._shutter[-1:], motions)
            kept = self._still
            if kept and kept[0] == commands and t >= kept[1]:
                return kept[2]
            x, y = (axis.physical(t) * self.microstep_um / 1000 for axis in self.axes)
            shutter = next((state for when, state in reversed(self._shutter) if when <= t), False)
            still_from = max([when for when, _ in self._shutter[-1:]] + [motion.end for motion in motions], default=0.0)
            if t >= still_from:
                self._still = (commands, still_from, (x, y, shutter))
            return x, y, shutter

    # --- fault hooks -------------------------------------------------------------------------
    def stall(self, axis: int | None = None) -> None:
        """Stalling detected: the axis (every axis if None) stops where it is, FS latched."""
        with self._lock:
            now = self.clock.now()
            for one in self._targets(axis or 0):
                one.settle(now)
                if one.busy(now):
                    one.segments[-1] = replace(one.segments[-1], halted=now)
                one.flags.add("FS")

    FAULTS = ("stall",)

    def inject(self, fault: str) -> None:
        """Fault injection: "stall" (every axis stops with FS)."""
        {"stall": self.stall}[fault]()

    # --- protocol ----------------------------------------------------------------------------
    def split(self, buffer: bytes) -> tuple[list[bytes], bytes]:
        """Messages end with LF, CR or CRLF."""
        *messages, rest = re.split(rb"[\r\n]", buffer)
        return [message for message in messages if message.strip()], rest

    def handle(self, message: bytes) -> bytes | None:
        self.received += 1
        text = message.decode("ascii", "replace").strip()
        if not text.startswith("/"):
            return None
        body, marked, checksum = text[1:].partition(":")
        if marked and checksum.strip().upper() != lrc(body):
            return None  # failed its checksum: ignored
        words = body.split()
        head = []
        while words and len(head) < 3 and (words[0].isdigit() or (len(head) == 2 and words[0] == "--")):
            head.append(words.pop(0))
        device, axis, ident = (head + ["0", "0", "--"][len(head):])
        if int(device) not in (0, self.address):
            return None
        axis, ident = int(axis), None if ident == "--" else int(ident)
        with self._lock:
            now = self.clock.now()
            for one in self.axes:
                one.settle(now)
            try:
                if ident is not None and ident > 99:
                    ident = None
                    raise _Rejected("BADMESSAGEID")
                if axis > len(self.axes):
                    raise _Rejected("BADAXIS")
                flag, data = "OK", self._command(axis, words, now)
            except _Rejected as rejected:
                flag, data = "RJ", str(rejected)
            return self._reply(axis, ident, flag, data, now)

    def _reply(self, axis: int, ident: int | None, flag: str, data: str, now: float) -> bytes:
        axes = self._targets(axis)
        status = "BUSY" if any(one.busy(now) for one in axes) else "IDLE"
        warnings = set().union(*(one.warnings() for one in axes))
        warning = next((w for w in PRIORITY if w in warnings), "--")
        body = f"{self.address:02d} {axis}{'' if ident is None else f' {ident:02d}'} {flag} {status} {warning} {data}"
        return f"@{body}{':' + lrc(body) if self.checksum else ''}\r\n".encode("ascii")

    def _targets(self, axis: int) -> list[_Axis]:
        """The axis addressed; every axis for 0 (and for a bad axis number, in its RJ reply)."""
        return [self.axes[axis - 1]] if 0 < axis <= len(self.axes) else self.axes

    def _command(self, axis: int, words: list[str], now: float) -> str:
        name, args = (words[0], words[1:]) if words else ("", [])
        handler = getattr(self, f"_cmd_{name}", None) if name.isalpha() or not name else None
        if handler is None:
            raise _Rejected("BADCOMMAND")
        return handler(axis, args, now)

    def _cmd_(self, axis: int, args: list[str], now: float) -> str:
        return "0"

    def _cmd_home(self, axis: int, args: list[str], now: float) -> str:
        if args:
            raise _Rejected("BADDATA")
        for one in self._targets(axis):
            one.homed = False
            one.begin(now, 0.0, one.approach, home=True)
            one.settle(now)  # already at the sensor: homed at once
        return "0"

    def _cmd_move(self, axis: int, args: list[str], now: float) -> str:
        """move abs|rel n, move min|max, move vel v: each axis's target (and speed) first, all
        checked before any moves; axes with a reference only. Targets are positions as `pos`
        reads them (the distance from the sensor once homed, shifted by a `set pos`)."""
        kind, values = (args[0], args[1:]) if args else ("", [])
        if kind not in ("abs", "rel", "min", "max", "vel"):
            raise _Rejected("BADCOMMAND")
        if len(values) != (kind in ("abs", "rel", "vel")):
            raise _Rejected("BADDATA")
        value = _integer(values[0]) if values else 0
        axes = self._targets(axis)
        if kind == "vel" and value == 0:
            return self._cmd_stop(axis, [], now)
        plans = []
        for one in axes:
            here = round(one.physical(now) - one.offset)
            target = {"abs": value, "rel": here + value, "min": 0, "max": one.travel,
                      "vel": one.travel if value > 0 else 0}[kind]
            if not one.homed or not 0 <= target <= one.travel:
                raise _Rejected("BADDATA")
            plans.append((one, target + one.offset, abs(value) if kind == "vel" else one.maxspeed))
        for one, target, speed in plans:
            one.begin(now, target, speed)
        return "0"

    def _cmd_stop(self, axis: int, args: list[str], now: float, at_once: bool = False) -> str:
        if args:
            raise _Rejected("BADDATA")
        for one in self._targets(axis):
            if one.busy(now):
                one.stop(now, at_once)
        return "0"

    def _cmd_estop(self, axis: int, args: list[str], now: float) -> str:
        return self._cmd_stop(axis, args, now, at_once=True)

    def _cmd_system(self, axis: int, args: list[str], now: float) -> str:
        """system reset: the reply, then a restart as at power-up (settings kept)."""
        if axis:
            raise _Rejected("DEVICEONLY")
        if args != ["reset"]:
            raise _Rejected("BADCOMMAND" if not args else "BADDATA")
        for one in self.axes:
            if one.busy(now):
                one.stop(now, at_once=True)
            here = one.physical(now)
            one.segments.append(Segment(now, here, here, ()))  # a home already done sets no reference again
            one.offset, one.homed, one.flags = here, False, set()
        return self._set_outputs(dict.fromkeys(range(DIGITAL_OUTPUTS), "0"), now)

    def _cmd_tools(self, axis: int, args: list[str], now: float) -> str:
        if args[:1] != ["echo"]:
            raise _Rejected("BADCOMMAND")
        return " ".join(args[1:]) or "0"

    def _cmd_warnings(self, axis: int, args: list[str], now: float) -> str:
        if args not in ([], ["clear"]):
            raise _Rejected("BADDATA")
        axes = self._targets(axis)
        shown = [w for w in PRIORITY if any(w in one.warnings() for one in axes)]
        if args:
            for one in axes:
                one.flags -= CLEARABLE
        return " ".join([f"{len(shown):02d}", *shown])

    def _cmd_get(self, axis: int, args: list[str], now: float) -> str:
        if len(args) != 1:
            raise _Rejected("BADDATA")
        name = args[0]
        device = {**DEVICE, "comm.checksum": str(int(self.checksum)), "comm.rs232.baud": str(self.baudrate)}
        if name in device:
            if axis:
                raise _Rejected("DEVICEONLY")
            return device[name]
        return " ".join(self._axis_setting(one, name, now) for one in self._targets(axis))

    def _axis_setting(self, one: _Axis, name: str, now: float) -> str:
        if name in PERIPHERAL:
            return PERIPHERAL[name]
        values = {"pos": lambda: round(one.physical(now) - one.offset), "maxspeed": lambda: one.maxspeed,
                  "accel": lambda: one.accel, "limit.approach.maxspeed": lambda: one.approach,
                  "limit.min": lambda: 0, "limit.max": lambda: one.travel,
                  "limit.home.triggered": lambda: int(one.physical(now) <= 0.5),
                  "motion.busy": lambda: int(one.busy(now))}
        if name not in values:
            raise _Rejected("BADCOMMAND")
        return str(values[name]())

    def _cmd_set(self, axis: int, args: list[str], now: float) -> str:
        if len(args) != 2:
            raise _Rejected("BADDATA")
        name, value = args[0], _integer(args[1])
        if name == "comm.checksum":
            if axis or value not in (0, 1):
                raise _Rejected("DEVICEONLY" if axis else "BADDATA")
            self.checksum = bool(value)
            return "0"
        if name == "pos":  # the axis is where it is, now called `value`: a reference
            for one in self._targets(axis):
                if one.busy(now):
                    raise _Rejected("BADDATA")  # the twin's choice: not while it moves
            for one in self._targets(axis):
                one.offset, one.homed = one.physical(now) - value, True
            return "0"
        attribute = {"maxspeed": "maxspeed", "accel": "accel", "limit.approach.maxspeed": "approach"}.get(name)
        if attribute is None:
            raise _Rejected("BADCOMMAND")
        if value < (0 if name == "accel" else 1):
            raise _Rejected("BADDATA")
        for one in self._targets(axis):
            setattr(one, attribute, value)
        return "0"

    def _cmd_io(self, axis: int, args: list[str], now: float) -> str:
        if axis:
            raise _Rejected("DEVICEONLY")
        if args == ["info"]:
            return f"0 0 {DIGITAL_OUTPUTS} 0"
        if args[:2] == ["get", "do"] and len(args) <= 3:
            channels = [self._channel(args[2])] if len(args) == 3 else range(DIGITAL_OUTPUTS)
            return " ".join(str(self.outputs[c]) for c in channels)
        if args[:3] == ["set", "do", "port"] and len(args) == 3 + DIGITAL_OUTPUTS:
            return self._set_outputs(dict(enumerate(args[3:])), now)
        if args[:2] == ["set", "do"] and len(args) == 4:
            return self._set_outputs({self._channel(args[2]): args[3]}, now)
        raise _Rejected("BADDATA" if args[:1] in (["get"], ["set"]) else "BADCOMMAND")

    def _set_outputs(self, values: dict[int, str], now: float) -> str:
        """io set do n 0|1, io set do port a b c d: every value checked before any is set."""
        if any(value not in ("0", "1") for value in values.values()):
            raise _Rejected("BADDATA")
        for channel, value in values.items():
            self.outputs[channel] = int(value)
        shutter = bool(self.outputs[self.shutter_output - 1])
        if shutter != next((state for _, state in reversed(self._shutter)), False):
            self._shutter = [*self._shutter[-HISTORY:], (now, shutter)]
        return "0"

    @staticmethod
    def _channel(text: str) -> int:
        channel = _integer(text)
        if not 1 <= channel <= DIGITAL_OUTPUTS:
            raise _Rejected("BADDATA")
        return channel - 1
