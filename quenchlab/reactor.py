"""A flash Joule heating reactor assembled from its config: drivers, devices and the flyer.

With `simulate=True` the config's twins are started and the very same drivers connect to
them instead of the instruments.
"""
import math

from quenchlab.devices.fjh_pulse import PulseFlyer
from quenchlab.devices.impac_device import ImpacPyrometer
from quenchlab.devices.impac_driver import Impac
from quenchlab.devices.infiniivision_device import InfiniiVisionDigitizer
from quenchlab.devices.infiniivision_driver import InfiniiVision
from quenchlab.devices.n6900_device import N6900Supply
from quenchlab.devices.n6900_driver import N6900

from quenchlab.plans.pulses import pulse_train

from .assembly import Assembly
from .clock import ReactorClock
from .interlock import Interlock, Watch
from .config import FJHConfig
from .errors import InstrumentError


class FJHReactor(Assembly):
    """Connects to every instrument, programs its settings from the config and reads them back."""

    def __init__(self, config: FJHConfig, *, simulate: bool = False):
        super().__init__()
        self.config = config
        self.clock = ReactorClock()  # an FJH rig always runs at speed 1; shared with its twins
        self.twins = None
        addresses = {name: getattr(config.instruments, name).address for name in ("supply", "pyrometer", "digitizer")}
        if simulate or config.simulated:
            from quenchlab.sim.fjh_twins import FJHTwins
            self.twins = FJHTwins(config, self.clock)
            self._twins.append(self.twins)
            addresses = self.twins.addresses
        self._connect_all(addresses, self.twins is not None)

    def _connect(self, addresses: dict[str, str]) -> None:
        c = self.config.instruments
        self.supply_driver = self._open(N6900(addresses["supply"], timeout=c.supply.timeout))
        self.supply_driver.output_off()
        self.supply_driver.configure_protection(c.supply.ovp, c.supply.ocp, c.supply.protection_delay, c.supply.watchdog)
        self.pyrometer_driver = self._open(Impac(addresses["pyrometer"], c.pyrometer.bus_address, c.pyrometer.baudrate))
        self.pyrometer_driver.set_emissivity(c.pyrometer.emissivity)
        self.pyrometer_driver.set_response_time(c.pyrometer.response_time)
        self.pyrometer_driver.set_measuring_range(c.pyrometer.range_begin, c.pyrometer.range_end)
        self.pyrometer_driver.set_analog_live_zero(c.pyrometer.analog_output == "4-20 mA")
        self.digitizer_driver = self._open(InfiniiVision(addresses["digitizer"], timeout=c.digitizer.timeout))
        # 0-20 mA through the shunt spans 0..20 mA * R; give the channel 10 % headroom
        full_scale = 0.020 * c.digitizer.shunt * 1.1
        self.digitizer_driver.configure_channel(c.digitizer.channel, full_scale, full_scale / 2)
        self._verify()
        self.supply = N6900Supply(self.supply_driver, name="supply")
        self.pyrometer = ImpacPyrometer(self.pyrometer_driver, name="pyrometer")
        self.digitizer = InfiniiVisionDigitizer(self.digitizer_driver, name="digitizer")
        self.flyer = PulseFlyer(
            self.supply_driver, self.pyrometer_driver, self.digitizer_driver,
            channel=c.digitizer.channel, shunt=c.digitizer.shunt, record=c.digitizer.record,
            pre_trigger=c.digitizer.pre_trigger, points=c.digitizer.points,
            supply_interval=c.supply.digitizer_interval, analysis=self.config.analysis.settings())

    def _verify(self) -> None:
        """Read back what was programmed; a mismatch refuses to start."""
        c = self.config.instruments
        settings = self.supply_driver.protection_settings()
        expected = {"ovp": c.supply.ovp, "ocp": float(c.supply.ocp), "watchdog": 1.0,
                    "watchdog_delay": float(round(c.supply.watchdog))}
        begin, end = self.pyrometer_driver.measuring_range()
        checks = [("supply", k, settings[k], v) for k, v in expected.items()]
        checks += [("pyrometer", "emissivity", self.pyrometer_driver.emissivity(), c.pyrometer.emissivity),
                   ("pyrometer", "range_begin", begin, round(c.pyrometer.range_begin - 273.15) + 273.15),
                   ("pyrometer", "range_end", end, round(c.pyrometer.range_end - 273.15) + 273.15)]
        for instrument, field, actual, wanted in checks:
            if abs(actual - wanted) > 1e-6 * max(1.0, abs(wanted)):
                driver = getattr(self, f"{instrument}_driver")
                raise InstrumentError(instrument, driver.address, field,
                                      f"reads back {actual:g}, not the configured {wanted:g}")

    def detectors(self):
        return [self.pyrometer, self.supply, self.digitizer]

    # --- as a library line (quenchlab.library_run) ---------------------------------------
    def prepare(self) -> None:
        """Nothing to start before the first sample of an FJH library."""

    def plan(self, shot, md: dict):
        """One library row: its recipe's pulses, recorded as one run."""
        md = {**md, "recipe": shot.recipe_text, "recipe_file": str(shot.recipe_path)}  # the text, not the row's name
        return pulse_train(self.flyer, shot.program, shot.pulses, shot.off_time, self.detectors(), md)

    def safe(self) -> list[str]:
        """Supply output off, confirmed by reading it back; returns what went wrong."""
        if not hasattr(self, "supply_driver"):
            return []
        try:
            self.supply_driver.output_off()
            if self.supply_driver.io.query("OUTP?") != "0" or self.supply_driver.measure()[1] != 0.0:
                return ["the supply output does not read back as off"]
        except Exception as error:  # reported by the library runner
            return [str(error)]
        return []

    def interlock(self) -> Interlock | None:
        """Trips (output off) above limits.max_temperature or on an over-range pyrometer."""
        ceiling = self.config.limits.max_temperature
        if ceiling is None:
            return None

        def read():
            reading = self.pyrometer_driver.temperature()
            return {"temperature": math.inf if reading.flag == "over range" else reading.kelvin}
        return Interlock(read, [Watch("temperature", high=ceiling, units="K")], self.clock, self.safe)
