"""One builder per supply model: how FJHReactor opens the configured supply, makes it safe,
programs its protection and reads it back, and which ophyd device and pulse flyer drive it.

| model            | pulse timing        | flyer                                  |
| keysight-n6900   | hardware list       | devices/flyers/fjh_pulse.py PulseFlyer        |
| tdk-genesys      | host-timed          | devices/flyers/host_timed_pulse.py            |
| capbank          | capacitor discharge | devices/flyers/capbank_shot.py                |
"""
from quenchlab.config.fjh import FJHConfig
from quenchlab.devices.capbank_device import CapBankSupply
from quenchlab.devices.capbank_driver import CapBank
from quenchlab.devices.flyers.capbank_shot import CapBankShot
from quenchlab.devices.flyers.closed_loop import ClosedLoopPulse
from quenchlab.devices.flyers.fjh_pulse import PulseFlyer
from quenchlab.devices.flyers.host_timed_pulse import HostTimedPulse
from quenchlab.devices.genesys_device import GenesysSupply
from quenchlab.devices.genesys_driver import Genesys
from quenchlab.devices.n6900_device import N6900Supply
from quenchlab.devices.n6900_driver import N6900
from quenchlab.errors import InstrumentError

Readback = tuple[str, float, float]  # (setting, as read back, as configured)


class SupplyBuilder:
    timing = ""  # what times the pulse, as the record says it
    safe_state = "the supply output is off"  # what `safe` brings about, as messages say it

    def __init__(self, config: FJHConfig):
        self.config, self.settings = config, config.instruments.supply

    def capture(self, name: str) -> dict:
        """The flyer's name (its stream's), digitizer and analysis settings, from the config."""
        d = self.config.instruments.digitizer
        return {"channel": d.channel, "shunt": d.shunt, "record": d.record, "pre_trigger": d.pre_trigger,
                "points": d.points, "analysis": self.config.analysis.settings(), "name": name}

    def refusals(self, driver) -> list[tuple[str, str, str]]:
        """(setting, as configured, as the instrument has it) for each fact of the instrument that
        the config contradicts and a run cannot change: a run refuses to start on any."""
        return []

    def safe(self, driver) -> list[str]:
        """Output off, confirmed by reading it back; returns what went wrong."""
        try:
            driver.output_off()
        except Exception as error:  # reported by the caller
            return [str(error)]
        return []

    def safe_readbacks(self, driver) -> dict:
        """name -> a function reading it, for the safe state's record (Assembly.safe_readback)."""
        return {"supply_output": lambda: "on" if driver.output_enabled() else "off",
                "supply_current": lambda: f"{driver.measure()[1]:g} A"}


    def closed_loop(self, driver, pyrometer, digitizer, protection) -> ClosedLoopPulse:
        """The flyer that holds a temperature profile on the pyrometer, checking `protection`
        (the pulse flyer's) before it switches on."""
        limits = self.config.limits
        return ClosedLoopPulse(driver, pyrometer, digitizer, max_current=limits.max_current,
                               max_energy=limits.max_energy_per_pulse, max_power=limits.max_power,
                               protection=protection, ready=self.ready_for_settings(driver), **self.capture("pulse"))

    def ready_for_settings(self, driver):
        """What readies the supply's output to follow settings sent one by one (nothing here)."""
        return lambda: None


class N6900Builder(SupplyBuilder):
    """Keysight N6900/N7900: OVP, OCP and the I/O watchdog; the pulse is the supply's LIST."""

    timing = "hardware list"

    def open(self, address: str) -> N6900:
        return N6900(address, timeout=self.settings.timeout, visa_library=self.config.visa_library)

    def prepare(self, driver: N6900) -> None:
        s = self.settings
        driver.output_off()
        driver.configure_protection(s.ovp, s.ocp, s.protection_delay, s.watchdog)

    def readbacks(self, driver: N6900) -> list[Readback]:
        s, settings = self.settings, driver.protection_settings()
        expected = {"ovp": s.ovp, "ocp": float(s.ocp), "watchdog": 1.0, "watchdog_delay": float(round(s.watchdog))}
        return [(k, settings[k], v) for k, v in expected.items()]

    def device(self, driver: N6900) -> N6900Supply:
        return N6900Supply(driver, name="supply")

    def flyer(self, driver: N6900, pyrometer, digitizer, name: str = "pulse") -> PulseFlyer:
        return PulseFlyer(driver, pyrometer, digitizer, supply_interval=self.settings.digitizer_interval,
                          segments=self.config.instruments.digitizer.segments, **self.capture(name))

    def ready_for_settings(self, driver: N6900):
        return driver.fixed_output

    def safe(self, driver: N6900) -> list[str]:
        """Output off (read back by N6900.output_off), and no current measured."""
        problems = super().safe(driver)
        if not problems and (amps := driver.measure()[1]) != 0.0:
            problems.append(f"the supply output reads back as off but measures {amps:g} A")
        return problems


