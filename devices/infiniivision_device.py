"""ophyd device for an InfiniiVision digitizer: its identity and capture settings."""
from ophyd import Component as Cpt
from ophyd import Kind

from .driver_device import DriverDevice, DriverSignal
from .infiniivision_driver import InfiniiVision


class InfiniiVisionDigitizer(DriverDevice):
    driver: InfiniiVision

    identity = Cpt(DriverSignal, read="identify", kind=Kind.config)
    time_range = Cpt(DriverSignal, read="time_range", kind=Kind.config, units="s")
