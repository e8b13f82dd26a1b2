"""ophyd device for a Genesys supply: setpoints with readbacks, measured output, mode, faults.

Staging, unstaging and stop always switch the output off (the driver confirms it by readback).
"""
from ophyd import Component as Cpt
from ophyd import Kind

from .driver_device import DriverSignal, SupplyDevice
from .genesys_driver import Genesys


class GenesysSupply(SupplyDevice):
    driver: Genesys

    current = Cpt(DriverSignal, read="current_setting", write="set_current", units="A")
    voltage = Cpt(DriverSignal, read="voltage_setting", write="set_voltage", units="V")
    measured_current = Cpt(DriverSignal, read="readings", key="amps", kind=Kind.hinted, units="A")
    measured_voltage = Cpt(DriverSignal, read="readings", key="volts", kind=Kind.hinted, units="V")
    output = Cpt(DriverSignal, read="output_enabled", kind=Kind.normal)
    regulation = Cpt(DriverSignal, read="mode", kind=Kind.normal)  # CV, CC or OFF
    fault_register = Cpt(DriverSignal, read="fault_register", kind=Kind.normal)
    identity = Cpt(DriverSignal, read="identify", kind=Kind.config)
    ovp = Cpt(DriverSignal, read="protection_settings", key="ovp", kind=Kind.config, units="V")
    uvl = Cpt(DriverSignal, read="protection_settings", key="uvl", kind=Kind.config, units="V")
    foldback = Cpt(DriverSignal, read="protection_settings", key="foldback", kind=Kind.config)
    foldback_delay = Cpt(DriverSignal, read="protection_settings", key="foldback_delay", kind=Kind.config, units="s")
