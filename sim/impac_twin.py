"""Twin of an IMPAC IGA 6/23 Advanced pyrometer (one-colour, InGaAs, ~1.6 um), UPP protocol.

Written from the "IGA 6/23 Advanced" operating manual, section "Interface / protocol": a
command is a two-digit bus address, two lower-case letters, an optional parameter and CR;
queries answer the value + CR, settings answer "ok", an unknown command "no", and a
malformed message gets no answer at all. Address 98 reaches all units without reply, 99 all
units with reply. Temperatures are five digits in 0.1 degC; 88880 is over range and 77770
under range. The measuring ranges read as XXXXYYYY (begin and end in degC, hex): mb the basic
range, me the sub range the analog output spans, set in two steps (p. 38): m1XXXXYYYY, then m2,
which confirms it (until then me reads the old one; m2 with nothing to confirm answers "no").
fh0/fh1 shows temperatures in degC or degF (readings, ranges and internal temperatures alike);
la the aiming laser; lz the peak picker's clearing time (0 off, 1-6 10 ms to 25 s, 7 extern, 8
auto, 9 hold: kept and read back, the picking itself is not modelled); tm the highest internal
temperature since power-on; pa the parameters as 15 digits (emissivity in %, ez, lz, as,
internal temperature, address, baud code, then 01000); na "IGA 6/23 Advanced". Line: 8E1
(manual, "Data format UPP"). Streaming to a separate output port is not modelled.
"""
import math
import re

import numpy as np

from .fjh_world import FJHWorld  # or any world with the same pyrometer view (see FJHWorld)
from .noise import normals

C2 = 14388.0  # um K, second radiation constant
WAVELENGTH = 1.6  # um
BASIC_RANGE = (250.0, 2500.0)  # degC, the instrument's full measuring range
RESPONSE_TIMES = {0: 10e-6, 1: 1e-3, 2: 3e-3, 3: 5e-3, 4: 10e-3, 5: 50e-3, 6: 0.25, 7: 1.0, 8: 3.0, 9: 10.0}
OVER, UNDER = "88880", "77770"
KELVIN = 273.15
_MESSAGE = re.compile(r"^(\d\d)([a-z][a-z0-9])(\S*)$")


