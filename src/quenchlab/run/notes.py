"""What a run must say that no instrument reads: the link faults its drivers rode through, the
interlock trip that ended it and why it was aborted. The faults and the trip travel as one event
of the `notes` stream, read just before the run's close (on every ending in which the plan closes
its run: done, failed or aborted; not after RunEngine.halt, which closes it without the plan); an
abort's reason goes into the stop document, whose close the plan sends without one. So every
consumer of the documents sees them: the HDF5 writer puts each note at /entry/<name> and the
reason at /entry/reason.
"""
import time

import bluesky.plan_stubs as bps
from bluesky.preprocessors import plan_mutator

from quenchlab.record.writer import NOTES


class _Notes:
    """A readable of texts (bluesky's Readable protocol), each field a text or a list of texts."""

    name, parent = NOTES, None

    def __init__(self, notes: dict[str, str | list[str]]):
        self.notes, self.stamp = notes, time.time()

    def describe(self) -> dict:
        return {key: {"source": "quenchlab", "dtype": "array", "shape": [len(text)]} if isinstance(text, list)
                else {"source": "quenchlab", "dtype": "string", "shape": []} for key, text in self.notes.items()}

    def read(self) -> dict:
        return {key: {"value": text, "timestamp": self.stamp} for key, text in self.notes.items()}


class RunNotes:
    """What a run notes when it closes: the link faults `link_events` returns (those since its
    last call, oldest first), the trip of `interlock` if it tripped during the run, and as an
    abort's reason that trip or the signal `interrupts` received. An abort that lands within
    the notes' own three messages loses them (the RunEngine then closes the run itself)."""

    def __init__(self, link_events=None, interlock=None, interrupts=None):
        self.link_events, self.interlock, self.interrupts = link_events, interlock, interrupts
        self.opened()

    def opened(self) -> None:
        """A run begins: nothing of it noted yet; trips before it are not its."""
        self.tripped_before = len(self.interlock.trips) if self.interlock is not None else 0
        self.saved = False

    def trip(self):
        trips = self.interlock.trips if self.interlock is not None else []
        return trips[-1] if len(trips) > self.tripped_before else None

    def gather(self) -> dict[str, str | list[str]]:
        notes: dict[str, str | list[str]] = {}
        if self.link_events and (events := self.link_events()):
            notes["link_faults"] = [str(event) for event in events]
        if trip := self.trip():
            notes["interlock_trip"] = str(trip)
        return notes

    def abort_reason(self) -> str | None:
        trip = self.trip()
        return str(trip) if trip else getattr(self.interrupts, "reason", None)


def with_notes(plan, notes: RunNotes):
    """`plan`, its run closed with `notes`: an event of the `notes` stream before the close (none
    when there is nothing to note), and an abort's reason in a close without one."""
    def around_the_run(msg):
        if msg.command == "open_run":
            notes.opened()
        return (_noted_close(msg, notes), None) if msg.command == "close_run" else (None, None)
    return plan_mutator(plan, around_the_run)


def _noted_close(close, notes: RunNotes):
    if not notes.saved:  # the close comes back through the mutator once given its reason
        if noted := notes.gather():
            yield from bps.create(NOTES)
            yield from bps.read(_Notes(noted))
            yield from bps.save()
        notes.saved = True
    if close.kwargs.get("reason") is None and close.kwargs.get("exit_status") == "abort":
        if reason := notes.abort_reason():
            close = close._replace(kwargs={**close.kwargs, "reason": reason})
    return (yield close)
