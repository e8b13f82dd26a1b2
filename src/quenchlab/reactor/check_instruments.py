"""What `quenchlab check` reads from each kind of instrument: its identity, and the settings a run
would program (or needs) against the config. Queries only: nothing here sets or switches on.

A reader opens the instrument as a run does (from its config entry; the whole config for the
supply, whose builder knows its settings), names it from what it answers, and compares what it
holds with the config. An NE-1000 is opened as a run opens it, which turns its safe mode off
(SAF0): how it is spoken to, not what it does."""
import re
from collections.abc import Callable
from dataclasses import dataclass

from quenchlab.devices.alicat_driver import DIFFERENTIAL_PRESSURE, AlicatUnit
from quenchlab.devices.impac_driver import Impac
from quenchlab.devices.infiniivision_driver import InfiniiVision
from quenchlab.devices.ne1000_driver import NE1000
from quenchlab.devices.ssi_driver import SsiPump
from quenchlab.devices.vici_driver import ViciValve
from quenchlab.devices.zaber_driver import ZaberStage
from quenchlab.reactor.supplies import BUILDERS

PROGRAMS, REFUSES, LEAVES = "a run programs it", "a run refuses", "a run leaves it"


@dataclass(frozen=True)
class Difference:
    setting: str
    configured: str
    instrument: str
    run: str  # PROGRAMS, REFUSES or LEAVES


@dataclass(frozen=True)
class Reader:
    """How to open one model, what its identity must match, and what to compare."""

    open: Callable  # (entry, address, name, VISA library) -> driver
    identity: str  # a regular expression the identity matches on this model
    differences: Callable  # (driver, entry) -> [Difference]
    identify: Callable = lambda driver: driver.identify()
    ping: Callable = lambda driver: driver.identify()  # one of its cheapest queries: the link's round trip

    def model_matches(self, identity: str) -> bool:
        return re.search(self.identity, identity) is not None


def _differ(setting: str, configured, actual, run: str = PROGRAMS, tolerance: float = 1e-6) -> list[Difference]:
    """[] if `actual` is `configured` (numbers within `tolerance`, relative)."""
    if isinstance(configured, float) or isinstance(actual, float):
        same = abs(float(actual) - float(configured)) <= tolerance * max(1.0, abs(float(configured)))
    else:
        same = actual == configured
    return [] if same else [Difference(setting, f"{configured:g}" if isinstance(configured, float) else str(configured),
                                       f"{actual:g}" if isinstance(actual, float) else str(actual), run)]


def _supply(config, address: str, name: str, library: str):
    return BUILDERS[config.instruments.supply.model](config).open(address)


def _supply_differences(driver, config) -> list[Difference]:
    builder = BUILDERS[config.instruments.supply.model](config)
    found = [d for setting, actual, wanted in builder.readbacks(driver) for d in _differ(setting, wanted, actual)]
    return found + [Difference(setting, wanted, actual, REFUSES)
                    for setting, wanted, actual in builder.refusals(driver)]


def _pyrometer_differences(driver: Impac, entry) -> list[Difference]:
    begin, end = driver.measuring_range()
    return (_differ("emissivity", entry.emissivity, driver.emissivity())
            + _differ("response_time", entry.response_time, driver.response_time())
            + _differ("range_begin", round(entry.range_begin - 273.15) + 273.15, begin)
            + _differ("range_end", round(entry.range_end - 273.15) + 273.15, end)
            + _differ("analog_output", entry.analog_output, "4-20 mA" if driver.analog_live_zero() else "0-20 mA"))


def _digitizer_differences(driver: InfiniiVision, entry) -> list[Difference]:
    if not entry.segmented_memory:
        return []
    return _differ("segmented_memory", True, "SGM" in driver.options().split(","), REFUSES)


def _pump_differences(driver: SsiPump, entry) -> list[Difference]:
    setup = driver.setup()
    return (_differ("head", "macro" if entry.max_flow > 10 else "standard", setup.head, LEAVES)
            + _differ("max_pressure", round(entry.max_pressure), setup.upper)
            + _differ("min_pressure", round(entry.min_pressure), setup.lower)
            + _differ("running", False, setup.running))


def _collector_differences(driver: ZaberStage, entry) -> list[Difference]:
    return [Difference(f"axis {axis} reference", "homed", "none (WR)", PROGRAMS)
            for axis in (1, 2) if "WR" in driver.warnings(axis)]


def _alicat(entry, address: str, name: str, library: str) -> AlicatUnit:
    """A flow controller or a gauge on the gas bus, at its unit ID."""
    return AlicatUnit(address, entry.unit, name=name)


def _gas_differences(driver: AlicatUnit, entry) -> list[Difference]:
    return (_differ("gas", entry.gas, driver.poll().gas)
            + _differ("full_scale", entry.full_scale, driver.flow_full_scale(), LEAVES, tolerance=0.01))


READERS = {
    **{model: Reader(_supply, identity, _supply_differences) for model, identity in
       (("keysight-n6900", r"^[^,]+,N[67]9\d\dA,"), ("tdk-genesys", r"^LAMBDA,GEN"), ("capbank", r"."))},
    "impac-upp": Reader(lambda e, address, name, library: Impac(address, e.bus_address, e.baudrate, name=name),
                        r"^(IGA|IS)", _pyrometer_differences, ping=lambda driver: driver.emissivity()),
    "keysight-infiniivision": Reader(
        lambda e, address, name, library: InfiniiVision(address, name=name, timeout=e.timeout, visa_library=library),
        r"^[^,]+,(DSO|MSO)-?X", _digitizer_differences),
    "vici-universal": Reader(lambda e, address, name, library: ViciValve(address, name=name, baudrate=e.baudrate), r".",
                             lambda driver, e: _differ("positions", e.positions, driver.positions(), REFUSES),
                             ping=lambda driver: driver.position()),
    "ssi-hplc": Reader(lambda e, address, name, library: SsiPump(address, name=name, baudrate=e.baudrate,
                                                                 head_max_flow=e.max_flow),
                       r"SR3O|Version", _pump_differences, ping=lambda driver: driver.pressure()),
    "ne1000": Reader(lambda e, address, name, library: NE1000(address, e.pump_address, name=name, baudrate=e.baudrate,
                                                              safe_mode=0),
                     r"NE-?1000",
                     lambda driver, e: _differ("diameter", e.diameter, driver.diameter(),
                                               tolerance=0.01 / max(e.diameter, 1.0)),  # a run's 0.01 mm
                     identify=lambda driver: driver.version(), ping=lambda driver: driver.status()),
    "zaber-ascii": Reader(lambda e, address, name, library: ZaberStage(address, device=e.device, baudrate=e.baudrate,
                                                                       name=name),
                          r"^device \d+ firmware \d", _collector_differences,
                          identify=lambda driver: f"device {driver.get('deviceid')} firmware {driver.get('version')}",
                          ping=lambda driver: driver.warnings()),
    "alicat-mc": Reader(_alicat, r".", _gas_differences,
                        identify=lambda driver: driver.firmware(), ping=lambda driver: driver.poll()),
    "alicat-p": Reader(_alicat, r".",
                       lambda driver, e: _differ("pressure unit", "kPa", driver.full_scale(DIFFERENTIAL_PRESSURE).unit,
                                                 REFUSES),
                       identify=lambda driver: driver.firmware(), ping=lambda driver: driver.poll()),
}
