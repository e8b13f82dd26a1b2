"""Soft devices of a sample: its phases marked in reactor time, and what it collected."""
from ophyd import Component as Cpt
from ophyd import Device, Kind, Signal
from ophyd.status import Status

from quenchlab.clock import ReactorClock


class PhaseMarker(Device):
    """`set(name)` stamps the phase and its reactor time; read it into the "phases" stream."""

    phase = Cpt(Signal, value="", kind=Kind.hinted)
    reactor_time = Cpt(Signal, value=0.0, kind=Kind.normal)
    note = Cpt(Signal, value="", kind=Kind.normal)

    def __init__(self, clock: ReactorClock, name: str = "marker"):
        super().__init__(name=name)
        self.clock = clock

    def set(self, value, note: str = "") -> Status:
        self.phase.put(value)
        self.reactor_time.put(self.clock.now())
        self.note.put(note)
        status = Status(self)
        status.set_finished()
        return status

    def describe(self):
        description = super().describe()
        description[self.reactor_time.name]["units"] = "s"
        return description


class CollectionRecord(Device):
    """A soft device holding what one slot collected, as quenchlab reckons it from what it logged:
    the plate position, the shutter's open time and the powder (liquid x time x solids x capture)."""

    spot = Cpt(Signal, value="", kind=Kind.hinted)  # the plate position (`position` is bluesky's)
    collected = Cpt(Signal, value=0.0, kind=Kind.normal)
    powder = Cpt(Signal, value=0.0, kind=Kind.hinted)

    def set(self, value) -> Status:
        position, seconds, milligrams = value
        self.spot.put(position or "")
        self.collected.put(seconds)
        self.powder.put(milligrams)
        status = Status(self)
        status.set_finished()
        return status

    def describe(self):
        description = super().describe()
        description[self.collected.name]["units"] = "s"
        description[self.powder.name]["units"] = "mg"
        return description
