"""Driver for Keysight InfiniiVision oscilloscopes (DSOX1000/2000/3000) used as digitizers.

From the "InfiniiVision Programmer's Guide": :CHANnel<n>, :TIMebase, :TRIGger:EDGE, :SINGle,
:TRIGger:FORCe, :TER?, :WAVeform:PREamble? (format, type, points, count, xincrement, xorigin,
xreference, yincrement, yorigin, yreference) and :WAVeform:DATA? (an IEEE 488.2 definite-length block);
volts = (code - yreference) * yincrement + yorigin, time = (i - xreference) * xincrement + xorigin.
Segmented memory (an option): :ACQuire:MODE SEGMented, :ACQuire:SEGMented:COUNt and :INDex,
:WAVeform:SEGMented:COUNt? and :TTAG? (the selected segment's trigger time from the first).
"""
import time as wallclock
from dataclasses import dataclass

import numpy as np

from quenchlab.errors import InstrumentError

from .transport import VisaTransport


@dataclass(frozen=True)
class Trace:
    """One channel's record: seconds from the trigger and volts."""

    time: np.ndarray
    volts: np.ndarray


class InfiniiVision:
    """An oscilloscope capturing single records."""

    def __init__(self, address: str, name: str = "digitizer", timeout: float = 5.0, visa_library: str = "@py"):
        self.io = VisaTransport(name, address, timeout=timeout, library=visa_library)
        self.name, self.address = name, address
        self.pre_trigger = 0.0  # s of the configured record before its trigger

    def identify(self) -> str:
        return self.io.query("*IDN?")

    def options(self) -> str:
        """*OPT?: the licensed options, SGM among them with segmented memory."""
        return self.io.query("*OPT?")

    def configure_channel(self, channel: int, volts_range: float, offset: float) -> None:
        self.io.write(f":CHAN{channel}:RANG {volts_range:.6g};OFFS {offset:.6g};COUP DC;DISP 1")
        self.io.check_errors()

    def configure_capture(self, duration: float, pre_trigger: float, points: int,
                          trigger: str = "EXT", level: float = 1.0) -> None:
        """Record `duration` s, `pre_trigger` s of it before an edge on `trigger`."""
        self.pre_trigger = pre_trigger
        self.io.write(f":TIM:RANG {duration:.6g};REF LEFT;POS {duration / 10 - pre_trigger:.6g}")
        self.io.write(f":TRIG:MODE EDGE;SWE NORM;:TRIG:EDGE:SOUR {trigger};LEV {level:.6g};SLOP POS")
        self.io.write(f":WAV:POIN:MODE NORM;:WAV:POIN {points};:WAV:FORM WORD;BYT MSBF;UNS 1")
        self.io.check_errors()

    def time_range(self) -> float:
        return float(self.io.query(":TIM:RANG?"))

    def arm(self) -> None:
        """Arm a single acquisition, confirmed by the reply to *OPC? after it (a write alone may
        still be on its way while the host triggers another instrument on another socket); returns
        once the record's part before the trigger has filled: the scope takes no trigger before."""
        self.io.query(":TER?")  # read-and-clear a stale trigger event
        self.io.write(":SINGle")
        self.io.query("*OPC?")
        wallclock.sleep(self.pre_trigger)

    def force_trigger(self) -> None:
        """Trigger the armed acquisition whatever its trigger condition (:TRIGger:FORCe); returns
        once :TER? confirms it. A write may wait in the host's TCP stack (a small segment behind
        an unacknowledged one), so only the reply to the query after it dates the trigger."""
        self.io.write(":TRIG:FORC")
        if not self.triggered():
            raise InstrumentError(self.name, self.address, ":TRIG:FORC", "the forced trigger was not taken (:TER? 0)")

    def triggered(self) -> bool:
        return self.io.query(":TER?") == "+1"

    def acquiring(self) -> bool:
        """True while armed or still filling the record (:OPER:COND? bit 3, Run)."""
        return bool(int(self.io.query(":OPER:COND?")) & 8)

    def segmented(self, count: int | None) -> None:
        """One record per trigger for the next `count` triggers (segmented memory), or with
        None a single record (real-time mode)."""
        self.io.write(":ACQ:MODE RTIM" if count is None else f":ACQ:MODE SEGM;:ACQ:SEGM:COUN {count}")
        self.io.check_errors()

    def stop(self) -> None:
        self.io.write(":STOP")

    def segments_taken(self) -> int:
        return int(self.io.query(":WAV:SEGM:COUN?"))

    def fetch_segment(self, channel: int, index: int) -> tuple[Trace, float]:
        """Segment `index` (from 1) of `channel`, and its trigger time from the first segment's (s)."""
        self.io.write(f":ACQ:SEGM:IND {index}")
        trace = self.fetch(channel)
        return trace, float(self.io.query(":WAV:SEGM:TTAG?"))

    def fetch(self, channel: int) -> Trace:
        self.io.write(f":WAV:SOUR CHAN{channel}")
        fields = self.io.query(":WAV:PRE?").split(",")
        if fields[0] != "1":
            raise InstrumentError(self.name, self.address, ":WAV:PRE?", f"format {fields[0]} is not WORD")
        x_inc, x_org, x_ref, y_inc, y_org, y_ref = (float(f) for f in fields[4:10])
        codes = self.io.query_block(":WAV:DATA?", datatype="H", big_endian=True).astype(float)
        index = np.arange(codes.size)
        return Trace(time=(index - x_ref) * x_inc + x_org, volts=(codes - y_ref) * y_inc + y_org)

    def close(self) -> None:
        self.io.close()
