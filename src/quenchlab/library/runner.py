"""Running a sample library unattended: one run and one HDF5 file per attempt at a sample, journalled.

The reactor behind it is either an FJH rig (one row = one sample + one recipe) or an aerosol
line (one row = one valve slot). Both offer `prepare()`, `plan(sample, md)`, `safe()`,
`safe_readback()` and `close()`; this module owns the order, the journal, the records and what
happens when a sample fails or a signal comes (quenchlab.run.outcome, quenchlab.run.interrupts):
- a failure of the sample: recorded `failed`; the line is made safe and prepared again (a
  failure there is the line's) and the library goes on, unless `library.stop_after_failures`
  samples have failed in a row (a clogged nozzle must not burn the night's precursor);
- a failure of the line, or a signal: the library stops;
- whenever it stops or ends, the line is brought to its safe state, which is read back from
  the instruments into the journal (the entry of the last attempt run), before the
  instruments (or their twins) are let go.
"""
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from quenchlab import __version__
from quenchlab.errors import ConfigError, QuenchlabError
from quenchlab.files import writable_directory
from quenchlab.library.journal import DONE, FAILED, INTERRUPTED, PENDING, RUNNING, Journal
from quenchlab.library.rows import safe_name
from quenchlab.record.writer import HDF5Writer, file_stem
from quenchlab.run.engine import run_engine
from quenchlab.run.interrupts import Interrupts
from quenchlab.run.outcome import Outcome, run_once

RETRY_STATES = (FAILED, INTERRUPTED)


@dataclass(frozen=True)
class Progress:
    """What the runner reports as it goes (all optional)."""

    sample: Callable[[str, int, int], None] = lambda sample_id, index, total: None
    phase: Callable[[str], None] = lambda phase: None
    done: Callable[[str, str], None] = lambda sample_id, state: None


@dataclass
class LibraryResult:
    directory: Path
    states: dict[str, str] = field(default_factory=dict)  # every sample's latest state
    completed: int = 0  # samples done by this run
    safe_state: dict = field(default_factory=dict)  # read back from the instruments at the end


class LibraryStopped(QuenchlabError):
    """The library stopped before its end (a signal, a failure of the line, failures in a row);
    the line was brought to its safe state (or the message says what failed)."""

    def __init__(self, message: str, result: LibraryResult):
        super().__init__(message)
        self.result = result


def library_directory(data_dir: Path, library: Path) -> Path:
    return data_dir / safe_name(library.stem)


def open_journal(samples: list, *, library: Path, data_dir: Path, resume: bool) -> Journal:
    """The library's journal (refused, before any instrument is touched, if it cannot be run)."""
    directory = writable_directory(library_directory(data_dir, library))
    return Journal(directory, [s.sample_id for s in samples], resume=resume, library=library)


def select(samples: list, journal: Journal, *, resume: bool, retry: Iterable[str] = (),
           retry_states: Iterable[str] = ()) -> list:
    """The samples to run, in library order: every pending one on a first run or with `resume`,
    and those named in `retry` or whose state is in `retry_states` (a new attempt each).
    Refused, naming what to change, for an unknown sample, a state that cannot be retried, or
    a pending sample named in `retry`."""
    journal.recover()
    retry, retry_states = list(retry), list(retry_states)
    known = {s.sample_id for s in samples}
    where = f"--retry ({journal.library})"
    if unknown := [sid for sid in retry if sid not in known]:
        raise ConfigError(f"{where}: {', '.join(unknown)}: not a sample of this library")
    if wrong := [state for state in retry_states if state not in RETRY_STATES]:
        raise ConfigError(f"--retry-state: {', '.join(wrong)}: allowed: {', '.join(RETRY_STATES)}")
    if pending := [sid for sid in retry if journal.state(sid) == PENDING]:
        raise ConfigError(f"{where}: {', '.join(pending)} has not run yet: pending samples are run by --resume, "
                          "not --retry")
    first_run = not any(journal.state(s.sample_id) != PENDING for s in samples)
    return [s for s in samples
            if (journal.state(s.sample_id) == PENDING and (resume or first_run)) or s.sample_id in retry
            or journal.state(s.sample_id) in retry_states]


