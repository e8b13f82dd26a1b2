"""One run and how it ended, told the same way to the record, the journal and the command line.

A run is completed (`done`), interrupted by a signal (`interrupted`, its reason "interrupted by
the user" for SIGINT, "terminated" for SIGTERM), or failed (`failed`: the interlock tripped, an
instrument action, the plan or the record failed). A run that a signal stopped before it began
is `pending`: nothing of it happened.

A failure is the sample's or the line's (`Outcome.line`); a library goes on after the sample's
(quenchlab.library.runner), and stops after the line's:
- the sample's: the plan refused this sample's program (a ConfigError or LimitError: a learned
  pulse over the limits for the sample it calibrated), or an instrument error that belongs to
  the liquid being pumped (its `liquid` is true: a syringe pump's stall or rate out of range, a
  syringe that would run empty or draw air, an HPLC pump's pressure fault), whether the plan or
  the interlock met it first;
- the line's: every other interlock trip (a filter pressure over its limit, stale process
  data), an instrument that stopped answering, a record that could not be written, and
  anything unforeseen.
"""
from collections.abc import Callable
from dataclasses import dataclass

from bluesky import RunEngine
from bluesky.utils import FailedStatus, RunEngineInterrupted

from quenchlab.errors import ConfigError, QuenchlabError
from quenchlab.run.engine import abort_run, failure_error
from quenchlab.run.interrupts import Interrupts
from quenchlab.run.notes import RunNotes, with_notes

# an attempt's states, as the run tells them and a library's journal records them
PENDING, RUNNING, DONE, FAILED, INTERRUPTED = "pending", "running", "done", "failed", "interrupted"


@dataclass(frozen=True)
class Outcome:
    state: str  # DONE, FAILED, INTERRUPTED, or PENDING (stopped before it began)
    reason: str  # why it ended (a completed run: its plan's note, if any)
    line: bool = False  # a failure of the line, not of the sample: a library stops


def belongs_to_sample(error: BaseException | None) -> bool:
    """Whether a failure is the sample's own (see the module's docstring)."""
    return isinstance(error, ConfigError) or getattr(error, "liquid", False) is True


def run_once(engine: RunEngine, plan, interrupts: Interrupts, interlock=None,
             link_events: Callable[[], list] | None = None) -> Outcome:
    """Run `plan` on `engine` under `interrupts`; a paused run is aborted (its cleanup runs) with
    the trip or the signal as its reason. The run notes the interlock's trip, the link faults
    `link_events` returns and an abort's reason before its stop (quenchlab.run.notes)."""
    opened = []
    token = engine.subscribe(lambda name, doc: opened.append(doc["uid"]), "start")
    try:
        notes = RunNotes(link_events, interlock, interrupts)
        return _outcome(engine, plan, notes, interrupts, interlock, opened)
    finally:
        engine.unsubscribe(token)


def _outcome(engine, plan, notes, interrupts, interlock, opened) -> Outcome:
    try:
        result = engine(with_notes(interrupts.unless_received(plan), notes))
    except RunEngineInterrupted:
        trip = _trip(interlock)
        reason = abort_run(engine, str(trip) if trip else interrupts.reason or "paused")
        if trip:
            return _tripped(trip, reason)
        return Outcome(INTERRUPTED if opened else PENDING, reason)
    except FailedStatus as failure:  # what the instrument action behind it met, not the Status's repr
        error = failure_error(failure)
    except Exception as unforeseen:  # the plan's refusal, a record not written, anything else
        error = unforeseen
    else:
        if not result.run_start_uids:
            return Outcome(PENDING, interrupts.reason)
        if result.exit_status != "success":
            return Outcome(FAILED, f"the run ended with {result.exit_status}: {result.reason}", line=True)
        return Outcome(DONE, result.plan_result or "")
    said = str(error) if isinstance(error, QuenchlabError) else f"{type(error).__name__}: {error}"
    if trip := _trip(interlock):  # the error itself, met by the plan too, is said once
        return _tripped(trip, str(trip) if said in str(trip) else f"{trip}; then {said}")
    if interrupts.received:
        return Outcome(INTERRUPTED, f"{interrupts.reason}; then {said}")
    return Outcome(FAILED, said, line=not belongs_to_sample(error))


def _trip(interlock):
    return interlock.trips[-1] if interlock and interlock.trips else None


def _tripped(trip, reason: str) -> Outcome:
    return Outcome(FAILED, reason, line=not belongs_to_sample(trip.cause))
