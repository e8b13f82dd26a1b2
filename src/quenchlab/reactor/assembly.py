"""What every reactor assembly shares: drivers opened in order and closed in reverse, each
even if another fails, after the line is brought to its safe state; the twins stopped last; what
each instrument said it is at connect, for every record."""
from quenchlab.config.addresses import TWIN, address_kind
from quenchlab.errors import ConfigError
from quenchlab.reactor.check_instruments import READERS


class Assembly:
    config: object  # the reactor config, FJH or aerosol

    def __init__(self):
        self._drivers: list = []
        self._named: dict = {}  # instrument name (as `quenchlab check` names it) -> its driver
        self._twins: list = []  # twin groups or twin processes to stop on close
        self.connections: dict[str, dict[str, str]] = {}

    def _open(self, driver, name: str):
        self._drivers.append(driver)
        self._named[name] = driver
        return driver

    def _connect_all(self, addresses: dict[str, str], simulated: bool) -> None:
        """Run `_connect(addresses)`; on any failure close what was opened and re-raise."""
        if not simulated and TWIN in addresses.values():
            raise ConfigError("an instrument's address is 'twin': run with --sim, or fill in its real address")
        try:
            self._connect(addresses)
            self._identify()
        except BaseException:
            self.close()
            raise

    def _identify(self) -> None:
        """Each instrument's model, identity (as it answers it), address and how that is reached
        ("gases-sheath" for the config's gases.sheath)."""
        for name, model, _ in self.config.listed():
            driver = self._named[name]
            key = name.replace(".", "-")  # a start document's keys have no dots
            self.connections[key] = {"model": model, "identity": READERS[model].identify(driver),
                                     "address": driver.address, "address_kind": address_kind(driver.address)}

    def _connect(self, addresses: dict[str, str]) -> None:
        raise NotImplementedError

    def link_events(self) -> list:
        """The link faults every driver's transport rode through since the last call, oldest
        first (devices.transport.LinkEvent)."""
        transports = {id(driver.io): driver.io for driver in self._drivers if hasattr(driver, "io")}
        return sorted((event for io in transports.values() for event in io.take_events()), key=lambda e: e.time)

    def safe(self) -> list[str]:
        """Bring the line to its safe state; returns what went wrong."""
        return []

    def safe_readback(self) -> dict[str, str | float]:
        """The safe state as the instruments report it now (each quantity's reading, or why
        it could not be read), for the journal; empty before the line is assembled."""
        readback = {}
        for name, read in self._readbacks().items():
            try:
                readback[name] = read()
            except Exception as error:  # the others are still read
                readback[name] = f"unreadable ({error})"
        return readback

    def _readbacks(self) -> dict:
        """name -> a function reading it, for safe_readback."""
        return {}

    def close(self) -> None:
        if self._drivers:
            self.safe()
        for driver in reversed(self._drivers):
            try:
                driver.close()
            except Exception:  # closing must go on for the others
                pass
        self._drivers.clear()
        for twins in self._twins:
            twins.close()
        self._twins.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