def run_library(reactor, samples: list, *, library: Path, data_dir: Path, resume: bool, md: dict,
                progress: Progress = Progress(), journal: Journal | None = None, retry: Iterable[str] = (),
                retry_states: Iterable[str] = (), interrupts: Interrupts | None = None) -> LibraryResult:
    """Run the selected samples of `samples` (`select`) on `reactor` (already connected). Returns
    when the library ran to its end (some samples may have failed); raises LibraryStopped when
    it stopped early. The manifest shows every state when it returns or raises."""
    own = journal is None  # opened here: closed here, so that the library can be run again
    journal = journal or open_journal(samples, library=library, data_dir=data_dir, resume=resume or bool(retry))
    try:
        todo = select(samples, journal, resume=resume, retry=retry, retry_states=retry_states)
        with interrupts or Interrupts() as signals:
            result, stopped = _run(reactor, todo, journal, md, progress, signals)
    finally:
        journal.close() if own else journal.flush()
    result.states = {s.sample_id: journal.state(s.sample_id) for s in samples}
    if stopped:
        raise LibraryStopped(stopped, result)
    return result


def _run(reactor, todo: list, journal: Journal, md: dict, progress: Progress,
         interrupts: Interrupts) -> tuple[LibraryResult, str]:
    """(result, why it stopped early or ""); the line is in its safe state when this returns."""
    result = LibraryResult(journal.directory)
    writer = HDF5Writer(journal.directory)
    with run_engine() as engine, interrupts.running(engine):
        engine.md["scan_id"] = journal.last_scan_id()  # numbers go on across resumes and retries
        current: dict[str, str] = {}
        engine.subscribe(lambda name, doc: _begin(doc, journal, current), "start")  # before its file exists
        engine.subscribe(writer)
        engine.subscribe(lambda name, doc: _follow(name, doc, journal, writer, current, progress))
        interlock = reactor.interlock()
        if interlock:
            interlock.attach(engine, resume_after=10.0)
        night = _Night(reactor, engine, interlock, journal, interrupts, result)
        try:
            stopped = night.run(todo, md, progress, current)
        except BaseException as error:
            problems = night.end()
            if isinstance(error, QuenchlabError):
                raise LibraryStopped(_with_safe_state(str(error), problems, result, night.to_retry), result) from None
            raise
    problems = night.end()
    if stopped or problems:
        return result, _with_safe_state(stopped or "the library is done", problems, result, night.to_retry)
    return result, ""


