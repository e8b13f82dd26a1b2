"""The twins of a flash Joule heating reactor, sharing one world, served on loopback."""
from quenchlab.clock import ReactorClock
from quenchlab.config import FJHConfig

from .fjh_world import FJHWorld
from .impac_twin import ImpacTwin
from .infiniivision_twin import InfiniiVisionTwin
from .n6900_twin import N6900Twin
from .samples import PRESETS
from .servers import PtyServer, TcpServer, TwinGroup


class FJHTwins(TwinGroup):
    """Supply, pyrometer and digitizer twins wired as the config describes.

    The pyrometer's analog output drives the digitizer channel through the configured
    shunt; the supply's trigger-out (digital pin 1) is wired to the digitizer's EXT input.
    """

    models = {"supply": "keysight-n6900", "pyrometer": "impac-upp", "digitizer": "keysight-infiniivision"}

    def __init__(self, config: FJHConfig, clock: ReactorClock | None = None):
        instruments = config.instruments
        self.world = FJHWorld(PRESETS[config.simulation.sample], clock or ReactorClock())
        seed = config.simulation.seed
        self.supply = N6900Twin(self.world)
        self.pyrometer = ImpacTwin(self.world, address=instruments.pyrometer.bus_address,
                                   baudrate=instruments.pyrometer.baudrate, seed=seed)
        shunt = instruments.digitizer.shunt
        self.digitizer = InfiniiVisionTwin(
            self.world, {instruments.digitizer.channel: lambda t: self.pyrometer.analog_current(t) * shunt / 1000},
            seed=None if seed is None else seed + 1)
        self.servers = {"supply": TcpServer(self.supply), "pyrometer": PtyServer(self.pyrometer),
                        "digitizer": TcpServer(self.digitizer)}
