"""The programs a supply executes, built by recipes and run by the devices: a hardware-timed list
(an N6900's LIST, a Genesys's host-timed steps) and a capacitor-bank shot."""
from dataclasses import dataclass

LEVEL_UNITS = {"current": "A", "voltage": "V"}  # a list's levels, by the quantity it steps


@dataclass(frozen=True)
class ListProgram:
    """A hardware-timed output list: one level and one dwell per step."""

    levels: tuple[float, ...]
    dwells: tuple[float, ...]
    control: str = "current"  # the quantity the list steps; the other is the fixed limit
    limit: float = 0.0  # the other quantity's setting while the list runs

    @property
    def duration(self) -> float:
        return sum(self.dwells)


@dataclass(frozen=True)
class Shot:
    """Charge a bank of `capacitance` F to `voltage` V, then close the switch `milliseconds`."""

    voltage: float
    milliseconds: int
    capacitance: float

    @property
    def duration(self) -> float:
        return self.milliseconds / 1e3

    @property
    def energy(self) -> float:
        """J the charged bank holds: 1/2 C V^2."""
        return 0.5 * self.capacitance * self.voltage**2