@dataclass
class _Night:
    """One run of the selected samples on a reactor, under one RunEngine."""

    reactor: object
    engine: object
    interlock: object
    journal: Journal
    interrupts: Interrupts
    result: LibraryResult
    last: str | None = None  # the last sample run
    failed_in_a_row: list[str] = field(default_factory=list)

    def run(self, todo: list, md: dict, progress: Progress, current: dict) -> str:
        """Each sample in turn; returns why the night stopped early ("": it ran to its end)."""
        prepared = False
        for index, sample in enumerate(todo):
            if not prepared and not self.interrupts.received:
                _prepare(self.reactor, self.interlock, self.failed_in_a_row[-1] if self.failed_in_a_row else None)
                prepared = True
            if self.interrupts.received:
                return self.stopped_by_signal()
            if self.interlock and self.interlock.trips:  # between samples: the line is safe, no longer watched
                return f"the interlock tripped before sample {sample.sample_id}: {self.interlock.trips[-1]}"
            current["sample_id"] = sample.sample_id
            progress.sample(sample.sample_id, index, len(todo))
            outcome = self.run_one(sample, md)
            if outcome.state == PENDING:  # a signal came before its run began: nothing of it happened
                return self.stopped_by_signal()
            self.last = sample.sample_id
            self.journal.record(self.last, outcome.state, note=outcome.reason)
            progress.done(self.last, outcome.state)
            if stopped := self.after(outcome):
                return stopped
            prepared = outcome.state == DONE
        return self.stopped_by_signal() if self.interrupts.received else ""  # after the last sample's data

    def run_one(self, sample, md: dict) -> Outcome:
        attempt = len(self.journal.attempts.get(sample.sample_id, [])) + 1
        placed = self.reactor.place(sample, self.journal.directory.parent, Path(self.journal.library), attempt)
        sample_md = {"sample": sample.sample_id, **sample.row.model_dump(exclude_none=True), **md, **placed,
                     "quenchlab_version": __version__}
        return run_once(self.engine, self.reactor.plan(sample, sample_md), self.interrupts, self.interlock,
                        self.reactor.link_events)

    def after(self, outcome: Outcome) -> str:
        """Why the night stops after this sample ("": it goes on; a failed sample's line made safe)."""
        if outcome.state == DONE:
            self.result.completed += 1
            self.failed_in_a_row.clear()
            return ""
        sample_id, limit = self.last, self.reactor.config.library.stop_after_failures
        self.failed_in_a_row.append(sample_id)
        if outcome.state == INTERRUPTED:
            return f"{outcome.reason}: sample {sample_id} interrupted; stopped after {self.completed}"
        if outcome.line:
            return f"sample {sample_id} failed: {outcome.reason}; the library stops: a failure of the line, not of " \
                   "the sample"
        if len(self.failed_in_a_row) >= limit:
            return (f"{limit} samples failed in a row ({', '.join(self.failed_in_a_row[-limit:])}; "
                    f"library.stop_after_failures is {limit}); the last: {outcome.reason}")
        if problems := _stop(self.interlock, self.reactor):
            return f"sample {sample_id} failed: {outcome.reason}; making the line safe after it failed: " \
                   f"{'; '.join(problems)}"
        return ""

    @property
    def to_retry(self) -> str | None:
        """The last sample run, if it did not complete."""
        return self.last if self.last and self.journal.state(self.last) != DONE else None

    @property
    def completed(self) -> str:
        count = self.result.completed
        return f"{count} sample{'s' if count != 1 else ''} completed"

    def stopped_by_signal(self) -> str:
        return f"{self.interrupts.reason}: stopped after {self.completed}"

    def end(self) -> list[str]:
        """The line to its safe state, read back into the last attempt's journal entry; returns
        what went wrong making it safe."""
        problems = _stop(self.interlock, self.reactor)
        self.result.safe_state = self.reactor.safe_readback()
        if self.last is not None:
            self.journal.record(self.last, self.journal.state(self.last), safe_state=self.result.safe_state)
        return problems


def _prepare(reactor, interlock, after_failure: str | None) -> None:
    """The line prepared (again, after a sample's failure: then a failure here is the line's)
    and the interlock watching afresh."""
    try:
        reactor.prepare()
    except QuenchlabError as error:
        if after_failure is None:
            raise
        raise QuenchlabError(f"preparing the line again after sample {after_failure} failed: {error}") from None
    if interlock:
        interlock.start()


def _with_safe_state(message: str, problems: list[str], result: LibraryResult, last: str | None) -> str:
    readback = ", ".join(f"{name} {value}" for name, value in result.safe_state.items())
    if problems:
        return f"{message}; reaching the safe state failed: {'; '.join(problems)}: check the line by hand" + \
            (f" (read back: {readback})" if readback else "")
    retry = f", run {last} again with --retry {last}" if last else ""
    return (f"{message}; the line is in its safe state" + (f" (read back: {readback})" if readback else "") +
            f"; continue with --resume{retry} (the journal is in {result.directory})")


def _stop(interlock, reactor) -> list[str]:
    if interlock:
        interlock.halt()
    return reactor.safe()


def _begin(start: dict, journal: Journal, current: dict) -> None:
    """A new attempt in the journal as its run opens, with the file its record is about to
    take and its scan number: durable before the file exists (a kill in between leaves an
    attempt `running`, then `interrupted`, never a record the journal does not know)."""
    current["file"] = f"{file_stem(start)}.h5"
    journal.begin(current["sample_id"], file=current["file"], scan_id=start.get("scan_id"))


def _follow(name: str, doc: dict, journal: Journal, writer: HDF5Writer, current: dict, progress: Progress) -> None:
    """The record's file, should its name have had to differ (a name taken already); phases."""
    if name == "start" and writer.path is not None and writer.path.name != current["file"]:
        journal.record(current["sample_id"], RUNNING, file=writer.path.name)
    elif name in ("event", "event_page") and "marker_phase" in doc.get("data", {}):
        phases = doc["data"]["marker_phase"]
        progress.phase(phases[-1] if isinstance(phases, list) else phases)
