"""The heat/quench pulse on a Keysight N6900: the supply's list, the digitizer and the pyrometer together.

A train of pulses is one list, the pulse's steps and an off step at 0 run `pulses` times
(LIST:COUNt), the trigger out marking each pulse: the cadence is the supply's, not the host's.
kickoff uploads the list, arms both digitizers and fires; complete waits for the list to end
(its queries keep the supply's watchdog fed while the output stays on through the off
steps), switches the output off and fetches the traces: the pyrometer's one segment per pulse
from a scope with segmented memory (what re-arming between pulses allows without it), V/I of
the whole train from one acquisition of the supply's own digitizer, at the coarsest interval
its 512 K points need. Each pulse's start is where the supply's digitizer saw it begin; collect
returns one page per pulse taken (devices/flyers/pulse_capture.py), also after a stop. Staging,
unstaging and stop always leave the output off; the supply's watchdog is the last line of
defence if this process dies.
"""
import math
import threading
import time as wallclock

import numpy as np
from bluesky.utils import NoReplayAllowed
from ophyd import Component as Cpt
from ophyd import Kind, Signal
from ophyd.status import Status

from quenchlab.devices.flyers.pulse_capture import ProgrammedPulse
from quenchlab.devices.impac_driver import Impac
from quenchlab.devices.infiniivision_driver import InfiniiVision, Trace
from quenchlab.devices.n6900_driver import MAX_LIST_COUNT, N6900
from quenchlab.devices.soft.phase_marker import SoftRecord
from quenchlab.errors import InstrumentError

MAX_SUPPLY_POINTS = 512 * 1024
WATCHDOG_ONLY = 2048
OFF_TIME_TOLERANCE = 0.01  # an off time further than this from the recipe's is noted in the record
TRAIN_FIELDS = {"pulse_index": ("integer", ""), "pulse_start": ("number", "s"), "trace_time_tag": ("number", "s"),
                "has_trace": ("boolean", "")}


