"""The twins of an aerosol (flame spray) line, sharing one world and one clock, on loopback."""
from quenchlab.aerosol_config import AerosolConfig
from quenchlab.clock import ReactorClock

from .aerosol_world import AerosolWorld, LineModel, Precursor
from .alicat_twin import AlicatBus
from .impac_twin import ImpacTwin
from .ne1000_twin import NE1000Twin
from .servers import PtyServer, SerialLines, TwinGroup
from .vici_twin import ViciTwin


class AerosolTwins(TwinGroup):
    """Valve, pump, gas bus (controllers and the filter gauge share it) and flame pyrometer twins."""

    models = {"valve": "vici-universal", "pump": "ne1000", "gases": "alicat-bus", "pyrometer": "impac-upp"}

    def __init__(self, config: AerosolConfig, clock: ReactorClock | None = None, seed: int | None = None):
        i = config.instruments
        precursors = {port: Precursor(r.precursor, r.solids, r.flame_offset) for port, r in config.reservoirs.items()}
        line = LineModel(dead_volume=config.line.dead_volume,
                         reservoirs={port: r.volume for port, r in config.reservoirs.items()})
        self.world = AerosolWorld(precursors, clock or ReactorClock(), line, seed=seed)
        self.valve = ViciTwin(self.world, positions=i.valve.positions, baudrate=i.valve.baudrate)
        self.world.valve = self.valve
        self.pump = NE1000Twin(self.world, address=i.pump.pump_address, baudrate=i.pump.baudrate,
                               diameter=i.pump.diameter)
        self.world.pump = self.pump
        self.gases = AlicatBus(self.world, seed=seed)
        self.controllers = {role: self.gases.add_controller(g.unit, role, g.gas, g.full_scale)
                            for role, g in i.gases.items()}
        self.gauge = self.gases.add_gauge(i.filter_gauge.unit, unit="kPa", full_scale=100.0)
        self.pyrometer = ImpacTwin(self.world, address=i.pyrometer.bus_address, baudrate=i.pyrometer.baudrate,
                                   seed=seed)
        self.lines = SerialLines()
        self.servers = {name: PtyServer(twin, self.lines) for name, twin in
                        {"valve": self.valve, "pump": self.pump, "gases": self.gases, "pyrometer": self.pyrometer}.items()}