class ImpacTwin:
    """The pyrometer looking at the world's sample, on a serial line at `baudrate`."""

    terminator = b"\r"
    framing = (8, "E", 1)  # data bits, parity, stop bits (manual, "Data format UPP")

    def __init__(self, world: FJHWorld, address: int = 0, baudrate: int = 19200,
                 noise_at_floor: float = 3.0, seed: int | None = None):
        self.world = world
        self.address = address
        self.baudrate = baudrate
        self.noise_at_floor = noise_at_floor  # K, one sigma at the range begin
        self.rng = np.random.default_rng(seed)
        self.normals = normals(self.rng)
        self.emissivity = 1.0
        self.response_code = 1
        self.range_c = (600.0, 2500.0)
        self.analog_live_zero = True  # 4-20 mA
        self.serial_number = "23041"
        self.fahrenheit, self.laser, self.peak_clear = False, False, 0
        self.pending_range: tuple[float, float] | None = None  # m1 given, m2 not yet
        self.forced: str | None = None  # "dropout" or "saturation" while injected
        self._apply_response_time()

    FAULTS = ("dropout", "saturation", "recover")

    def inject(self, fault: str) -> None:
        """Fault injection: "dropout" (no signal: under range), "saturation" (over range) or
        "recover"."""
        self.forced = {"dropout": "dropout", "saturation": "saturation", "recover": None}[fault]

    # --- measurement physics ---------------------------------------------------------------
    def _apply_response_time(self) -> None:
        self.world.sensor_lag = RESPONSE_TIMES[self.response_code] / math.log(10)

    def indicated(self, sensed: float | np.ndarray) -> float | np.ndarray:
        """Indicated temperature (K) for the lagged true temperature, before range checks.

        Emissivity error (domain.md): 1/T_m - 1/T = -(lambda/c2) ln(eps_true/eps_set).
        Noise grows as the radiance falls: sigma ~ T^2 exp(c2/(lambda T)); below the range
        begin the detector sees only its own noise.
        """
        inverse = 1 / sensed - (WAVELENGTH / C2) * math.log(self.world.emissivity / self.emissivity)
        measured = 1 / inverse
        floor = self.range_c[0] + KELVIN
        if isinstance(measured, np.ndarray):  # a trace (the analog output)
            seen, exp, noise = np.maximum(measured, floor), np.exp, self.rng.standard_normal(measured.shape)
        else:  # one reading: plain floats are several times quicker than numpy scalars
            seen, exp, noise = max(measured, floor), math.exp, next(self.normals)
        sigma = self.noise_at_floor * (seen / floor) ** 2 * exp(C2 / WAVELENGTH * (1 / seen - 1 / floor))
        return measured + noise * sigma

    def analog_current(self, times: np.ndarray) -> np.ndarray:
        """Analog output (mA): the measuring range mapped linearly onto 0/4-20 mA."""
        kelvin = self.indicated(self.world.sample_at(times, "sensed"))
        low, high = (c + KELVIN for c in self.range_c)
        zero = 4.0 if self.analog_live_zero else 0.0
        fraction = np.clip((kelvin - low) / (high - low), 0.0, 1.0)
        if self.forced:
            fraction = np.full_like(fraction, 0.0 if self.forced == "dropout" else 1.0)
        return zero + (20.0 - zero) * fraction

    def reading(self) -> str:
        with self.world.lock:
            self.world.advance()
            sensed = self.world.sensed_temperature
        kelvin = float(self.indicated(sensed))
        celsius = kelvin - KELVIN
        if self.forced:
            return UNDER if self.forced == "dropout" else OVER
        if celsius < self.range_c[0]:
            return UNDER
        if celsius > self.range_c[1]:
            return OVER
        return f"{round(self._shown(celsius) * 10):05d}"

    def _shown(self, celsius: float) -> float:
        """A temperature in the unit fh chose."""
        return celsius * 9 / 5 + 32 if self.fahrenheit else celsius

    def _celsius(self, shown: float) -> float:
        return (shown - 32) * 5 / 9 if self.fahrenheit else shown

    # --- protocol --------------------------------------------------------------------------
    def handle(self, message: bytes) -> bytes | None:
        match = _MESSAGE.match(message.decode("ascii", errors="replace").strip("\n"))
        if not match:
            return None  # syntax or framing error: the unit stays silent
        address, command, parameter = int(match[1]), match[2], match[3]
        if address not in (self.address, 98, 99):
            return None
        answer = self._answer(command, parameter)
        return None if address == 98 else (answer + "\r").encode("ascii")

    def _answer(self, command: str, parameter: str) -> str:
        handler = getattr(self, f"_cmd_{command}", None)
        if handler is None:
            return "no"
        try:
            return handler(parameter)
        except ValueError:
            return "no"

    def _cmd_ms(self, parameter: str) -> str:
        if not parameter:
            return self.reading()
        count = int(parameter)
        if not 1 <= count <= 999 or len(parameter) != 3:
            raise ValueError(parameter)
        lines = []
        for _ in range(count):  # one reading per response interval of the unit
            self.world.clock.sleep(max(RESPONSE_TIMES[self.response_code], 1e-3))
            lines.append(self.reading())
        return "\r".join(lines)

    def _cmd_em(self, parameter: str) -> str:
        if not parameter:
            return f"{round(self.emissivity * 1000):04d}"
        if parameter == "?":  # a setting command followed by '?' answers its limits
            return "00501000"
        per_mille = _digits(parameter, 4)
        if not 50 <= per_mille <= 1000:
            raise ValueError(parameter)
        self.emissivity = per_mille / 1000
        return "ok"

    def _cmd_ez(self, parameter: str) -> str:
        if not parameter:
            return str(self.response_code)
        self.response_code = _digits(parameter, 1)
        self._apply_response_time()
        return "ok"

    def _cmd_mb(self, parameter: str) -> str:
        """The basic measuring range, XXXXYYYY: begin and end in degC, 4 hex digits each."""
        if parameter:
            raise ValueError(parameter)
        return _hex_range(tuple(map(self._shown, BASIC_RANGE)))

    def _cmd_me(self, parameter: str) -> str:
        """The sub range the analog output spans, XXXXYYYY as for mb."""
        if parameter:
            raise ValueError(parameter)
        return _hex_range(tuple(map(self._shown, self.range_c)))

    def _cmd_m1(self, parameter: str) -> str:
        """m1XXXXYYYY: the sub range to confirm with m2 (within the basic range, at least 51 degC wide)."""
        if len(parameter) != 8:
            raise ValueError(parameter)
        begin, end = (round(self._celsius(int(part, 16))) for part in (parameter[:4], parameter[4:]))
        if not (BASIC_RANGE[0] <= begin and end <= BASIC_RANGE[1] and end - begin >= 51):
            raise ValueError(parameter)
        self.pending_range = (float(begin), float(end))
        return "ok"

    def _cmd_m2(self, parameter: str) -> str:
        """m2 confirms the sub range m1 gave (the unit resets itself to it)."""
        if parameter or self.pending_range is None:
            raise ValueError(parameter)
        self.range_c, self.pending_range = self.pending_range, None
        return "ok"

    def _cmd_fh(self, parameter: str) -> str:
        return self._switch("fahrenheit", parameter)

    def _cmd_la(self, parameter: str) -> str:
        return self._switch("laser", parameter)

    def _switch(self, attr: str, parameter: str) -> str:
        """A 0/1 setting: its query answers the digit, a setting "ok"."""
        if not parameter:
            return str(int(getattr(self, attr)))
        code = _digits(parameter, 1)
        if code not in (0, 1):
            raise ValueError(parameter)
        setattr(self, attr, bool(code))
        return "ok"

    def _cmd_lz(self, parameter: str) -> str:
        if not parameter:
            return str(self.peak_clear)
        self.peak_clear = _digits(parameter, 1)
        return "ok"

    def _cmd_pa(self, parameter: str) -> str:
        if parameter:
            raise ValueError(parameter)
        baud = {1200: 0, 2400: 1, 4800: 2, 9600: 3, 19200: 4, 38400: 5, 57600: 6, 115200: 8}[self.baudrate]
        return (f"{min(round(self.emissivity * 100), 99):02d}{self.response_code}{self.peak_clear}"
                f"{int(self.analog_live_zero)}{self._cmd_gt('')[-2:]}{self.address:02d}{baud}01000")

    def _cmd_tm(self, parameter: str) -> str:
        return self._cmd_gt(parameter)  # the internal temperature has not changed since power-on

    def _cmd_as(self, parameter: str) -> str:
        return self._switch("analog_live_zero", parameter)

    def _cmd_na(self, parameter: str) -> str:
        return "IGA 6/23 Advanced" if not parameter else "no"

    def _cmd_sn(self, parameter: str) -> str:
        return self.serial_number

    def _cmd_ve(self, parameter: str) -> str:
        return "270521"  # VVMMJJ: device 27 (IGA 6/23), firmware of May 2021

    def _cmd_fs(self, parameter: str) -> str:
        return "00"

    def _cmd_gt(self, parameter: str) -> str:
        return f"{round(self._shown(31.0)):03d}"  # the internal temperature


def _hex_range(range_c: tuple[float, float]) -> str:
    return f"{round(range_c[0]):04X}{round(range_c[1]):04X}"


def _digits(text: str, width: int) -> int:
    if len(text) != width or not text.isdigit():
        raise ValueError(text)
    return int(text)