class PulseFlyer(ProgrammedPulse):
    """A train of the loaded program (`train(pulses, off_time)`; one pulse by default): fire,
    wait, collect. The loaded list is its configuration."""

    def __init__(self, supply: N6900, pyrometer: Impac, digitizer: InfiniiVision, *, supply_interval: float,
                 segments: int = 0, **capture):
        """`segments`: the most the scope's segmented memory takes (0: it has none)."""
        super().__init__(supply, pyrometer, digitizer, **capture)
        self.supply_interval, self.segments = supply_interval, segments
        self.pulses, self.off_time = 1, 0.0
        self._live = threading.Event()  # a train fired and not yet finished
        self._taken = threading.Event()  # no complete() is making pages
        self._taken.set()
        self._fired_at = self._stopped_at = math.nan  # wall times of the train's trigger and of a stop
        self.last_train: dict = {}  # the run's train as timed so far (see _timing)
        self._origin, self._starts = math.nan, []  # the run's first trigger (wall), its pulses' starts from it

    # --- the train -------------------------------------------------------------------------
    def load(self, program, target=None) -> None:
        """As ProgrammedPulse.load; the next kickoff fires one pulse unless `train` says more."""
        super().load(program, target)
        self.pulses, self.off_time = 1, 0.0

    def train(self, pulses: int, off_time: float, continued: bool = False) -> None:
        """The next kickoff fires `pulses` pulses of the loaded program, `off_time` s apart;
        `continued`: as the next part of the run's train (one too long for one list), its
        pulses numbered and timed on from the part before (the gap between the parts shows in
        their start times)."""
        if not 1 <= pulses <= self.max_train:
            raise ValueError(f"one list holds 1-{self.max_train} pulses (LIST:COUNt"
                             f"{', :ACQuire:SEGMented:COUNt' if self.segmented else ''})")
        if pulses > 1 and off_time + self.program.duration < self.record + self.pre_trigger:
            raise ValueError(f"pulses {off_time + self.program.duration:g} s apart overlap the digitizer's "
                             f"{self.record:g} s record: lengthen off_time or shorten digitizer.record")
        self.pulses, self.off_time = pulses, off_time if pulses > 1 else 0.0
        if not continued:
            self._origin, self._starts = math.nan, []

    def fired_so_far(self) -> int:
        """Pulses of the run's train begun by now: those recorded, and those the live list has
        begun by its programmed timing (its pages come after it)."""
        live = (min(self.pulses, int((wallclock.time() - self._fired_at) / self.period) + 1)
                if self._live.is_set() else 0)
        return len(self._starts) + live

    @property
    def max_train(self) -> int:
        return min(MAX_LIST_COUNT, self.segments) if self.segmented else MAX_LIST_COUNT

    @property
    def segmented(self) -> bool:
        return self.segments > 0

    @property
    def period(self) -> float:
        return self.program.duration + self.off_time

    @property
    def train_interval(self) -> float:
        """The supply digitizer's interval for the whole train: the configured one, or a multiple
        of it once the train needs more than its points."""
        duration = self.pulses * self.period + self.record
        return self.supply_interval * max(1, math.ceil(duration / self.supply_interval / MAX_SUPPLY_POINTS))

    @property
    def supply_points(self) -> int:
        return math.ceil(self.record / self.train_interval)

    # --- fire and finish ---------------------------------------------------------------------
    def _fire(self) -> None:
        """Under the firing lock: a stop() waits for it and cancels the shot before output on."""
        with self._firing:
            self._stopped_at = math.nan
            self._prepare_shot()
            self._wait_to_fire("OUTP ON")
            self.check_protection()  # a wait past the watchdog's delay trips it, harmlessly, with the output off
            self.supply.output_on()
            self.supply.trigger()
            self._fired_at = wallclock.time()
            self._live.set()
            if math.isnan(self._origin):
                self._origin = self._fired_at

    def complete(self):
        self._taken.clear()
        return super().complete()

    def stop(self, *, success: bool = False) -> None:
        """The output off, cancelling a shot being armed; a live train's digitizer is stopped
        with it: its V/I are not fetched (the acquisition would run on to the train's end), the
        pulses it completed are timed by the scope's time tags (or, without segments, by the list)."""
        self._cancel.set()
        with self._firing:
            live = self._live.is_set()
            if live:
                self._stopped_at = wallclock.time()
            self.make_safe()
            if live:
                self.supply.abort_acquisition()
                if self._taken.is_set():  # no complete() to finish it: the train is over
                    self._live.clear()

    def pause(self) -> None:
        """A pause stops a train being fired (the output off) and cannot resume it: the sample
        has had part of it. The run is to be aborted; the pulses it completed are recorded."""
        if self._live.is_set():
            self.stop()
            raise NoReplayAllowed()

    def check_protection(self) -> None:
        """No protection holding the output off (STAT:QUES:COND?); a watchdog trip while the
        output was off is harmless and cleared."""
        supply = self.supply
        trips = supply.questionable()
        if trips == WATCHDOG_ONLY:
            supply.clear_protection()
        elif trips:
            raise InstrumentError(supply.name, supply.address, "STAT:QUES:COND?",
                                  f"protection holds the output off: {', '.join(supply.trips())}; "
                                  "find the cause, then clear it (OUTP:PROT:CLE)")

    def _prepare_shot(self) -> None:
        supply, interval = self.supply, self.train_interval
        supply.output_off()
        self.check_protection()
        self._read_range()
        supply.upload_list(self.program, self.pulses, self.off_time)
        points = math.ceil(((self.pulses - 1) * self.period + self.record) / interval) + 1  # to the last record's end
        supply.configure_digitizer(min(points, MAX_SUPPLY_POINTS), interval, round(self.pre_trigger / interval))
        self.digitizer.segmented(self.pulses if self.segmented and self.pulses > 1 else None)
        self.digitizer.configure_capture(self.record, self.pre_trigger, self.points)
        self.digitizer.arm()
        supply.arm_digitizer()
        supply.arm_list()

    def _finish(self) -> None:
        try:
            traces = self._run_train()
            self._record_train(traces, *(self.supply.fetch() if math.isnan(self._stopped_at) else (None, None)))
        finally:
            self._live.clear()
            self._taken.set()

    def _run_train(self) -> list[tuple[float, Trace]]:
        """Wait until the supply's digitizer has the last pulse's record (the list's last off
        step is cut short there) or the list ends, re-arming the scope after each record
        without segmented memory; the output off whatever happens. The pyrometer's records,
        each with its segment's time tag, or without segments the time it was armed at (s
        from the trigger)."""
        deadline = wallclock.monotonic() + 2 * self.pulses * self.period + 10 * self.record + 5
        traces, armed = [], -math.inf  # the first record was armed before the train
        segmented = self.segmented and self.pulses > 1
        try:
            while all(self.supply.list_and_digitizer()):
                if wallclock.monotonic() > deadline:
                    raise InstrumentError(self.supply.name, self.supply.address, "STAT:OPER:COND?",
                                          "the pulse list did not finish in time")
                if not segmented and len(traces) < self.pulses and not self.digitizer.acquiring():
                    traces.append((armed, self.digitizer.fetch(self.channel)))
                    self.digitizer.arm()
                    armed = wallclock.time() - self._fired_at  # it takes a trigger from now
                wallclock.sleep(0.005)
        finally:
            self.supply.output_off()
        if segmented:
            if math.isnan(self._stopped_at):  # the last segment is on its way
                self._await_capture(deadline)
            elif self.digitizer.acquiring():  # a train stopped early leaves segments untaken
                self.digitizer.stop()
            return [self.digitizer.fetch_segment(self.channel, index)[::-1]
                    for index in range(1, self.digitizer.segments_taken() + 1)]
        if len(traces) < self.pulses:
            if not self.digitizer.acquiring():  # a record taken since the last look
                traces.append((armed, self.digitizer.fetch(self.channel)))
            elif self.digitizer.triggered() and math.isnan(self._stopped_at):  # the last record is on its way
                self._await_capture(deadline)
                traces.append((armed, self.digitizer.fetch(self.channel)))
            else:  # armed for a pulse that never came (re-armed too late), or a train stopped
                self.digitizer.stop()
        return traces

    def _record_train(self, traces: list[tuple[float, Trace]], volts: np.ndarray | None,
                      amps: np.ndarray | None) -> None:
        """One page per pulse the train completed, with its trace if one was taken (and without
        V/I after a stop)."""
        interval, before = self.train_interval, round(self.pre_trigger / self.train_interval)
        if volts is None:  # stopped: the pulses that ended before, as the scope (or the list) timed them
            starts = [tag for tag, _ in traces] if self.segmented and self.pulses > 1 else \
                [k * self.period for k in range(self.pulses)]
            starts = [s for s in starts if self._fired_at + s + self.program.duration <= self._stopped_at]
            volts = amps = np.full(round(starts[-1] / interval) + self.supply_points if starts else 0, math.nan)
        else:
            stepped = amps if self.program.control == "current" else volts
            starts = pulse_starts(stepped, interval, before, self.period, self.pulses, max(self.program.levels))
        owners = self._owners(traces, starts)
        supply_time = (np.arange(volts.size) - before) * interval
        offset, done = self._fired_at - self._origin, len(self._starts)  # a continued train's place in the run
        for index, start in enumerate(starts):
            first = int(round(start / interval))  # the sample pre_trigger before the pulse's start
            window = slice(first, first + self.supply_points)
            tag, trace = owners.get(index, (math.nan, None))
            previous = starts[index - 1] if index else (self._starts[-1] - offset if self._starts else None)
            before = self._off_time() if previous is None else start - previous - self.program.duration
            extra = {"pulse_index": done + index + 1, "pulse_start": offset + start, "off_time": before,
                     "trace_time_tag": tag, "has_trace": trace is not None}
            trace = trace or Trace(time=np.full(self.points, math.nan), volts=np.full(self.points, math.nan))
            self._record(trace, *(_fit(a[window], self.supply_points) for a in (supply_time - start, amps, volts)),
                         **extra)
        self._starts += [offset + start for start in starts]
        if starts:
            self.ended_at = self._fired_at + starts[-1] + self.program.duration
        self.last_train = train_timing(self._starts, self.program.duration, self.off_time)

    def _owners(self, traces: list[tuple[float, Trace]], starts: list[float]) -> dict[int, tuple[float, Trace]]:
        """Pulse index -> (time tag, record): segment by segment, or without segments each record
        to the first pulse that began after it was armed (no time tag)."""
        if self.segmented and self.pulses > 1:
            return dict(enumerate(traces))
        owners = {}
        for armed, trace in traces:
            index = next((k for k, start in enumerate(starts) if start >= armed), None)
            if index is not None:
                owners.setdefault(index, (math.nan, trace))
        return owners

    def extra_keys(self) -> dict[str, dict]:
        keys = {field: {"dtype": dtype, "shape": [], **({"units": units} if units else {})}
                for field, (dtype, units) in TRAIN_FIELDS.items()}
        return {**super().extra_keys(), **keys}

    def collect_pages(self):
        """The pages of the pulses taken; while a complete() runs (after a stop), once it ends."""
        self._taken.wait(timeout=60)
        yield from super().collect_pages()


