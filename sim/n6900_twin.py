"""Twin of a Keysight N6900/N7900 Advanced Power System (one output), speaking SCPI on TCP.

Written from the "N6900/N7900 Series Operating and Service Guide" (ch. 6, SCPI Programming
Reference): output and protection (OUTPut, OUTPut:PROTection incl. the I/O watchdog, whose
trip latches the output off while OUTP? still reads 1), lists (LIST, TRIGger:TRANsient,
INITiate, ABORt), the built-in digitizer (SENSe:SWEep, TRIGger:ACQuire, FETCh:ARRay, as ASCII
or, with FORMat REAL, an IEEE 488.2 block of IEEE 754 singles in the FORMat:BORDer order) and the
status registers (Operation: CV 1, CC 2, OFF 4, WTG-meas 8, WTG-tran 16, MEAS-active 32,
TRAN-active 64, 9 bits defined; Questionable: OV 1, OC 2, OT 16, PROT/watchdog 2048, 14 bits
defined), with STATus:PRESet (ch. 6, STATus). Integers are answered signed ("+0", "+8192") and
reals with 7 significant digits ("+8.160000E+01"), SYSTem:VERSion? "1995.0", as a real unit
answers; settings counted in whole units are integers (OUTP:PROT:WDOG:DEL? "+60", SENS:SWE:POIN?).
Numbers take unit suffixes (VOLT 12.5 V, CURR 500 mA, ...:DEL 20 ms) and MIN, MAX, DEF (their
queries too: VOLT? MAX). MEASure/FETCh:POWer? give V x I.

Ranges and *RST values, as an N6974A answers them (a recorded session of one, fw B.02.03): levels
and limits reach 102 % of the rating, OVP 120 %; VOLTage and VOLTage:LIMit go down to 0.1 % of
the rated voltage, the positive current limit to 0.1 % of its range (the N6974A reads 0.026 A for
0.0255: its resolution, not modelled). *RST: VOLTage its MIN, CURRent 0, CURRent:LIMit 1 % of its MAX,
CURRent:LIMit:NEGative -10 % (its MIN without an N7909A dissipator, which the twin does not have),
VOLTage:LIMit its MAX (probable: read from a unit in its reset state), TRIGger:TRANsient:SOURce BUS,
OUTPut:PROTection:MODE LOWZ, OUTP:PROT:WDOG:DEL 60 s. CURRent takes down to -10 % (the output
sinks what a source outside drives into it; the sample is passive, so the twin delivers 0 A
there). *OPT? names the options the twin serves, "302,303" (the digitizer, SENSe:SWEep and
FETCh:ARRay; LIST), which a unit without them refuses with +302; a unit with none answers "0".
The form of the reply with options fitted is assumed (a comma list, as Keysight's *OPT? gives).
Default model N6973A: 60 V, 33.3 A, 2000 W (the family's 2 kW, 60 V unit).

Priority (ch. 6, [SOURce:]FUNCtion): in voltage priority (*RST) the output holds VOLTage (or
LIST:VOLTage) and CURRent:LIMit bounds its current; CURRent is kept but does nothing. In current
priority it holds CURRent (or LIST:CURRent) and VOLTage:LIMit bounds its voltage; VOLTage is kept
but does nothing. Setting the other mode's limit is +315 "Settings conflict error" (as a real unit
answers VOLT:LIM in voltage priority). Changing FUNCtion switches the output off and returns the
output settings (levels, limits, list modes) to their *RST values. The *RST limits are the twin's
above. OUTPut:PROTection:MODE HIGHZ|LOWZ is stored; its effect at turn-off (LOWZ sinks for about
2 ms) is not modelled.

LAN (ch. 4, "Using the Advanced Power System", LAN interface): up to six connections at once,
data and control together; each data connection has its own input buffer and its own error
queue, the instrument's settings and status registers are shared; the control socket's port is
SYSTem:COMMunicate:TCPip:CONTrol?, and "DCL" on it is a device clear, echoed. Telnet (5024) is
not served. A service request is not announced on the control socket ("SRQ +nn", as other
Keysight supplies send it): *STB? reports it.
"""
import math
from dataclasses import dataclass, field

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
    parse_list,
    parse_number,
    stored,
)

CONNECTIONS = 6  # data and control sockets and telnet sessions, together (ch. 4)

