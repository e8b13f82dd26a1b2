"""Running a sample library unattended: one run and one HDF5 file per sample, journalled.

The reactor behind it is either an FJH rig (one row = one sample + one recipe) or an aerosol
line (one row = one valve slot). Both offer `prepare()`, `plan(sample, md)`, `safe()` and
`close()`; this module owns the order, the journal, the records and what happens on failure.
"""
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bluesky import RunEngine
from bluesky.utils import FailedStatus, RunEngineInterrupted

from . import __version__
from .engine import abort_run, failure_cause, link_faults_recorded, run_engine, sigterm_interrupts
from .errors import QuenchlabError
from .files import writable_directory
from .journal import DONE, FAILED, INTERRUPTED, PENDING, RUNNING, Journal
from .library import safe_name
from .writer import HDF5Writer


@dataclass
class Progress:
    """What the runner reports as it goes (all optional)."""

    sample: Callable[[str, int, int], None] = lambda sample_id, index, total: None
    phase: Callable[[str], None] = lambda phase: None
    done: Callable[[str, str], None] = lambda sample_id, state: None


@dataclass
class LibraryResult:
    directory: Path
    states: dict[str, str] = field(default_factory=dict)


def library_directory(data_dir: Path, library: Path) -> Path:
    return data_dir / safe_name(library.stem)


def open_journal(samples: list, *, library: Path, data_dir: Path, resume: bool) -> Journal:
    """The library's journal (refused, before any instrument is touched, if it cannot be run)."""
    directory = writable_directory(library_directory(data_dir, library))
    return Journal(directory, [s.sample_id for s in samples], resume=resume, library=library)


def run_library(reactor, samples: list, *, library: Path, data_dir: Path, resume: bool,
                md: dict, progress: Progress = Progress(), journal: Journal | None = None) -> LibraryResult:
    """Run every pending sample of `samples` on `reactor` (already connected); the manifest
    shows every state when it returns or raises."""
    journal = journal or open_journal(samples, library=library, data_dir=data_dir, resume=resume)
    try:
        return _run_pending(reactor, samples, journal, md, progress)
    finally:
        journal.flush()


def _run_pending(reactor, samples: list, journal: Journal, md: dict, progress: Progress) -> LibraryResult:
    directory = journal.directory
    journal.recover()
    result = LibraryResult(directory)
    todo = [s for s in samples if journal.state(s.sample_id) == PENDING]
    writer = HDF5Writer(directory)
    with run_engine() as engine:
        engine.subscribe(writer)
        current: dict[str, str] = {}
        engine.subscribe(lambda name, doc: _follow(name, doc, journal, writer, current, progress))
        interlock = reactor.interlock()
        if interlock:
            interlock.attach(engine, resume_after=10.0)
        try:
            if todo:
                reactor.prepare()
                if interlock:
                    interlock.start()
            for index, sample in enumerate(todo):
                current["sample_id"] = sample.sample_id
                progress.sample(sample.sample_id, index, len(todo))
                journal.record(sample.sample_id, RUNNING)
                with link_faults_recorded(reactor, writer):
                    state, note = _run_one(engine, reactor, sample, md, interlock, writer)
                journal.record(sample.sample_id, state, note=note)
                progress.done(sample.sample_id, state)
                if state != DONE:
                    raise QuenchlabError(f"sample {sample.sample_id} {state}: {note}")
        except QuenchlabError as error:
            raise QuenchlabError(_with_safe_state(str(error), _stop(interlock, reactor), directory)) from None
        except BaseException:
            _stop(interlock, reactor)
            raise
        problems = _stop(interlock, reactor)
        if problems:
            raise QuenchlabError(_with_safe_state("the library is done", problems, directory))
        result.states = {s.sample_id: journal.state(s.sample_id) for s in samples}
        return result


def _with_safe_state(message: str, problems: list[str], directory: Path) -> str:
    if problems:
        return f"{message}; reaching the safe state failed: {'; '.join(problems)}: check the line by hand"
    return (f"{message}; the line is in its safe state; fix the cause, then continue with --resume "
            f"(the journal is in {directory})")


def _stop(interlock, reactor) -> list[str]:
    if interlock:
        interlock.halt()
    return reactor.safe()


def _run_one(engine: RunEngine, reactor, sample, md: dict, interlock, writer: HDF5Writer) -> tuple[str, str]:
    sample_md = {"sample": sample.sample_id, **sample.row.model_dump(exclude_none=True), **md,
                 "quenchlab_version": __version__}
    try:
        with sigterm_interrupts(engine):
            outcome = engine(reactor.plan(sample, sample_md))
    except RunEngineInterrupted:
        if interlock and interlock.trips:
            reason = abort_run(engine, trip := str(interlock.trips[-1]))
            writer.annotate("interlock_trip", trip)
            return FAILED, reason
        return INTERRUPTED, abort_run(engine, "interrupted by the user")
    except FailedStatus as failure:
        return FAILED, failure_cause(failure)
    except QuenchlabError as error:
        return FAILED, str(error)
    except Exception as error:  # anything unforeseen fails the sample: the journal must say so
        return FAILED, f"{type(error).__name__}: {error}"
    if outcome.exit_status != "success":
        return FAILED, f"run ended with {outcome.exit_status}: {outcome.reason}"
    return DONE, outcome.plan_result or ""


def _follow(name: str, doc: dict, journal: Journal, writer: HDF5Writer, current: dict, progress: Progress) -> None:
    """Write the sample's file name into the journal as soon as it exists; report phases."""
    if name == "start" and writer.path is not None:
        journal.record(current["sample_id"], RUNNING, file=writer.path.name)
    elif name in ("event", "event_page") and "marker_phase" in doc.get("data", {}):
        phases = doc["data"]["marker_phase"]
        progress.phase(phases[-1] if isinstance(phases, list) else phases)
