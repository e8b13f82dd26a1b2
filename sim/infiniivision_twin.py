"""Twin of a Keysight InfiniiVision oscilloscope used as a digitizer, speaking SCPI on TCP.

Written from the "InfiniiVision 3000 X-Series Oscilloscopes Programmer's Guide": :CHANnel<n>
(RANGe = 8 divisions, SCALe, OFFSet, COUPling, PROBe), :TIMebase (RANGe = 10 divisions,
POSition = trigger to reference point, REFerence LEFT/CENTer/RIGHt at 1, 5 or 9 divisions),
:TRIGger[:EDGE], :SINGle/:RUN/:STOP/:DIGitize, :TER? (read-and-clear trigger event),
:OPERegister:CONDition? (bit 3 = 8, Run), and :WAVeform (PREamble, DATA? as an IEEE 488.2
definite-length block; volts = (code - yreference) * yincrement + yorigin,
time = (index - xreference) * xincrement + xorigin, in seconds from the trigger; each also has its
own query, :WAVeform:XINCrement? ... :YREFerence?). Armed, the scope first fills the part of the
record before the trigger and takes no trigger until it has; then it is armed: :AER? (read and
cleared, and by *CLS, as :TER? is) answers 1 and :OPERegister:CONDition? has bit 5 (32, Wait
Trig) set while it waits.
After *RST the scope runs (:RUN, auto sweep: a record whether or not a trigger comes, so
:WAVeform:DATA? answers without :DIGitize) with channel 1 shown and the others off; :SINGle
takes one record and stops, :RUN keeps taking them (each after a trigger in normal sweep).
Blocks are definite-length with an 8-digit length (#8NNNNNNNN) in every format, ASCii too;
signed BYTE/WORD data (:WAVeform:UNSigned OFF) run from -128/-32768 with the preamble's y
reference 0, unsigned from 0 with it at mid-scale. Code 0 (-128/-32768 signed) is a hole, never
data: a reading below the screen is clipped to the next code, above it to the top one.
:ACQuire:TYPE (NORMal, PEAK, AVERage, HRESolution: the preamble's type 0-3, and with AVERage its
count :ACQuire:COUNt, 2-65536), :CHANnel<n>:BWLimit, :CHANnel<n>:IMPedance (ONEMeg, FIFTy) and
:WAVeform:POINts:MODE (NORMal, MAXimum, RAW) are kept and read back; their effect on the data is
not modelled. :ACQuire:POINts? gives the points of a record. :TIMebase:MODE is MAIN (the only
one modelled) and :TIMebase? sums the time base up. :TRIGger:SLOPe takes EITHer as well.
:DIGitize takes a list of channels. The number of LAN connections the scope serves at once is
not in the material at hand: one. Assumed *RST values: :ACQuire:COUNt 8, the channels' scale
1 V/div.

Segmented memory (an option; `segments` its most, 1000 on the 3000T X-Series; 0 is a scope without
it, where :ACQuire:MODE SEGMented is refused): :ACQuire:MODE SEGMented with :ACQuire:SEGMented:COUNt
(2 to the most) takes one
segment per trigger, the acquisition memory divided between them, and stops once all are
taken, under :RUN as under :SINGle (the twin's reading); :ACQuire:SEGMented:INDex selects the
segment that :WAVeform:DATA? and :PREamble? give (with :WAVeform:SEGMented:ALL ON, DATA? gives
every segment taken, one after another, and the preamble the points of one),
:WAVeform:SEGMented:COUNt? says how many were taken and :WAVeform:SEGMented:TTAG? the selected
one's trigger time from the first (NR3). AVERage is not available in segmented mode. *OPT?
names SGM. From the 3000T X-Series guide; not in the material at hand, so assumed: the *RST
count (2), the memory (4 Mpts) and a re-arm time of 20 us (the 1000 X-Series user's guide gives
about 19 us), the refusals' error (-221), and *OPT?'s layout ("0,0,SGM").
"""
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .fjh_world import FJHWorld
from .scpi import (
    ScpiEngine,
    ScpiError,
    format_bool,
    format_number,
    one_of,
    parse_bool,
    parse_choice,
    parse_number,
    stored,
)