OV, OC, OT, WATCHDOG = 1, 2, 16, 2048
MAX_LIST_STEPS = 512
MAX_DWELL = 262.144  # s
MIN_SAMPLE_INTERVAL = 5.12e-6  # s
MAX_SWEEP_POINTS = 512 * 1024


@dataclass(frozen=True)
class Rating:
    model: str = "N6973A"
    volts: float = 60.0
    amps: float = 33.3
    watts: float = 2000.0

    @property
    def max_volts(self) -> float:
        return self.volts * 1.02

    @property
    def max_amps(self) -> float:
        return self.amps * 1.02


@dataclass
class ListProgram:
    """The LIST subsystem: per-step levels and dwells, repeated `count` times."""

    current: list[float] = field(default_factory=lambda: [0.0])
    voltage: list[float] = field(default_factory=lambda: [0.0])
    dwell: list[float] = field(default_factory=lambda: [1e-3])
    bost: list[float] = field(default_factory=lambda: [0.0])  # trigger out at the beginning of a step
    eost: list[float] = field(default_factory=lambda: [0.0])  # ... and at its end
    count: float = 1  # math.inf for INF
    terminate_last: bool = False

    def length(self) -> int:
        lengths = {len(self.current), len(self.voltage), len(self.dwell), len(self.bost), len(self.eost)} - {1}
        if len(lengths) > 1:
            raise ScpiError(-221, "Settings conflict;list lengths differ")
        return lengths.pop() if lengths else 1

    def step_at(self, elapsed: float) -> int | None:
        """Index of the step running `elapsed` s after the trigger, None once finished."""
        n = self.length()
        dwells = [self.dwell[i if len(self.dwell) > 1 else 0] for i in range(n)]
        period = sum(dwells)
        repetition, rest = divmod(elapsed, period) if period > 0 else (math.inf, 0.0)
        if repetition >= self.count:
            return None
        for i, d in enumerate(dwells):
            if rest < d:
                return i
            rest -= d
        return n - 1

    def level(self, values: list[float], step: int) -> float:
        return values[step if len(values) > 1 else 0]

    def duration(self) -> float:
        n = self.length()
        return sum(self.dwell[i if len(self.dwell) > 1 else 0] for i in range(n)) * self.count

    def boundaries(self, start: float) -> list[float]:
        """Reactor times at which the steps end."""
        return [end for _, end in self.steps(start)]

    def steps(self, start: float) -> list[tuple[int, float]]:
        """(step index, end time) of every step the list will run, from `start`."""
        n, out, t = self.length(), [], start
        for _ in range(int(min(self.count, 4096))):
            for i in range(n):
                t += self.level(self.dwell, i)
                out.append((i, t))
        return out

    def trigger_times(self, start: float) -> list[float]:
        """When the list sends a trigger out (LIST:TOUTput:BOSTep / EOSTep)."""
        times, begin = [], start
        for i, end in self.steps(start):
            if self.level(self.bost, i):
                times.append(begin)
            if self.level(self.eost, i):
                times.append(end)
            begin = end
        return times


