"""The sample model identified by a calibration pulse, as a device read into the record."""
import math

from ophyd import Device
from ophyd.device import Component, create_device_from_components

from quenchlab.control.thermal_model import UNITS, SampleModel
from quenchlab.devices.driver_device import UnitSignal

SampleModelDevice = create_device_from_components(
    "SampleModelDevice",
    docstring="One signal per parameter of quenchlab.control.thermal_model.SampleModel, with units.",
    **{key: Component(UnitSignal, value=math.nan, units=units) for key, units in UNITS.items()})


def model_device(model: SampleModel, name: str = "sample_model") -> Device:
    """A device holding `model`'s parameters (stream "sample_model" when read)."""
    device = SampleModelDevice(name=name)
    for key, (value, _) in model.as_record().items():
        getattr(device, key).put(value)
    return device
