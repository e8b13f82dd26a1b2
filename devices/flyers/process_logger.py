"""Process data at a fixed period of reactor time, delivered in blocks of rows, not one event per row.

The logger reads every source once per period on the reactor clock (a dry run at 1000x logs
1000 rows per wall second), from `start()` until `halt()`: it runs across samples, so the
instruments hear from the host without a gap (the pump's safe mode stops it otherwise).
kickoff makes sure it runs; collect returns the rows gathered since the last collect as one
event of the "process" stream holding a block of rows, each row stamped with its reactor time. A source that raises
stops the logger; complete() and collect then fail with that error, and `failure` holds it.
A `watcher` (the interlock) is told each row as it is read, and the error that stopped it.

A source may read several lines at the same time (devices.transport.run_together): a row then
takes as long as its busiest line, not the sum of all of them.
"""
import itertools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from ophyd import Device
from ophyd.status import Status

from quenchlab.clock import ReactorClock
from quenchlab.errors import QuenchlabError

Source = Callable[[], dict[str, float | str]]


class Watcher(Protocol):
    def observe(self, row: dict[str, float | str]) -> None: ...

    def fail(self, error: BaseException) -> None: ...


class ProcessLogger(Device):
    """Reads `sources` every `period` s of reactor time, one after another."""

    def __init__(self, sources: list[Source], units: dict[str, str], clock: ReactorClock,
                 period: float = 1.0, name: str = "process", hinted: tuple[str, ...] = ()):
        super().__init__(name=name)
        self.sources, self.units, self.clock, self.period = sources, units, clock, period
        self._hinted = list(hinted)  # the fields a plot of the record shows first
        self._reading = threading.Lock()  # one row at a time: describe_collect may read one too
        self.latest: dict[str, float | str] = {}
        self.watcher: Watcher | None = None
        self._rows: list[tuple[float, dict]] = []
        self._recent: deque[dict] = deque(maxlen=3600)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._started = clock.now()

    def read_once(self) -> dict[str, float | str]:
        """One row, stamped with the reactor time its reading starts at."""
        return self._read(self.clock.now())

    def _read(self, stamp: float) -> dict[str, float | str]:
        with self._reading:
            row = {"reactor_time": stamp}
            for source in self.sources:
                row.update(source())
            return row

    @property
    def failure(self) -> BaseException | None:
        """What a source raised, which stopped the logger; None while it reads (or was halted)."""
        return self._error

    def age(self) -> float:
        """Reactor seconds since the last row was read, or since the start if none was yet."""
        last = self.latest.get("reactor_time", self._started)
        return self.clock.now() - last

    def start(self) -> None:
        """Start reading, unless it is reading already; refused while a halted logger is still
        stuck in a read (a second reader would share its lines)."""
        if self._thread and self._thread.is_alive():
            if self._stop.is_set():
                raise QuenchlabError("the process logger is still stuck in a read begun before it was halted: "
                                     "check the instruments' lines")
            return
        self._stop.clear()
        self._error, self.latest = None, {}  # the age of its data counts from this start
        self._started = self.clock.now()
        self.clock.run_fast_until(self._started)  # paced from now: the first row is on time
        self._thread = threading.Thread(target=self._run, args=(self._started,), daemon=True, name="process-logger")
        self._thread.start()

    def halt(self, timeout: float = 2.0) -> None:
        """Stop reading; a logger stuck in a read for more than `timeout` wall seconds is left
        to end by itself, so that whoever halts it (the safe state) goes on."""
        self._stop.set()
        self.clock.wake()  # out of its reactor sleep
        if self._thread:
            self._thread.join(timeout)
            if not self._thread.is_alive():
                self._thread = None

    def kickoff(self) -> Status:
        """Fails if the logger died (a source raised); starts it if it is not running."""
        if not self._error:
            self.start()
        return self.complete()

    def complete(self) -> Status:
        """Done at once while the logger runs (it keeps running); failed if it died."""
        status = Status(self)
        if self._error:
            status.set_exception(self._error)
        else:
            status.set_finished()
        return status

    def _run(self, due: float) -> None:
        """Reads on a fixed schedule from reactor time `due`. The clock waits at a row's time
        until the row is stamped, then runs at full speed up to the next row's time while the
        row is read, no further (ReactorClock.run_fast_until): a busy host leaves no gap in the
        data, and a quick one does not wait for the clock. (So in a dry run a row's readings
        spread over up to a period after its stamp.) A row late by more than a period (a slow
        reply) drops the rows missed and reads at once."""
        try:
            while not self._stop.is_set():
                stamp = self.clock.now()
                self.clock.run_fast_until(due + self.period)
                row = self._read(stamp)
                with self._lock:
                    self._rows.append((time.time(), row))
                    self._recent.append(row)
                    self.latest = row
                if self.watcher:
                    self.watcher.observe(row)
                due += self.period
                if due < self.clock.now() - self.period:
                    due = self.clock.now()
                self.clock.sleep_until(due, self._stop)  # the stretch's end: woken as the clock is released
        except Exception as error:  # reported by complete(), and to the watcher at once
            self._error = error
            if self.watcher:
                self.watcher.fail(error)
        finally:  # unpaced, a dry run's clock would shrink every timeout after this (the pump's safe
            # mode: 10 s at 5000x is 2 ms of wall) to nothing: it runs at real time until the next start
            self.clock.run_fast_until(self.clock.now())

    def since(self, start: float) -> list[dict]:
        """The recent rows read at or after reactor time `start` (the last hour at most)."""
        with self._lock:
            newest_first = itertools.takewhile(lambda row: row["reactor_time"] >= start, reversed(self._recent))
            return list(newest_first)[::-1]

    def uncollected_age(self) -> float:
        """Wall seconds the oldest row not yet collected has waited (0 if there is none)."""
        with self._lock:
            return time.time() - self._rows[0][0] if self._rows else 0.0

    @property
    def hints(self):
        return {"fields": self._hinted}

    def describe_collect(self):
        """Each field is a 1-D array along "row": an event of this stream is a block of rows
        (what HDF5Writer appends to one table), so a document carries up to a minute of wall
        time's data, not one row."""
        sample = self.read_once() if not self.latest else self.latest
        keys = {}
        for key, value in sample.items():
            kind = "<U0" if isinstance(value, str) else "<f8"
            keys[key] = {"source": f"quenchlab:{self.name}", "dtype": "array", "dtype_numpy": kind,
                         "shape": [None], "dims": ["row"],
                         "units": "s" if key == "reactor_time" else self.units.get(key, "")}
        return {self.name: keys}

    def collect_pages(self):
        """The rows read since the last collect, as one event (a block of rows)."""
        if self._error:
            raise self._error
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        wall = rows[-1][0]
        keys = rows[0][1].keys()
        yield {"time": [wall], "data": {k: [[row.get(k, math.nan) for _, row in rows]] for k in keys},
               "timestamps": {k: [wall] for k in keys}}