def train_timing(starts: list[float], duration: float, off_time: float) -> dict:
    """A train's timing from its pulses' starts (s): programmed and achieved period (mean from
    start to start), pulses taken, and how far the off time that strayed most from the recipe's
    was from it (a fraction of it)."""
    offs = [b - a - duration for a, b in zip(starts, starts[1:])]
    worst = max(offs, key=lambda off: abs(off - off_time), default=off_time)
    return {"programmed_period": duration + off_time, "pulses_taken": len(starts),
            "achieved_period": (starts[-1] - starts[0]) / (len(starts) - 1) if len(starts) > 1 else math.nan,
            "off_time_deviation": (worst - off_time) / off_time if off_time else 0.0}


def pulse_starts(stepped: np.ndarray, interval: float, before: int, period: float, pulses: int,
                 level: float) -> list[float]:
    """Where each pulse began (s from the first), as the supply's digitizer saw it: the first
    sample above 2 % of the pulse's highest level in each period's window."""
    above = np.abs(stepped) > 0.02 * abs(level)
    starts = []
    for k in range(pulses):
        lo = before + int((k * period - period / 2) / interval)
        hi = before + int((k * period + period / 2) / interval)
        hits = np.flatnonzero(above[max(lo, 0):max(hi, 0)])
        if hits.size:
            starts.append((max(lo, 0) + hits[0] - before) * interval)
    return starts


def _fit(values: np.ndarray, size: int) -> np.ndarray:
    """`values` cut or padded with NaN to `size` samples (the last pulse of an acquisition)."""
    out = np.full(size, math.nan)
    out[:min(size, values.size)] = values[:size]
    return out


class TrainRecord(SoftRecord):
    """What a train achieved (train_timing), read into the record's "train" stream; `note`
    says so when an off time strayed more than OFF_TIME_TOLERANCE from the recipe's."""

    programmed_period = Cpt(Signal, value=math.nan, kind=Kind.hinted)
    achieved_period = Cpt(Signal, value=math.nan, kind=Kind.hinted)
    pulses_taken = Cpt(Signal, value=0, kind=Kind.normal)
    off_time_deviation = Cpt(Signal, value=0.0, kind=Kind.normal)
    note = Cpt(Signal, value="", kind=Kind.normal)
    units = {"programmed_period": "s", "achieved_period": "s"}

    def set(self, timing: dict) -> Status:
        deviation = timing["off_time_deviation"]
        note = f"an off time {deviation:+.1%} from the recipe's" if abs(deviation) > OFF_TIME_TOLERANCE else ""
        return self._put(**timing, note=note)