class GenesysBuilder(SupplyBuilder):
    """TDK-Lambda Genesys ("Genesys 3300W Technical Manual" ch. 5 and 7.7): remote mode, output
    off, safe-start (AST OFF), OVP, UVL, foldback, fault events; pulses timed by the host.
    UVL and PV are lowered first so that OVP (at least 105 % of PV, E04) and UVL (at most PV,
    E06) can be set whatever the unit held before."""

    timing = "host-timed"

    def open(self, address: str) -> Genesys:
        s = self.settings
        return Genesys(address, unit=s.unit, baudrate=s.baudrate, timeout=s.timeout)

    def prepare(self, driver: Genesys) -> None:
        s = self.settings
        driver.set_remote("REM")
        driver.output_off()
        driver.set_auto_restart(False)
        driver.set_uvl(0.0)
        driver.set_voltage(0.0)
        driver.set_current(0.0)
        driver.set_ovp(s.ovp)
        driver.set_voltage(s.uvl)
        driver.set_uvl(s.uvl)
        driver.set_foldback(s.foldback)
        driver.set_foldback_delay(s.foldback_delay)
        driver.enable_fault_events()
        driver.clear()

    def readbacks(self, driver: Genesys) -> list[Readback]:
        s, settings = self.settings, driver.protection_settings()
        expected = {"ovp": s.ovp, "uvl": s.uvl, "foldback": float(s.foldback), "foldback_delay": s.foldback_delay}
        return ([(k, settings[k], v) for k, v in expected.items()]
                + [("auto_restart", float(driver.auto_restart()), 0.0)])

    def device(self, driver: Genesys) -> GenesysSupply:
        return GenesysSupply(driver, name="supply")

    def flyer(self, driver: Genesys, pyrometer, digitizer, name: str = "pulse") -> HostTimedPulse:
        return HostTimedPulse(driver, pyrometer, digitizer, ovp=self.settings.ovp, uvl=self.settings.uvl,
                              **self.capture(name))


class CapBankBuilder(SupplyBuilder):
    """A capacitor bank's controller (docs/capbank-protocol.md): the bank dumped, its capacitance
    (CAP?), highest voltage (VMAX?) and the charge and dump figures the config gives (ICHG?,
    VSAFE?, RDUMP?) checked against the config, the watchdog set."""

    timing = "capacitor discharge"
    safe_state = "the bank is dumped"

    def open(self, address: str) -> CapBank:
        s = self.settings
        return CapBank(address, name="supply", baudrate=s.baudrate, timeout=s.timeout)

    def prepare(self, driver: CapBank) -> None:
        driver.dump()
        if refused := self.refusals(driver):
            setting, configured, reported = refused[0]
            raise InstrumentError(driver.name, driver.address, BANK_QUERIES[setting],
                                  f"the controller reports {reported}, not the "
                                  f"{configured} of instruments.supply.{setting}: the shots would be misjudged "
                                  "(pre-flight forecasts them from the config); correct the config (or the bank)")
        driver.set_watchdog(round(self.settings.watchdog))

    def refusals(self, driver: CapBank) -> list[tuple[str, str, str]]:
        """The bank's capacitance (CAP?), highest voltage (VMAX?), charge current (ICHG?), safe
        voltage (VSAFE?) and dump resistance (RDUMP?), where the config gives them."""
        s, bank = self.settings, driver.rating()
        found = []
        if abs(bank["capacitance"] - s.capacitance) > 1e-6 * s.capacitance:
            found.append(("capacitance", f"{s.capacitance:g} F", f"{bank['capacitance']:g} F"))
        if s.max_charge_voltage > bank["max_voltage"]:
            found.append(("max_charge_voltage", f"{s.max_charge_voltage:g} V", f"at most {bank['max_voltage']:g} V"))
        for field, figure in (("charge_current", "A"), ("safe_voltage", "V"), ("dump_resistance", "ohm")):
            configured = getattr(s, field)
            if configured is not None and abs(bank[field] - configured) > 0.01 * configured:
                found.append((field, f"{configured:g} {figure}", f"{bank[field]:g} {figure}"))
        return found

    def readbacks(self, driver: CapBank) -> list[Readback]:
        return [("watchdog", driver.watchdog(), self.settings.watchdog)]

    def device(self, driver: CapBank) -> CapBankSupply:
        return CapBankSupply(driver, name="supply")

    def flyer(self, driver: CapBank, pyrometer, digitizer, name: str = "pulse") -> CapBankShot:
        d = self.config.instruments.digitizer
        return CapBankShot(driver, pyrometer, digitizer, current_channel=d.current_channel,
                           sensitivity=d.current_sensitivity, max_current=self.config.limits.max_current,
                           **self.capture(name))

    def safe_readbacks(self, driver: CapBank) -> dict:
        return {"bank": driver.state, "bank_voltage": lambda: f"{driver.bank_voltage():g} V"}

    def safe(self, driver: CapBank) -> list[str]:
        """DUMP, confirmed by the state it leaves the controller in."""
        try:
            driver.dump()
            state = driver.state()
        except Exception as error:  # reported by the caller
            return [str(error)]
        return [] if state in ("DUMPING", "IDLE", "FAULT") else [f"the bank reads {state} after DUMP"]


BANK_QUERIES = {"capacitance": "CAP?", "max_charge_voltage": "VMAX?", "charge_current": "ICHG?",
                "safe_voltage": "VSAFE?", "dump_resistance": "RDUMP?"}  # what reads each
BUILDERS = {"keysight-n6900": N6900Builder, "tdk-genesys": GenesysBuilder, "capbank": CapBankBuilder}
