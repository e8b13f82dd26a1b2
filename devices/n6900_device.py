"""ophyd device for the N6900 supply: setpoints with readbacks, output, protection settings.

Staging, unstaging and stop always switch the output off.
"""
from ophyd import Component as Cpt
from ophyd import Kind

from .driver_device import DriverSignal, SupplyDevice
from .n6900_driver import N6900


class N6900Supply(SupplyDevice):
    driver: N6900

    current = Cpt(DriverSignal, read="current_setting", write="set_current", units="A")
    voltage = Cpt(DriverSignal, read="voltage_setting", write="set_voltage", units="V")
    output = Cpt(DriverSignal, read="output_enabled", kind=Kind.normal)
    questionable = Cpt(DriverSignal, read="questionable", kind=Kind.normal)
    identity = Cpt(DriverSignal, read="identify", kind=Kind.config)
    ovp = Cpt(DriverSignal, read="protection_settings", key="ovp", kind=Kind.config, units="V")
    ocp = Cpt(DriverSignal, read="protection_settings", key="ocp", kind=Kind.config)
    protection_delay = Cpt(DriverSignal, read="protection_settings", key="protection_delay", kind=Kind.config,
                           units="s")
    watchdog_delay = Cpt(DriverSignal, read="protection_settings", key="watchdog_delay", kind=Kind.config, units="s")
