"""Soft devices of a sample: its phases marked in reactor time, what it collected, and the
instruments' settings as its record keeps them."""
from ophyd import Component as Cpt
from ophyd import Device, Kind, Signal
from ophyd.status import Status

from quenchlab.clock import ReactorClock


class SoftRecord(Device):
    """A device whose `set` puts values into its own signals at once; `units` names their units."""

    units: dict[str, str] = {}

    def _put(self, **values) -> Status:
        for attribute, value in values.items():
            getattr(self, attribute).put(value)
        status = Status(self)
        status.set_finished()
        return status

    def describe(self):
        description = super().describe()
        for attribute, unit in self.units.items():
            description[getattr(self, attribute).name]["units"] = unit
        return description


class PhaseMarker(SoftRecord):
    """`set(name)` stamps the phase and its reactor time; read it into the "phases" stream."""

    phase = Cpt(Signal, value="", kind=Kind.hinted)
    reactor_time = Cpt(Signal, value=0.0, kind=Kind.normal)
    note = Cpt(Signal, value="", kind=Kind.normal)
    units = {"reactor_time": "s"}

    def __init__(self, clock: ReactorClock, name: str = "marker"):
        super().__init__(name=name)
        self.clock = clock

    def set(self, value, note: str = "") -> Status:
        return self._put(phase=value, reactor_time=self.clock.now(), note=note)


class CollectionRecord(SoftRecord):
    """A soft device holding what one slot collected, as quenchlab reckons it from what it logged:
    the plate position, the shutter's open time and the powder (liquid x time x solids x capture)."""

    spot = Cpt(Signal, value="", kind=Kind.hinted)  # the plate position (`position` is bluesky's)
    collected = Cpt(Signal, value=0.0, kind=Kind.normal)
    powder = Cpt(Signal, value=0.0, kind=Kind.hinted)
    units = {"collected": "s", "powder": "mg"}

    def set(self, value) -> Status:
        position, seconds, milligrams = value
        return self._put(spot=position or "", collected=seconds, powder=milligrams)


def settings_of(devices) -> dict:
    """The devices' configuration as they last read it (no instrument is asked), shaped as a
    descriptor's `configuration` (data, timestamps, data_keys per device) with each data key
    cut to the units the record keeps: a record carries it in its start document, where a
    catalogue can search it, and writes it as its instrument groups."""
    settings = {}
    for device in devices:
        readings = device.read_configuration()
        settings[device.name] = {
            "data": {key: reading["value"] for key, reading in readings.items()},
            "timestamps": {key: reading["timestamp"] for key, reading in readings.items()},
            "data_keys": {key: {"units": described["units"]}
                          for key, described in device.describe_configuration().items() if described.get("units")}}
    return settings
