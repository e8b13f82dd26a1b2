"""Errors quenchlab reports to its users: one paragraph, no traceback."""


class QuenchlabError(Exception):
    """A problem the user can act on (bad input, an instrument that does not answer)."""


class ConfigError(QuenchlabError):
    """A config, recipe or library file is invalid; raised before any instrument is touched."""


class LimitError(ConfigError):
    """A program would exceed a configured limit; nothing has been sent."""


class InstrumentError(QuenchlabError):
    """An instrument did not answer, or answered with an error."""

    def __init__(self, instrument: str, address: str, command: str, problem: str):
        self.instrument, self.address, self.command = instrument, address, command
        super().__init__(f"{instrument} at {address}: {problem} (command {command!r})")
