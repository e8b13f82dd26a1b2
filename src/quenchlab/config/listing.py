"""Every instrument of a reactor config, listed once (each config's `listed()`), for whatever
goes through them all: a reactor's addresses and the identities it records, `quenchlab check`,
whether a config names only twins."""
from typing import NamedTuple

from quenchlab.config.addresses import TWIN


class Listed(NamedTuple):
    name: str  # as `check` and the records name it; a nested entry's path ("gases.sheath")
    model: str
    entry: object  # its config entry: its address, and what its driver is opened with (a supply's
    # builder reads the whole config)


def only_twins(listed: list[Listed]) -> bool:
    """True when every instrument's address is a twin."""
    return all(instrument.entry.address == TWIN for instrument in listed)
