"""`quenchlab check CONFIG`: before the first pulse, is every instrument there, the model the
config names, and set as a run needs it? One row per instrument; queries only, nothing is
programmed or switched on (check_instruments.py reads each kind)."""
import contextlib
import statistics
import time
from dataclasses import dataclass, field

from rich.table import Table

from quenchlab.config.addresses import TWIN, is_gateway
from quenchlab.errors import ConfigError, QuenchlabError
from quenchlab.reactor.check_instruments import LEAVES, READERS, REFUSES, Difference


@dataclass
class Checked:
    """What the check found on one instrument."""

    name: str
    model: str
    address: str
    identity: str = ""
    round_trip: float | None = None  # s, the median of a few of its cheapest queries
    differences: list[Difference] = field(default_factory=list)
    problem: str = ""  # it did not answer, or is another model

    @property
    def status(self) -> str:
        if self.problem:
            return self.problem.split(":")[0]
        return "a run refuses" if any(d.run == REFUSES for d in self.differences) else "OK"


def check_one(name: str, model: str, entry, address: str, library: str = "@py") -> Checked:
    """Open (LAN ones with the VISA `library`), identify, read back and close one instrument;
    whatever goes wrong is its problem."""
    found, reader, driver = Checked(name, model, address), READERS[model], None
    try:
        driver = reader.open(entry, address, name, library)
        found.identity = reader.identify(driver)
        if not reader.model_matches(found.identity):
            found.problem = f"another model: {model} expected"
            return found
        found.differences = reader.differences(driver, entry)
        if is_gateway(address):
            found.differences.append(Difference("serial line", "the config's baud rate (and the model's framing)",
                                                "set on the gateway: socket:// cannot set it", LEAVES))
        times = []
        for _ in range(3):
            start = time.perf_counter()
            reader.ping(driver)
            times.append(time.perf_counter() - start)
        found.round_trip = statistics.median(times)
    except Exception as error:  # noqa: BLE001 - another device's odd reply included: the instrument's problem
        found.problem = f"no answer: {error}" if isinstance(error, (QuenchlabError, OSError)) else \
            f"no answer: {type(error).__name__}: {error} (another device?)"
    finally:
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.close()
    return found


def check(config, addresses: dict[str, str] | None = None) -> list[Checked]:
    """Every instrument of `config`, at the config's addresses or at `addresses` (its twins')."""
    if not addresses and any(i.entry.address == TWIN for i in config.listed()):
        raise ConfigError("an instrument's address is 'twin': check with --sim, or fill in its real address")
    library = getattr(config, "visa_library", "@py")
    return [check_one(i.name, i.model, config if i.name == "supply" else i.entry,  # a supply's builder reads it all
                      (addresses or {}).get(i.name) or i.entry.address, library) for i in config.listed()]


def exit_code(results: list[Checked]) -> int:
    """2: an instrument missing or of another model; 1: a run would refuse; 0: ready."""
    if any(found.problem for found in results):
        return 2
    return 1 if any(found.status == "a run refuses" for found in results) else 0


def table(results: list[Checked]) -> Table:
    rows = Table(title="quenchlab check", show_lines=True)
    for column in ("instrument", "address", "identity", "round trip", "status", "differs from the config"):
        rows.add_column(column, overflow="fold")
    for found in results:
        differs = "\n".join(f"{d.setting}: {d.instrument}, config {d.configured} ({d.run})" for d in found.differences)
        trip = "" if found.round_trip is None else f"{found.round_trip * 1000:.1f} ms"
        rows.add_row(f"{found.name}\n{found.model}", found.address, found.identity, trip, found.status,
                     found.problem or differs)
    return rows
