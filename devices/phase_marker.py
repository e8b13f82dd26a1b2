"""A soft device whose readings mark the phases of a sample in reactor time."""
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