MAX_POINTS = 62500  # the measurement record in NORMal mode
MEMORY = 4_000_000  # points of acquisition memory, divided between the segments
MAX_SEGMENTS = 1000  # the 3000T X-Series'
REARM = 20e-6  # s after a segment's record before the next trigger is taken
REFERENCE_DIVISION = {"LEFT": 1, "CENT": 5, "RIGH": 9}
FORMAT_CODE = {"BYTE": 0, "WORD": 1, "ASC": 4}
TYPE_CODE = {"NORM": 0, "PEAK": 1, "AVER": 2, "HRES": 3}

Signal = Callable[[np.ndarray], np.ndarray]  # reactor times -> volts at the input


@dataclass
class Channel:
    scale: float = 1.0  # V/div
    offset: float = 0.0  # V at screen centre
    coupling: str = "DC"
    probe: float = 1.0
    display: bool = True
    bandwidth_limit: bool = False
    impedance: str = "ONEM"


class InfiniiVisionTwin:
    """A 4-channel scope whose inputs are wired to signals of the world."""

    terminator = b"\n"

    def __init__(self, world: FJHWorld, inputs: dict[int, Signal], model: str = "DSO-X 3024T",  # as *IDN? gives it
                 noise: float = 2e-3, seed: int | None = None, segments: int = MAX_SEGMENTS):
        self.world = world
        self.segments_option = segments
        self.inputs = inputs
        self.noise = noise  # V rms of the front end
        self.rng = np.random.default_rng(seed)
        self.engine = ScpiEngine(f"KEYSIGHT TECHNOLOGIES,{model},MYSIM0001,07.50.2021102830",
                                 options="0,0,SGM" if segments else "0")
        self._register()
        self.reset()

    def reset(self) -> None:
        self.channels = {n: Channel(display=n == 1) for n in range(1, 5)}
        self.time_scale, self.time_position, self.reference = 100e-6, 0.0, "CENT"
        self.trigger_source, self.trigger_level, self.trigger_slope = "CHAN1", 0.0, "POS"
        self.sweep = "AUTO"
        self.acquire_type, self.average_count, self.points_mode, self.time_mode = "NORM", 8, "NORM", "MAIN"
        self.state = "stopped"  # stopped | armed | triggered
        self.continuous = False  # :RUN (after each record the next) or :SINGle (one, then stopped)
        self.armed_at = self.trigger_time = math.inf
        self.trigger_event = self.arm_event = False
        self._arm_noted = math.nan  # armed_at of the arming :AER? last reported
        self.wave_source, self.wave_format, self.msb_first, self.unsigned = 1, "BYTE", True, True
        self.wave_points, self.all_segments = 1000, False
        self.record: dict[int, np.ndarray] = {}
        self.acquire_mode, self.segment_count, self.segment_index = "RTIM", 2, 1
        self.segments: list[tuple[float, dict[int, np.ndarray]]] = []  # (trigger time, record) each
        self._run()

    # --- acquisition ---------------------------------------------------------------------
    def _span(self) -> tuple[float, float]:
        """Start of the record relative to the trigger, and its length (s)."""
        length = 10 * self.time_scale
        return self.time_position - REFERENCE_DIVISION[self.reference] * self.time_scale, length

    def _update(self) -> None:
        """Find the triggers and complete the records as reactor time passes: one record, or in
        segmented mode one per trigger until every segment is taken."""
        with self.world.lock:
            self.world.advance()
            now = self.world.time
        while True:
            if self.state == "armed" and self.armed_at <= now and self.armed_at != self._arm_noted:
                self.arm_event, self._arm_noted = True, self.armed_at  # an event: once per arming
            if self.state == "armed" and self.continuous and self.sweep == "AUTO":  # a record, trigger or not
                start, length = self._span()
                found = self._find_trigger(now)
                self.trigger_time = found if found is not None else now - start - length
                self.state, self.trigger_event = "triggered", self.trigger_event or found is not None
            if self.state == "armed":
                found = self._find_trigger(now)
                if found is None:
                    return
                self.state, self.trigger_time, self.trigger_event = "triggered", found, True
            start, length = self._span()
            end = self.trigger_time + start + length
            if self.state != "triggered" or now < end:
                return
            self._capture()
            if self.acquire_mode == "SEGM":
                taken = len(self.segments) == self.segment_count
                self.state, self.armed_at = (("stopped", math.inf) if taken
                                             else ("armed", end + REARM + self._pre_trigger()))
                self.continuous = self.continuous and not taken
            elif self.continuous:
                self.state, self.armed_at = "armed", max(end, now) + self._pre_trigger()
                return
            else:
                self.state = "stopped"

    def _find_trigger(self, now: float) -> float | None:
        if self.trigger_source == "EXT":
            return next((t for t in self.world.trigger_line if self.armed_at <= t <= now), None)
        channel = int(self.trigger_source[4:])
        history = self.world.history(self.armed_at, now)
        times = history["t"][history["t"] >= self.armed_at]
        if times.size < 2:
            return None
        volts = self.inputs.get(channel, np.zeros_like)(times)
        above = volts >= self.trigger_level
        rising, falling = ~above[:-1] & above[1:], above[:-1] & ~above[1:]
        crossings = np.flatnonzero({"POS": rising, "NEG": falling, "EITH": rising | falling}[self.trigger_slope])
        return float(times[crossings[0] + 1]) if crossings.size else None

    def _record_points(self) -> int:
        """Points of a record (:ACQuire:POINts?)."""
        points = min(self.wave_points, MAX_POINTS)
        return min(points, MEMORY // self.segment_count) if self.acquire_mode == "SEGM" else points

    def _capture(self) -> None:
        start, length = self._span()
        points = self._record_points()
        times = self.trigger_time + start + np.arange(points) * (length / points)
        record = {}
        for n, channel in self.channels.items():
            signal = self.inputs.get(n)
            volts = signal(times) if signal else np.zeros(points)
            if channel.coupling == "AC":
                volts = volts - volts.mean()
            record[n] = volts + self.rng.normal(0.0, self.noise, points)
        if self.acquire_mode == "SEGM":
            self.segments.append((self.trigger_time, record))
        self.record = record

    def _run(self) -> None:
        self._arm()
        self.continuous = True

    def _arm(self) -> None:
        self.continuous = False
        self.record, self.segments = {}, []
        self.state, self.armed_at, self.trigger_time = "armed", self.world.time + self._pre_trigger(), math.inf

    def _pre_trigger(self) -> float:
        """s of the record before the trigger: a scope fills them before it takes a trigger."""
        return max(0.0, -self._span()[0])

    # --- waveform transfer -------------------------------------------------------------
    def _selected(self) -> dict[int, np.ndarray]:
        """The record :WAVeform gives: the last one, or in segmented mode the indexed segment."""
        if self.acquire_mode != "SEGM":
            return self.record
        return self.segments[self.segment_index - 1][1] if self.segment_index <= len(self.segments) else {}

    def _transferred(self) -> np.ndarray:
        """The volts :WAVeform:DATA? gives: the selected record, or every segment (SEGMented:ALL)."""
        if self.acquire_mode == "SEGM" and self.all_segments and self.segments:
            return np.concatenate([record[self.wave_source] for _, record in self.segments])
        record = self._selected()
        if self.wave_source not in record:
            raise ScpiError(-230, "Data corrupt or stale")
        return record[self.wave_source]

    def preamble(self) -> tuple[int, float, float, int, float, float, int]:
        channel = self.channels[self.wave_source]
        start, length = self._span()
        points = len(self._selected().get(self.wave_source, ())) or min(self.wave_points, MAX_POINTS)
        full = 8 * channel.scale
        codes = 256 if self.wave_format == "BYTE" else 65536
        y_reference = codes // 2 if self.unsigned else 0
        return points, length / points, start, 0, full / (codes * 0.8), channel.offset, y_reference

    def _waveform_data(self) -> bytes:
        volts = self._transferred()
        if self.wave_format == "ASC":
            body = ",".join(f"{v:+.6E}" for v in volts).encode("ascii")
        else:
            _, _, _, _, y_inc, y_org, y_ref = self.preamble()
            half = 128 if self.wave_format == "BYTE" else 32768
            low = 0 if self.unsigned else -half  # signed codes centre on 0, unsigned on y_ref; low is a hole
            codes = np.clip(np.round((volts - y_org) / y_inc) + y_ref, low + 1, low + 2 * half - 1)
            kind = ("u" if self.unsigned else "i") + ("1" if self.wave_format == "BYTE" else "2")
            order = ">" if self.msb_first else "<"
            body = codes.astype(np.dtype(order + kind)).tobytes()
        return f"#8{len(body):08d}".encode() + body

    # --- protocol ----------------------------------------------------------------------
    def handle(self, message: bytes) -> bytes | None:
        self._update()
        text = message.decode("ascii", errors="replace").strip()
        if text.upper().startswith((":WAV:DATA?", ":WAVEFORM:DATA?", "WAV:DATA?", "WAVEFORM:DATA?")):
            try:
                return self._waveform_data() + b"\n"
            except ScpiError as error:
                self.engine.push_error(error.code, error.message)
                return None
        reply = self.engine.handle(text)
        return None if reply is None else reply.encode("ascii") + b"\n"

    def _register(self) -> None:
        e = self.engine.command
        e("*RST", lambda a, q: self.reset(), query=False)
        e("*CLS", lambda a, q: self._clear_status(), query=False, max_args=0)
        e(":CHANnel<n>:SCALe", self._channel("scale", 1e-3, 5.0))
        e(":CHANnel<n>:RANGe", self._channel_range)
        e(":CHANnel<n>:OFFSet", self._channel("offset", -40.0, 40.0))
        e(":CHANnel<n>:PROBe", self._channel("probe", 0.001, 10000.0))
        e(":CHANnel<n>:COUPling", self._channel_coupling)
        e(":CHANnel<n>:DISPlay", self._channel_display)
        e(":CHANnel<n>:IMPedance", self._channel_impedance)
        e(":CHANnel<n>", self._channel_summary, set=False)
        e(":TIMebase:SCALe", self._timebase_scale)
        e(":TIMebase:RANGe", self._timebase_range)
        e(":TIMebase:POSition", self._setting("time_position", -500.0, 500.0))
        e(":TIMebase:REFerence", stored(self, "reference", one_of(["LEFT", "CENTer", "RIGHt"])))
        e(":TIMebase:MODE", stored(self, "time_mode", one_of(["MAIN"])))
        e(":TIMebase", lambda a, q: self._timebase_summary(), set=False)
        e(":TRIGger:MODE", self._trigger_mode)
        e(":TRIGger:SWEep", stored(self, "sweep", one_of(["AUTO", "NORMal"])))
        e(":TRIGger[:EDGE]:SOURce", self._trigger_source)
        e(":TRIGger[:EDGE]:LEVel", self._setting("trigger_level", -100.0, 100.0))
        e(":TRIGger[:EDGE]:SLOPe", stored(self, "trigger_slope", one_of(["POSitive", "NEGative", "EITHer"])))
        e(":TRIGger:FORCe", lambda a, q: self._force(), query=False)
        e(":SINGle", lambda a, q: self._arm(), query=False)
        e(":RUN", lambda a, q: self._run(), query=False)
        e(":STOP", lambda a, q: self._stop(), query=False)
        e(":DIGitize", lambda a, q: self._digitize(a), query=False, max_args=None)
        e(":ACQuire:TYPE", self._acquire_type)
        e(":ACQuire:COUNt", self._setting("average_count", 2, 65536, integer=True))
        e(":ACQuire:POINts", lambda a, q: str(self._record_points()), set=False)
        e(":CHANnel<n>:BWLimit", self._channel_limit)
        e(":WAVeform:POINts:MODE", stored(self, "points_mode", one_of(["NORMal", "MAXimum", "RAW"])))
        e(":TER", lambda a, q: self._read_event("trigger_event"), set=False)
        e(":AER", lambda a, q: self._read_event("arm_event"), set=False)
        e(":OPERegister:CONDition", lambda a, q: self._operation(), set=False)
        e(":WAVeform:SOURce", self._wave_source)
        e(":WAVeform:FORMat", stored(self, "wave_format", one_of(["BYTE", "WORD", "ASCii"])))
        e(":WAVeform:BYTeorder", self._byte_order)
        e(":WAVeform:UNSigned", stored(self, "unsigned", parse_bool, format_bool))
        e(":WAVeform:POINts", self._setting("wave_points", 100, MAX_POINTS, integer=True))
        e(":WAVeform:PREamble", lambda a, q: self._preamble_text(), set=False)
        for n, name in enumerate(("XINCrement", "XORigin", "XREFerence", "YINCrement", "YORigin", "YREFerence")):
            e(f":WAVeform:{name}", lambda a, q, n=n: self._preamble_text().split(",")[4 + n], set=False)
        e(":ACQuire:MODE", self._acquire_mode)
        e(":ACQuire:SEGMented:COUNt", self._setting("segment_count", 2, max(self.segments_option, 2), integer=True))
        e(":ACQuire:SEGMented:INDex", self._segment_index)
        e(":WAVeform:SEGMented:COUNt", lambda a, q: str(len(self.segments)), set=False)
        e(":WAVeform:SEGMented:TTAG", lambda a, q: self._time_tag(), set=False)
        e(":WAVeform:SEGMented:ALL", stored(self, "all_segments", parse_bool, format_bool))

    def _clear_status(self) -> None:
        self.engine.clear_status()
        self.trigger_event = self.arm_event = False

    def _operation(self) -> str:
        """Bit 3 (8) Run: not stopped; bit 5 (32) Wait Trig: armed, the pre-trigger filled."""
        running = self.state != "stopped" or self.continuous
        waiting = self.state == "armed" and self.world.time >= self.armed_at
        return f"+{8 * running + 32 * waiting}"

    def _acquire_type(self, args, query):
        if query:
            return self.acquire_type
        kind = parse_choice(args, 0, ["NORMal", "AVERage", "HRESolution", "PEAK"])
        if kind == "AVER" and self.acquire_mode == "SEGM":
            raise ScpiError(-221, "Settings conflict;averaging is not available in segmented mode")
        self.acquire_type = kind

    def _timebase_summary(self) -> str:
        return (f":TIM:MODE {self.time_mode};REF {self.reference};MAIN:RANG {format_number(10 * self.time_scale)};"
                f"POS {format_number(self.time_position)}")

    def _acquire_mode(self, args, query):
        if query:
            return self.acquire_mode
        mode = parse_choice(args, 0, ["RTIMe", "SEGMented"])
        if mode == "SEGM" and not self.segments_option:
            raise ScpiError(-221, "Settings conflict;segmented memory option not installed")
        if mode == "SEGM" and self.acquire_type == "AVER":
            raise ScpiError(-221, "Settings conflict;averaging is not available in segmented mode")
        self.acquire_mode = mode

    def _segment_index(self, args, query):
        if query:
            return str(self.segment_index)
        self.segment_index = int(parse_number(args, minimum=1, maximum=self.segment_count))

    def _time_tag(self) -> str:
        if self.acquire_mode != "SEGM" or self.segment_index > len(self.segments):
            raise ScpiError(-230, "Data corrupt or stale")
        return format_number(self.segments[self.segment_index - 1][0] - self.segments[0][0])

    def _preamble_text(self) -> str:
        points, x_inc, x_org, x_ref, y_inc, y_org, y_ref = self.preamble()
        count = self.average_count if self.acquire_type == "AVER" else 1
        fields = [str(FORMAT_CODE[self.wave_format]), str(TYPE_CODE[self.acquire_type]), str(points), str(count),
                  format_number(x_inc), format_number(x_org), str(x_ref),
                  format_number(y_inc), format_number(y_org), str(y_ref)]
        return ",".join(fields)

    # handler factories
    def _setting(self, attr, low, high, integer=False):
        def handler(args, query):
            if query:
                value = getattr(self, attr)
                return str(int(value)) if integer else format_number(value)
            value = parse_number(args, minimum=low, maximum=high)
            setattr(self, attr, int(value) if integer else value)
        return handler

    def _channel(self, attr, low, high):
        def handler(args, query, n=1):
            channel = self._channel_of(n)
            if query:
                return format_number(getattr(channel, attr))
            setattr(channel, attr, parse_number(args, minimum=low, maximum=high))
        return handler

    def _channel_of(self, n: int) -> Channel:
        if n not in self.channels:
            raise ScpiError(-114, "Header suffix out of range")
        return self.channels[n]

    def _channel_range(self, args, query, n=1):
        channel = self._channel_of(n)
        if query:
            return format_number(8 * channel.scale)
        channel.scale = parse_number(args, minimum=8e-3, maximum=40.0) / 8

    def _channel_coupling(self, args, query, n=1):
        channel = self._channel_of(n)
        if query:
            return channel.coupling
        channel.coupling = parse_choice(args, 0, ["AC", "DC"])

    def _channel_impedance(self, args, query, n=1):
        channel = self._channel_of(n)
        if query:
            return channel.impedance
        channel.impedance = parse_choice(args, 0, ["ONEMeg", "FIFTy"])

    def _channel_display(self, args, query, n=1):
        channel = self._channel_of(n)
        if query:
            return "1" if channel.display else "0"
        channel.display = parse_bool(args)

    def _channel_summary(self, args, query, n=1):
        c = self._channel_of(n)
        return (f":CHAN{n}:RANG {format_number(8 * c.scale)};OFFS {format_number(c.offset)};"
                f"COUP {c.coupling};DISP {int(c.display)};PROB {format_number(c.probe)}")

    def _timebase_scale(self, args, query):
        if query:
            return format_number(self.time_scale)
        self.time_scale = parse_number(args, minimum=500e-12, maximum=50.0)

    def _timebase_range(self, args, query):
        if query:
            return format_number(10 * self.time_scale)
        self.time_scale = parse_number(args, minimum=5e-9, maximum=500.0) / 10

    def _trigger_mode(self, args, query):
        if query:
            return "EDGE"
        parse_choice(args, 0, ["EDGE"])

    def _trigger_source(self, args, query):
        if query:
            return self.trigger_source
        choice = args[0].strip().upper() if args else ""
        if choice in ("EXT", "EXTERNAL"):
            self.trigger_source = "EXT"
            return
        for n in self.channels:
            if choice in (f"CHAN{n}", f"CHANNEL{n}"):
                self.trigger_source = f"CHAN{n}"
                return
        raise ScpiError(-224, "Illegal parameter value")

    def _wave_source(self, args, query):
        if query:
            return f"CHAN{self.wave_source}"
        choice = args[0].strip().upper() if args else ""
        for n in self.channels:
            if choice in (f"CHAN{n}", f"CHANNEL{n}"):
                self.wave_source = n
                return
        raise ScpiError(-224, "Illegal parameter value")

    def _byte_order(self, args, query):
        if query:
            return "MSBF" if self.msb_first else "LSBF"
        self.msb_first = parse_choice(args, 0, ["MSBFirst", "LSBFirst"]) == "MSBF"

    def _force(self) -> None:
        if self.state == "armed":
            self.state, self.trigger_time, self.trigger_event = "triggered", self.world.time, True

    def _stop(self) -> None:
        self.state, self.continuous = "stopped", False

    def _channel_limit(self, args, query, n=1):
        channel = self._channel_of(n)
        if query:
            return format_bool(channel.bandwidth_limit)
        channel.bandwidth_limit = parse_bool(args)

    def _digitize(self, sources=()) -> None:
        """:DIGitize [CHANnel<n>, ...] acquires one record of every channel and stops; here it waits
        (in reactor time) for it."""
        for source in sources:
            if source.strip().upper() not in ({f"CHAN{n}" for n in self.channels}
                                              | {f"CHANNEL{n}" for n in self.channels}):
                raise ScpiError(-224, "Illegal parameter value")
        self._arm()
        if self.sweep == "AUTO":
            self._force()
        start, length = self._span()
        give_up = self.world.time + 10 * length + 10.0
        while self.state != "stopped" and self.world.time < give_up:
            self.world.clock.sleep(max(length / 20, 1e-4))
            self._update()

    def _read_event(self, attr: str) -> str:
        """:TER? or :AER?: the event register, read and cleared."""
        event = getattr(self, attr)
        setattr(self, attr, False)
        return "+1" if event else "+0"
