"""Driver for IMPAC pyrometers (IGA 6/23, ISR 6, IGA 320 ...) speaking the UPP protocol.

From the "IGA 6/23 Advanced" operating manual, section "Interface / protocol": serial 8E1,
a command is a two-digit bus address, two lower-case letters, an optional parameter and CR;
queries answer the value + CR, settings "ok", unknown commands "no", and malformed
messages nothing at all (the host resends). Temperatures are five digits in 0.1 degC;
88880 means over range and 77770 under range / not ready.
"""
import math
from dataclasses import dataclass

import serial

from quenchlab.errors import InstrumentError

from .transport import SerialTransport, Steps

KELVIN = 273.15
SENTINELS = {"88880": "over range", "77770": "under range"}
RESPONSE_TIMES = (0.0, 1e-3, 3e-3, 5e-3, 10e-3, 50e-3, 0.25, 1.0, 3.0, 10.0)  # t90 codes 0-9 (IGA 6/23)


@dataclass(frozen=True)
class Reading:
    """A temperature in kelvin; NaN with a `flag` when the pyrometer is out of range."""

    kelvin: float
    flag: str = ""

    @property
    def valid(self) -> bool:
        return not self.flag


def parse_temperature(reply: str) -> Reading:
    """Five digits in 0.1 degC, or an over/under-range sentinel."""
    if reply in SENTINELS:
        return Reading(math.nan, SENTINELS[reply])
    if len(reply) != 5 or not reply.isdigit():
        raise ValueError(f"not a temperature: {reply!r}")
    return Reading(int(reply) / 10 + KELVIN)


class Impac:
    """One pyrometer at a bus address on a serial line."""

    def __init__(self, address: str, bus_address: int = 0, baudrate: int = 19200,
                 name: str = "pyrometer", timeout: float = 0.2, retries: int = 3):
        self.io = SerialTransport(name, address, baudrate=baudrate, parity=serial.PARITY_EVEN,
                                  timeout=timeout, retries=retries)
        self.name, self.address, self.bus = name, address, f"{bus_address:02d}"

    def _query(self, command: str) -> str:
        return self.io.run(self._query_steps(command))

    def _query_steps(self, command: str) -> Steps:
        reply = yield from self.io.query_steps(self.bus + command)
        if reply == "no":
            raise InstrumentError(self.name, self.address, self.bus + command, "answered 'no' (unknown command)")
        return reply

    def _set(self, command: str) -> None:
        reply = self._query(command)
        if reply != "ok":
            raise InstrumentError(self.name, self.address, self.bus + command, f"answered {reply!r}, not 'ok'")

    def identify(self) -> str:
        return f"{self._query('na')} s/n {self._query('sn')}"

    def temperature(self) -> Reading:
        return self.io.run(self.temperature_steps())

    def temperature_steps(self) -> Steps:
        reply = yield from self._query_steps("ms")
        try:
            return parse_temperature(reply)
        except ValueError:
            raise InstrumentError(self.name, self.address, self.bus + "ms", f"garbled reply {reply!r}") from None

    def emissivity(self) -> float:
        return int(self._query("em")) / 1000

    def set_emissivity(self, value: float) -> None:
        if not 0.05 <= value <= 1.0:
            raise ValueError(f"emissivity must be within 0.05-1.00, got {value}")
        self._set(f"em{round(value * 1000):04d}")

    def response_time(self) -> float:
        return RESPONSE_TIMES[int(self._query("ez"))]

    def set_response_time(self, seconds: float) -> None:
        """t90 must be one of the unit's steps (0 = fastest, 1 ms, 3 ms ... 10 s)."""
        matches = [i for i, t in enumerate(RESPONSE_TIMES) if math.isclose(t, seconds, abs_tol=1e-9)]
        if not matches:
            raise ValueError(f"response time {seconds} s is not one of {RESPONSE_TIMES}")
        self._set(f"ez{matches[0]}")

    def measuring_range(self) -> tuple[float, float]:
        """(begin, end) of the sub range in kelvin, which the analog output spans: `me`
        answers XXXXYYYY, begin and end in degC as 4 hex digits each ("Data format UPP")."""
        reply = self._query("me")
        if len(reply) != 8:
            raise InstrumentError(self.name, self.address, self.bus + "me", f"unexpected reply {reply!r}")
        return int(reply[:4], 16) + KELVIN, int(reply[4:], 16) + KELVIN

    def set_measuring_range(self, begin: float, end: float) -> None:
        """m1XXXXYYYY, the sub range in degC (hex), then m2, which confirms it: an IGA 6/23
        Advanced keeps the old range until then (manual p. 38; quenchlab sent m1 alone before
        its twin was corrected)."""
        self._set(f"m1{round(begin - KELVIN):04X}{round(end - KELVIN):04X}")
        self._set("m2")

    def analog_live_zero(self) -> bool:
        """True for a 4-20 mA analog output, False for 0-20 mA."""
        return self._query("as") == "1"

    def set_analog_live_zero(self, live_zero: bool) -> None:
        self._set(f"as{int(live_zero)}")

    def status(self) -> str:
        return self._query("fs")

    def close(self) -> None:
        self.io.close()
