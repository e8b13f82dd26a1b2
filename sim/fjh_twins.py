"""The twins of a flash Joule heating reactor, sharing one world, served on loopback."""
from __future__ import annotations

from typing import TYPE_CHECKING

from quenchlab.clock import ReactorClock

from .capbank_twin import CapBankTwin
from .fjh_world import FJHWorld
from .genesys_twin import GenesysTwin
from .impac_twin import ImpacTwin
from .infiniivision_twin import InfiniiVisionTwin
from .n6900_twin import N6900Twin
from .samples import PRESETS
from .servers import TcpServer, TwinGroup

if TYPE_CHECKING:  # a config describes the twins; they never read it at import
    from quenchlab.config.fjh import FJHConfig


class FJHTwins(TwinGroup):
    """Supply, pyrometer and digitizer twins wired as the config describes.

    The supply is the configured model's twin, the world's electrical source: an N6900 on TCP,
    a Genesys (at the configured ADR unit and baud rate) or a capacitor bank's controller on a
    pseudo-terminal. The pyrometer's analog output drives the digitizer channel through the
    configured shunt; the N6900's trigger-out (digital pin 1) is wired to the digitizer's EXT
    input; a current probe (`digitizer.current_channel`) gives `current_sensitivity` volts per
    ampere of the sample's current. With `gateway` ("socket" or "rfc2217"), the serial twins are
    served on TCP ports as serial-to-Ethernet gateways would serve them.
    """

    def __init__(self, config: FJHConfig, clock: ReactorClock | None = None, gateway: str | None = None):
        instruments = config.instruments
        self.world = FJHWorld(PRESETS[config.simulation.sample], clock or ReactorClock())
        seed = config.simulation.seed
        self.supply, server = self._supply(instruments.supply, gateway)
        self.pyrometer = ImpacTwin(self.world, address=instruments.pyrometer.bus_address,
                                   baudrate=instruments.pyrometer.baudrate, seed=seed)
        digitizer = instruments.digitizer
        inputs = {digitizer.channel: lambda t: self.pyrometer.analog_current(t) * digitizer.shunt / 1000}
        if digitizer.current_channel is not None:
            inputs[digitizer.current_channel] = lambda t: (self.world.sample_at(t, "amps")
                                                           * digitizer.current_sensitivity)
        self.digitizer = InfiniiVisionTwin(self.world, inputs, seed=None if seed is None else seed + 1,
                                           segments=digitizer.segments)
        self.models = {"supply": instruments.supply.model, "pyrometer": "impac-upp",
                       "digitizer": "keysight-infiniivision"}
        self.servers = {"supply": server, "pyrometer": self.serial_server(self.pyrometer, gateway),
                        "digitizer": TcpServer(self.digitizer)}

    def _supply(self, supply, gateway: str | None):
        """The configured supply's twin on the world, and its server."""
        if supply.model == "tdk-genesys":
            twin = GenesysTwin(self.world, address=supply.unit, baudrate=supply.baudrate)
            return twin, self.serial_server(twin, gateway)
        if supply.model == "capbank":
            twin = CapBankTwin(self.world)
            return twin, self.serial_server(twin, gateway)
        twin = N6900Twin(self.world)
        return twin, TcpServer(twin)
