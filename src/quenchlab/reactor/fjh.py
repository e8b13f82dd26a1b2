"""A flash Joule heating reactor assembled from its config: drivers, devices and the flyer.

The supply is whichever model the config names, built by its builder (quenchlab.reactor.supplies).
With `simulate=True` the config's twins are started and the very same drivers connect to
them instead of the instruments.
"""
import functools
import math

from quenchlab.clock import ReactorClock
from quenchlab.config.fjh import FJHConfig
from quenchlab.devices.impac_device import ImpacPyrometer
from quenchlab.devices.impac_driver import Impac
from quenchlab.devices.infiniivision_device import InfiniiVisionDigitizer
from quenchlab.devices.infiniivision_driver import InfiniiVision
from quenchlab.errors import InstrumentError
from quenchlab.reactor.assembly import Assembly
from quenchlab.reactor.interlock import Interlock, Watch
from quenchlab.reactor.supplies import BUILDERS


class FJHReactor(Assembly):
    """Connects to every instrument, programs its settings from the config and reads them back."""

    def __init__(self, config: FJHConfig, *, simulate: bool = False):
        super().__init__()
        self.config = config
        self.builder = BUILDERS[config.instruments.supply.model](config)
        self.clock = ReactorClock()  # an FJH rig always runs at speed 1; shared with its twins
        self.twins = None
        addresses = {instrument.name: instrument.entry.address for instrument in config.listed()}
        if simulate or config.simulated:
            from quenchlab.sim.fjh_twins import FJHTwins
            self.twins = FJHTwins(config, self.clock)
            self._twins.append(self.twins)
            addresses = self.twins.config_addresses()
        self._connect_all(addresses, self.twins is not None)

    def _connect(self, addresses: dict[str, str]) -> None:
        c = self.config.instruments
        self.supply_driver = self._open(self.builder.open(addresses["supply"]), "supply")
        self.builder.prepare(self.supply_driver)  # made safe first, then its protection programmed
        self.pyrometer_driver = self._open(Impac(addresses["pyrometer"], c.pyrometer.bus_address, c.pyrometer.baudrate),
                                           "pyrometer")
        self.pyrometer_driver.set_emissivity(c.pyrometer.emissivity)
        self.pyrometer_driver.set_response_time(c.pyrometer.response_time)
        self.pyrometer_driver.set_measuring_range(c.pyrometer.range_begin, c.pyrometer.range_end)
        self.pyrometer_driver.set_analog_live_zero(c.pyrometer.analog_output == "4-20 mA")
        self.digitizer_driver = self._open(InfiniiVision(addresses["digitizer"], timeout=c.digitizer.timeout,
                                                         visa_library=self.config.visa_library), "digitizer")
        # 0-20 mA through the shunt spans 0..20 mA * R; give the channel 10 % headroom
        full_scale = 0.020 * c.digitizer.shunt * 1.1
        self.digitizer_driver.configure_channel(c.digitizer.channel, full_scale, full_scale / 2)
        self._verify()
        self.supply = self.builder.device(self.supply_driver)
        self.pyrometer = ImpacPyrometer(self.pyrometer_driver, name="pyrometer")
        self.digitizer = InfiniiVisionDigitizer(self.digitizer_driver, name="digitizer")
        self.flyer = self.builder.flyer(self.supply_driver, self.pyrometer_driver, self.digitizer_driver)
        self._flyers = [self.flyer]

    def _verify(self) -> None:
        """Read back what was programmed; a mismatch refuses to start."""
        c = self.config.instruments
        begin, end = self.pyrometer_driver.measuring_range()
        checks = [("supply", *readback) for readback in self.builder.readbacks(self.supply_driver)]
        checks += [("pyrometer", "emissivity", self.pyrometer_driver.emissivity(), c.pyrometer.emissivity),
                   ("pyrometer", "range_begin", begin, round(c.pyrometer.range_begin - 273.15) + 273.15),
                   ("pyrometer", "range_end", end, round(c.pyrometer.range_end - 273.15) + 273.15)]
        for instrument, field, actual, wanted in checks:
            if abs(actual - wanted) > 1e-6 * max(1.0, abs(wanted)):
                driver = getattr(self, f"{instrument}_driver")
                raise InstrumentError(instrument, driver.address, field,
                                      f"reads back {actual:g}, not the configured {wanted:g}")

    @functools.cached_property
    def calibration_flyer(self):
        """A second flyer on the same instruments, recording into the stream "calibration" (the
        calibration pulse of a temperature recipe)."""
        flyer = self.builder.flyer(self.supply_driver, self.pyrometer_driver, self.digitizer_driver, name="calibration")
        self._flyers.append(flyer)
        return flyer

    @functools.cached_property
    def closed_loop_flyer(self):
        """A flyer that holds a temperature profile on the pyrometer (recording into "pulse")."""
        flyer = self.builder.closed_loop(self.supply_driver, self.pyrometer_driver, self.digitizer_driver,
                                         protection=self.flyer.check_protection)
        self._flyers.append(flyer)
        return flyer

    def detectors(self):
        return [self.pyrometer, self.supply, self.digitizer]

    # --- as a library line (quenchlab.library.runner) ---------------------------------------
    def prepare(self) -> None:
        """Nothing to start before the first sample of an FJH library."""

    @property
    def supply_metadata(self) -> dict[str, str]:
        """Which supply fires the pulses and what times them, for each run's start document."""
        return {"supply_model": self.config.instruments.supply.model, "pulse_timing": self.builder.timing,
                "instruments": self.connections}

    def place(self, shot, data_dir, library, attempt: int) -> dict:
        """Nothing to place: an FJH sample sits between the electrodes."""
        return {}

    def plan(self, shot, md: dict):
        """One library row: its recipe's pulses, recorded as one run."""
        md = {**md, **self.supply_metadata, "recipe": shot.recipe_text,
              "recipe_file": str(shot.recipe_path)}  # the text, not the row's name
        return shot.plan(self, md)

    def safe(self) -> list[str]:
        """Supply output off (a capacitor bank dumped), confirmed by reading it back; returns
        what went wrong."""
        if not hasattr(self, "supply_driver"):
            return []
        for flyer in getattr(self, "_flyers", ()):  # their host threads stop commanding the output
            flyer.cancel()
        return self.builder.safe(self.supply_driver)

    def _readbacks(self) -> dict:
        if not hasattr(self, "supply_driver"):
            return {}
        return self.builder.safe_readbacks(self.supply_driver)

    def interlock(self) -> Interlock | None:
        """Trips (the supply made safe) above limits.max_temperature or on an over-range pyrometer."""
        ceiling = self.config.limits.max_temperature
        if ceiling is None:
            return None

        def read():
            reading = self.pyrometer_driver.temperature()
            return {"temperature": math.inf if reading.flag == "over range" else reading.kelvin}
        return Interlock(read, [Watch("temperature", high=ceiling, units="K")], self.clock, self.safe)