class N6900Twin:
    """One output of an N6900 supply driving the world's sample."""

    terminator = b"\n"
    connections, sessions, control_port = CONNECTIONS, True, 5002  # the server sets the port it opened

    def __init__(self, world: FJHWorld, rating: Rating = Rating(), serial: str = "SIM0001"):
        self.world = world
        self.rating = rating
        self.engine = ScpiEngine(f"Keysight Technologies,{rating.model},{serial},D.03.01", signed=True,
                                 version="1995.0", options="302,303")
        self.engine.status(operation=self._operation, questionable=self._questionable, bits=(9, 14))
        self._register()
        self.reset()
        world.source = self

    # --- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        """*RST state (Operating and Service Guide, "*RST" and "Factory-reset state")."""
        self.output = False
        self.function = "VOLT"  # priority
        self._output_settings()
        self.ovp = self.rating.volts * 1.2
        self.ocp = False
        self.protection_delay = 0.02
        self.watchdog = False
        self.watchdog_delay = 60.0
        self.tripped = 0
        self.last_io = self.world.time
        self.list = ListProgram()
        self.transient_source = "BUS"
        self.transient = "idle"  # idle | waiting | running
        self.list_start = math.inf
        self.list_boundaries: list[float] = []
        self.cc_since: float | None = None
        self.constant_current = False
        self.acq_points, self.acq_interval, self.acq_offset = 3255, MIN_SAMPLE_INTERVAL, 0  # 1 PLC at 60 Hz
        self.acq_source = "BUS"
        self.acquisition = "idle"  # idle | waiting | triggered
        self.pin1_function = "DIO"
        self.acq_trigger_time = math.inf
        self.data_format, self.byte_order = "ASC", "NORM"

    def _output_settings(self) -> None:
        """The output settings a *RST or a change of priority returns to."""
        r = self.rating
        self.voltage, self.current = r.volts * 0.001, 0.0
        self.current_limit, self.negative_limit, self.voltage_limit = r.max_amps * 0.01, -r.max_amps * 0.1, r.max_volts
        self.current_mode = self.voltage_mode = "FIX"
        self.protection_mode = "LOWZ"

    def _priority(self, args, query):
        if query:
            return self.function
        function = parse_choice(args, 0, ["VOLTage", "CURRent"])
        if function != self.function:
            self.function, self.output = function, False
            self._output_settings()

    def _limit(self, attr, function, low, high, default, units):
        """CURR:LIM[:NEG] (voltage priority) or VOLT:LIM (current priority): +315 in the other mode."""
        number = self._number(attr, low, high, default=default, units=units)

        def handler(args, query):
            if not query and self.function != function:
                raise ScpiError(315, "Settings conflict error")
            return number(args, query)
        return handler

    FAULTS = ("trip_ov", "trip_oc", "trip_ot", "trip_watchdog")

    def inject(self, fault: str) -> None:
        """Fault injection: a protection trip that latches the output off, as the real one
        does: "trip_ov", "trip_oc", "trip_ot" or "trip_watchdog"."""
        bit = {"trip_ov": OV, "trip_oc": OC, "trip_ot": OT, "trip_watchdog": WATCHDOG}[fault]
        with self.world.lock:
            self.world.advance()
            self.tripped |= bit

    # --- the world's view (ElectricalSource) -----------------------------------------------
    def _settle(self, t: float) -> None:
        """Bring discrete state (watchdog, list completion) up to reactor time t."""
        if self.watchdog and not self.tripped & WATCHDOG and t >= self.last_io + self.watchdog_delay:
            self.tripped |= WATCHDOG
        if self.transient == "running" and self._list_step(t) is None:
            self.transient = "idle"
            if self.list.terminate_last:
                last = self.list.length() - 1
                if self.current_mode == "LIST":
                    self.current = self.list.level(self.list.current, last)
                if self.voltage_mode == "LIST":
                    self.voltage = self.list.level(self.list.voltage, last)

    def _list_step(self, t: float) -> int | None:
        return self.list.step_at(t - self.list_start) if t >= self.list_start else 0

    def drive(self, t: float) -> tuple[bool, float, float]:
        self._settle(t)
        current_priority = self.function == "CURR"
        volts, amps = (self.voltage_limit, self.current) if current_priority else (self.voltage, self.current_limit)
        if self.transient == "running":
            step = self._list_step(t)
            if self.current_mode == "LIST" and current_priority:
                amps = self.list.level(self.list.current, step)
            if self.voltage_mode == "LIST" and not current_priority:
                volts = self.list.level(self.list.voltage, step)
        amps = min(max(amps, 0.0), self.rating.watts / max(volts, 1e-9), self.rating.amps)  # a passive load
        return self.output and not self.tripped, volts, amps

    def next_change(self, t: float) -> float:
        times = [math.inf]
        if self.watchdog and not self.tripped & WATCHDOG:
            times.append(self.last_io + self.watchdog_delay)
        if self.transient == "running":
            times.extend(b for b in self.list_boundaries if b > t)
        if self.cc_since is not None and self.ocp:
            times.append(self.cc_since + self.protection_delay)
        return min(times)

    def observe(self, t: float, volts: float, amps: float, constant_current: bool) -> None:
        if volts > self.ovp:
            self.tripped |= OV
        self.cc_since = (self.cc_since if self.cc_since is not None else t) if constant_current else None
        if self.ocp and self.cc_since is not None and t - self.cc_since >= self.protection_delay:
            self.tripped |= OC
        self.constant_current = constant_current

    # --- protocol --------------------------------------------------------------------------
    def handle(self, message: bytes, session: object = None) -> bytes | None:
        with self.world.lock:
            self.world.advance()
            now = self.world.time
            self._settle(now)
            self.last_io = now
            reply = self.engine.handle(message.decode("ascii", errors="replace").strip(), session)
        return None if reply is None else reply.encode("latin-1") + b"\n"  # a REAL block's bytes, one per character

    def _register(self) -> None:
        e, r = self.engine.command, self.rating
        e("*RST", lambda a, q: self.reset(), query=False, max_args=0)
        e("*TRG", lambda a, q: self._bus_trigger(), query=False, max_args=0)
        e("[SOURce:]VOLTage[:LEVel][:IMMediate][:AMPLitude]",
          self._number("voltage", r.volts * 0.001, r.max_volts, units="V"), max_query_args=1)
        e("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]",
          self._number("current", -r.max_amps * 0.1, r.max_amps, default=0, units="A"), max_query_args=1)
        e("[SOURce:]FUNCtion", self._priority)
        e("[SOURce:]CURRent:LIMit[:POSitive][:IMMediate][:AMPLitude]",
          self._limit("current_limit", "VOLT", r.max_amps * 0.001, r.max_amps, r.max_amps * 0.01, "A"),
          max_query_args=1)
        e("[SOURce:]CURRent:LIMit:NEGative[:IMMediate][:AMPLitude]",
          self._limit("negative_limit", "VOLT", -r.max_amps * 0.1, -r.max_amps * 0.001, -r.max_amps * 0.1, "A"),
          max_query_args=1)
        e("[SOURce:]VOLTage:LIMit[:POSitive][:IMMediate][:AMPLitude]",
          self._limit("voltage_limit", "CURR", r.volts * 0.001, r.max_volts, r.max_volts, "V"), max_query_args=1)
        e("[SOURce:]VOLTage:PROTection[:LEVel]",
          self._number("ovp", 0, r.volts * 1.2, default=r.volts * 1.2, units="V"), max_query_args=1)
        e("[SOURce:]CURRent:PROTection:STATe", stored(self, "ocp", parse_bool, format_bool))
        e("[SOURce:]CURRent:MODE", self._mode("current_mode"))
        e("[SOURce:]VOLTage:MODE", self._mode("voltage_mode"))
        e("OUTPut[:STATe]", stored(self, "output", parse_bool, format_bool))
        e("OUTPut:PROTection:CLEar", lambda a, q: self._clear_protection(), query=False, max_args=0)
        for delay in ("[SOURce:]CURRent:PROTection:DELay[:TIME]", "OUTPut:PROTection:DELay"):  # the second: an alias
            e(delay, self._number("protection_delay", 0, 0.255, default=0.02, units="S"), max_query_args=1)
        e("OUTPut:PROTection:WDOG[:STATe]", stored(self, "watchdog", parse_bool, format_bool))
        e("OUTPut:PROTection:WDOG:DELay", self._number("watchdog_delay", 1, 3600, step=1, default=60, units="S"),
          max_query_args=1)
        e("OUTPut:PROTection:MODE", stored(self, "protection_mode", one_of(["HIGHZ", "LOWZ"])))
        e("[SOURce:]LIST:CURRent[:LEVel]", self._list("current", r.max_amps), max_args=None)
        e("[SOURce:]LIST:VOLTage[:LEVel]", self._list("voltage", r.max_volts), max_args=None)
        e("[SOURce:]LIST:DWELl", self._list("dwell", MAX_DWELL), max_args=None)
        e("[SOURce:]LIST:CURRent:POINts", lambda a, q: self.engine.integer(len(self.list.current)), set=False)
        e("[SOURce:]LIST:VOLTage:POINts", lambda a, q: self.engine.integer(len(self.list.voltage)), set=False)
        e("[SOURce:]LIST:DWELl:POINts", lambda a, q: self.engine.integer(len(self.list.dwell)), set=False)
        e("[SOURce:]LIST:TOUTput:BOSTep[:DATA]", self._list("bost", 1), max_args=None)
        e("[SOURce:]LIST:TOUTput:EOSTep[:DATA]", self._list("eost", 1), max_args=None)
        e("[SOURce:]LIST:TOUTput:BOSTep:POINts", lambda a, q: self.engine.integer(len(self.list.bost)), set=False)
        e("[SOURce:]LIST:TOUTput:EOSTep:POINts", lambda a, q: self.engine.integer(len(self.list.eost)), set=False)
        e("[SOURce:]LIST:COUNt", self._list_count)
        e("[SOURce:]LIST:TERMinate:LAST", self._list_flag)
        e("TRIGger:TRANsient:SOURce", stored(self, "transient_source", one_of(["BUS", "IMMediate", "EXTernal"])))
        e("TRIGger:TRANsient[:IMMediate]", lambda a, q: self._start_list(), query=False, max_args=0)
        e("INITiate[:IMMediate]:TRANsient", lambda a, q: self._initiate(), query=False, max_args=0)
        e("ABORt:TRANsient", lambda a, q: self._abort(), query=False, max_args=0)
        e("[SOURce:]DIGital:PIN1:FUNCtion", stored(self, "pin1_function", one_of(["DIO", "DINPut", "TOUTput", "TINPut",
                                                                                  "FAULt", "INHibit", "ONCouple",
                                                                                  "OFFCouple"])))
        e("SENSe:SWEep:POINts", self._number("acq_points", 1, MAX_SWEEP_POINTS, step=1, default=3255), max_query_args=1)
        e("SENSe:SWEep:TINTerval", self._number("acq_interval", MIN_SAMPLE_INTERVAL, 40000.0, units="S"),
          max_query_args=1)
        e("SENSe:SWEep:OFFSet:POINts", self._number("acq_offset", -(MAX_SWEEP_POINTS - 1), 2e9, step=1),
          max_query_args=1)
        e("TRIGger:ACQuire:SOURce", stored(self, "acq_source", one_of(["BUS", "TRANsient1", "EXTernal"])))
        e("TRIGger:ACQuire[:IMMediate]", lambda a, q: self._trigger_acquisition(self.world.time), query=False,
          max_args=0)
        e("INITiate[:IMMediate]:ACQuire", lambda a, q: self._initiate_acquisition(), query=False, max_args=0)
        e("ABORt:ACQuire", lambda a, q: setattr(self, "acquisition", "idle"), query=False, max_args=0)
        e("FORMat[:DATA]", stored(self, "data_format", one_of(["ASCii", "REAL"])))
        e("FORMat:BORDer", stored(self, "byte_order", one_of(["NORMal", "SWAPped"])))
        e("FETCh:ARRay:CURRent[:DC]", lambda a, q: self._fetch("amps"), set=False)
        e("FETCh:ARRay:VOLTage[:DC]", lambda a, q: self._fetch("volts"), set=False)
        for reading, value in (("VOLTage", lambda: self.world.volts), ("CURRent", lambda: self.world.amps),
                               ("POWer", lambda: self.world.volts * self.world.amps)):
            for kind in ("MEASure", "FETCh"):
                e(f"{kind}[:SCALar]:{reading}[:DC]", lambda a, q, value=value: real(value()), set=False)
        e("SYSTem:COMMunicate:TCPip:CONTrol", lambda a, q: self.engine.integer(self.control_port), set=False)

    # handler factories
    def _number(self, attr, low, high, step=None, default=None, units=None):
        """A number setting, with its unit suffix, MIN, MAX and DEF (the *RST value, `low` unless
        given); its query answers the setting, or MIN, MAX or DEF. With an integer `step` it is
        kept, and answered, as an integer."""
        form = (lambda value: self.engine.integer(round(value))) if isinstance(step, int) else real

        def handler(args, query):
            if query and not args:
                return form(getattr(self, attr))
            value = parse_number(args, minimum=low, maximum=high, default=low if default is None else default,
                                 units=units)
            value = round(value / step) * step if step else value
            if query:  # VOLT? MAX
                return form(value)
            setattr(self, attr, value)
        return handler

    def _mode(self, attr):
        def handler(args, query):
            if query:
                return getattr(self, attr)
            if self.transient != "idle":
                raise ScpiError(-221, "Settings conflict")
            setattr(self, attr, parse_choice(args, 0, ["FIXed", "STEP", "LIST"]))
        return handler

    def _list(self, attr, high):
        def handler(args, query):
            if query:
                return ",".join(real(v) for v in getattr(self.list, attr))
            values = parse_list(args, minimum=0, maximum=high, max_length=MAX_LIST_STEPS)
            if attr in ("bost", "eost"):  # booleans: 0 or 1 per step
                values = [float(round(v)) for v in values]
            if attr == "dwell":  # 1 us resolution up to 0.262144 s, coarser above (ch. 6, LIST:DWELl)
                values = [_round_dwell(v) for v in values]
            setattr(self.list, attr, values)
        return handler

    def _list_count(self, args, query):
        if query:
            return "9.9E37" if math.isinf(self.list.count) else self.engine.integer(int(self.list.count))
        if args and args[0].strip().upper() in ("INF", "INFINITY"):
            self.list.count = math.inf
        else:
            self.list.count = int(parse_number(args, minimum=1, maximum=4096))

    def _list_flag(self, args, query):
        if query:
            return "1" if self.list.terminate_last else "0"
        self.list.terminate_last = parse_bool(args)

    # actions
    def _clear_protection(self) -> None:
        self.tripped = 0
        self.cc_since = None

    def _initiate(self) -> None:
        if self.transient != "idle":
            raise ScpiError(-213, "Init ignored")
        self.list.length()  # raises on mismatched lists
        self.transient = "waiting"
        if self.transient_source == "IMM":
            self._start_list()

    def _bus_trigger(self) -> None:
        if self.transient == "waiting" and self.transient_source == "BUS":
            self._start_list()
        if self.acquisition == "waiting" and self.acq_source == "BUS":
            self._trigger_acquisition(self.world.time)

    def _start_list(self) -> None:
        if self.transient != "waiting":
            raise ScpiError(-211, "Trigger ignored")
        now = self.world.time
        self.transient, self.list_start = "running", now
        self.list_boundaries = self.list.boundaries(now)
        if self.pin1_function == "TOUT":  # pin 1 carries the list's trigger-out pulses
            self.world.trigger_line.extend(self.list.trigger_times(now))
        if self.acquisition == "waiting" and self.acq_source == "TRAN1":
            self._trigger_acquisition(now)

    def _abort(self) -> None:
        """ABORt:TRANsient: the output returns to the settings in force before the list."""
        self.transient, self.list_start, self.list_boundaries = "idle", math.inf, []

    def _initiate_acquisition(self) -> None:
        self.acquisition, self.acq_trigger_time = "waiting", math.inf

    def _trigger_acquisition(self, t: float) -> None:
        if self.acquisition == "waiting":
            self.acquisition, self.acq_trigger_time = "triggered", t

    def _acquisition_end(self) -> float:
        return self.acq_trigger_time + (self.acq_offset + self.acq_points) * self.acq_interval

    def _fetch(self, key: str) -> str:
        """FETCh:ARRay waits until the acquisition is complete, then returns it (FORMat[:DATA])."""
        if self.acquisition != "triggered":
            raise ScpiError(-230, "Data corrupt or stale;no acquisition triggered")
        wait = self._acquisition_end() - self.world.time
        if wait > 0:
            self.world.lock.release()
            try:
                self.world.clock.sleep(wait)
            finally:
                self.world.lock.acquire()
        times = self.acq_trigger_time + (self.acq_offset + np.arange(self.acq_points)) * self.acq_interval
        values = self.world.sample_at(times, key)
        if self.data_format == "ASC":
            return ",".join(real(v) for v in values)
        body = np.asarray(values, dtype=">f4" if self.byte_order == "NORM" else "<f4").tobytes()
        return f"#{len(str(len(body)))}{len(body)}" + body.decode("latin-1")  # FORMat REAL: IEEE 754 single

    def _questionable(self) -> int:
        return self.tripped

    def _operation(self) -> int:
        bits = 0 if self.output else 4
        if self.output and not self.tripped:
            bits |= 2 if self.constant_current else 1
        bits |= {"waiting": 16 | 64, "running": 64}.get(self.transient, 0)
        bits |= {"waiting": 8 | 32,
                 "triggered": 32 if self.world.time < self._acquisition_end() else 0}.get(self.acquisition, 0)
        return bits


def real(value: float) -> str:
    """A real as the N6900 answers it: 7 significant digits, "+8.160000E+01"."""
    return format_number(value, digits=6)


def _round_dwell(seconds: float) -> float:
    """Dwell resolution: 1 us up to 0.262144 s, doubling with each doubling of range."""
    resolution = 1e-6
    while seconds > resolution * 262144 and resolution < 1.024e-3:
        resolution *= 2
    return round(seconds / resolution) * resolution
