"""The twins of an aerosol (flame spray) line, sharing one world and one clock, on loopback."""
from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from quenchlab.clock import ReactorClock

from .aerosol_world import AerosolWorld, LineModel, Precursor
from .alicat_twin import AlicatBus
from .impac_twin import ImpacTwin
from .liquid_path import SyringePath
from .ne1000_twin import NE1000Twin
from .servers import TwinGroup
from .ssi_twin import SsiTwin
from .vici_twin import ViciTwin
from .zaber_twin import ZaberTwin

if TYPE_CHECKING:  # a config describes the twins; they never read it at import
    from quenchlab.config.aerosol import AerosolConfig


class AerosolTwins(TwinGroup):
    """Valve, pump (a syringe or an HPLC pump), gas bus (controllers and the filter gauge share
    it), flame pyrometer and, if configured, the collector carrying the plate; with `gateway`
    ("socket" or "rfc2217"), each served on a TCP port as a serial-to-Ethernet gateway would."""

    def __init__(self, config: AerosolConfig, clock: ReactorClock | None = None, seed: int | None = None,
                 gateway: str | None = None):
        i = config.instruments
        precursors = {port: Precursor(r.precursor, r.solids, r.flame_offset) for port, r in config.reservoirs.items()}
        line = LineModel(dead_volume=config.dead_volume, capture=config.line.capture,
                         reservoirs={port: r.volume for port, r in config.reservoirs.items()})
        syringe = i.pump.model == "ne1000"
        path = SyringePath(config.dead_volume, {}, inlet_volume=i.pump.inlet_volume, capacity=i.pump.capacity) \
            if syringe else None
        self.world = AerosolWorld(precursors, clock or ReactorClock(), line, seed=seed, path=path)
        self.valve = ViciTwin(self.world, positions=i.valve.positions, baudrate=i.valve.baudrate)
        self.world.valve = self.valve
        if syringe:
            self.pump = NE1000Twin(self.world, address=i.pump.pump_address, baudrate=i.pump.baudrate,
                                   diameter=i.pump.diameter)
        else:
            self.pump = SsiTwin(self.world, head_max_flow=i.pump.max_flow, baudrate=i.pump.baudrate,
                                volume=max(i.pump.head_volume, 0.1))
        self.gases = AlicatBus(self.world, seed=seed)
        self.controllers = {role: self.gases.add_controller(g.unit, role, g.gas, g.full_scale)
                            for role, g in i.gases.items()}
        self.gauge = self.gases.add_gauge(i.filter_gauge.unit, unit="kPa", full_scale=100.0)
        self.pyrometer = ImpacTwin(self.world, address=i.pyrometer.bus_address, baudrate=i.pyrometer.baudrate,
                                   seed=seed)
        twins = {"valve": self.valve, "pump": self.pump, "gases": self.gases, "pyrometer": self.pyrometer}
        self.models = {"valve": "vici-universal", "pump": i.pump.model, "gases": "alicat-bus", "pyrometer": "impac-upp"}
        if i.collector:
            c = i.collector
            self.collector = ZaberTwin(self.world.clock, microstep_um=c.microstep, travel_mm=c.travel,
                                       maxspeed_mm_s=c.speed, accel_mm_s2=c.acceleration,
                                       shutter_output=c.shutter_output, address=c.device, baudrate=c.baudrate)
            self.world.collector, self.world.locate = self.collector, cache(config.plate.locate)
            twins["collector"], self.models["collector"] = self.collector, c.model
        self.servers = {name: self.serial_server(twin, gateway) for name, twin in twins.items()}
        self._roles = ["filter_gauge", *(f"gases.{role}" for role in i.gases)]

    def config_addresses(self) -> dict[str, str]:
        """The gas controllers and the filter gauge share the gas bus's address."""
        addresses = {name: address for name, address in self.addresses.items() if name != "gases"}
        return addresses | {role: self.addresses["gases"] for role in self._roles}
