"""Driver for the Keysight N6900/N7900 Advanced Power System (one output), SCPI over LAN.

Commands from the "N6900/N7900 Series Operating and Service Guide", ch. 6 (SCPI Programming
Reference): SOURce, OUTPut[:PROTection] (incl. the I/O watchdog), LIST, TRIGger, INITiate,
ABORt, SENSe:SWEep and FETCh:ARRay (built-in digitizer), STATus registers and SYSTem:ERRor.
"""
import numpy as np

from quenchlab.control.programs import ListProgram
from quenchlab.errors import InstrumentError

from .transport import VisaTransport

TRAN_ACTIVE = 64  # STATus:OPERation bit 6: the transient system (a list) is initiated or running
MEAS_ACTIVE = 32  # bit 5: the digitizer is initiated or measuring
QUESTIONABLE_BITS = {1: "over-voltage", 2: "over-current", 4: "power fail", 16: "over-temperature",
                     512: "inhibit", 2048: "watchdog"}
MAX_LIST_STEPS = 512
MAX_DWELL = 262.144  # s
MAX_LIST_COUNT = 4096  # LIST:COUNt, 1-4096 (or INFinity)
PRIORITY = {"voltage": "VOLT", "current": "CURR"}  # a program's control -> [SOURce:]FUNCtion


def _setting(header: str, value: float) -> str:
    """A level as sent: 0 (or less) as MIN where the unit's least setting is above 0 (VOLT and
    both limits: 0.1 % of the range, ch. 6); CURR goes down to 0 and below (it can sink)."""
    return "MIN" if value <= 0 and header != "CURR" else f"{value:.6g}"


class N6900:
    """One output of an N6900/N7900 supply."""

    def __init__(self, address: str, name: str = "supply", timeout: float = 2.0, visa_library: str = "@py"):
        self.io = VisaTransport(name, address, timeout=timeout, library=visa_library)
        self.name, self.address = name, address
        self.priority: str | None = None  # "voltage" or "current" ([SOURce:]FUNCtion), once known

    def identify(self) -> str:
        return self.io.query("*IDN?")


    # --- setpoints, output, measurements ---------------------------------------------------
    def set_priority(self, control: str) -> None:
        """Voltage or current priority ([SOURce:]FUNCtion VOLT|CURR, ch. 6). A change switches the
        output off and returns the levels and limits to their *RST values: send it with the
        output off, before them."""
        if self.priority is None:
            self.priority = "current" if self.io.query("FUNC?") == "CURR" else "voltage"
        if control != self.priority:
            self.io.write(f"FUNC {PRIORITY[control]}")
            self.priority = control

    def _header(self, quantity: str) -> str:
        """VOLT or CURR where the priority's own quantity is meant, its :LIM for the other: a
        voltage-priority output holds VOLT and is bounded by CURR:LIM (CURR does nothing there),
        and the reverse in current priority. quenchlab sent CURR as the bound in voltage priority
        until its twin was corrected: a real unit would have ignored it."""
        if self.priority is None:
            self.set_priority("voltage")
        return quantity if quantity == PRIORITY[self.priority] else f"{quantity}:LIM"

    def set_voltage(self, volts: float) -> None:
        """The output voltage in voltage priority, the voltage bound in current priority."""
        header = self._header("VOLT")
        self.io.write(f"{header} {_setting(header, volts)}")

    def set_current(self, amps: float) -> None:
        """The current bound in voltage priority, the output current in current priority."""
        header = self._header("CURR")
        self.io.write(f"{header} {_setting(header, amps)}")

    def voltage_setting(self) -> float:
        return float(self.io.query(f"{self._header('VOLT')}?"))

    def current_setting(self) -> float:
        return float(self.io.query(f"{self._header('CURR')}?"))

    def output_off(self) -> None:
        """Abort any list and switch the output off (safe in any state), confirmed by OUTP?: a
        write alone does not prove it arrived (VisaTransport). Sent a second time if the output
        still reads on, or if the link was lost on the way (switching off twice is harmless)."""
        for attempt in (1, 2):
            try:
                self.io.write("ABOR:TRAN;:OUTP OFF")
                if self.io.query("OUTP?") == "0":
                    return
            except InstrumentError:
                if attempt == 2:
                    raise
        raise InstrumentError(self.name, self.address, "ABOR:TRAN;:OUTP OFF",
                              "the output still reads on after OUTP OFF, sent twice")

    def output_on(self) -> None:
        self.io.write("OUTP ON")

    def output_enabled(self) -> bool:
        """True only if the output is programmed on and no protection holds it off."""
        return self.io.query("OUTP?") == "1" and self.questionable() == 0

    def measure(self) -> tuple[float, float]:
        return float(self.io.query("MEAS:VOLT?")), float(self.io.query("MEAS:CURR?"))

    # --- protection ------------------------------------------------------------------------
    def configure_protection(self, ovp: float, ocp: bool, delay: float, watchdog: float | None) -> None:
        """Program OVP, OCP (with its delay) and the I/O watchdog (None disables it)."""
        self.io.write(f"VOLT:PROT {ovp:.6g};:CURR:PROT:STAT {int(ocp)};:OUTP:PROT:DEL {delay:.6g}")
        if watchdog is None:
            self.io.write("OUTP:PROT:WDOG OFF")
        else:
            self.io.write(f"OUTP:PROT:WDOG:DEL {round(watchdog)};:OUTP:PROT:WDOG ON")
        self.io.check_errors()

    def protection_settings(self) -> dict[str, float]:
        return {"ovp": float(self.io.query("VOLT:PROT?")),
                "ocp": float(self.io.query("CURR:PROT:STAT?")),
                "protection_delay": float(self.io.query("OUTP:PROT:DEL?")),
                "watchdog": float(self.io.query("OUTP:PROT:WDOG?")),
                "watchdog_delay": float(self.io.query("OUTP:PROT:WDOG:DEL?"))}

    def questionable(self) -> int:
        return int(self.io.query("STAT:QUES:COND?"))

    def trips(self) -> list[str]:
        """Names of the protections now holding the output off."""
        bits = self.questionable()
        return [name for bit, name in QUESTIONABLE_BITS.items() if bits & bit]

    def clear_protection(self) -> None:
        self.io.write("OUTP:PROT:CLE")

    # --- lists -----------------------------------------------------------------------------
    def upload_list(self, program: ListProgram, count: int = 1, off_time: float = 0.0) -> None:
        """Load a list, to start on a bus trigger: the program's steps, then (with `off_time`)
        a step at 0 for the off time, run `count` times (LIST:COUNt), the trigger out marking
        the first step of each run (LIST:TOUTput:BOSTep). The output returns to 0 when it ends
        and stays on, at 0, through the off steps."""
        levels, dwells = list(program.levels), list(program.dwells)
        if off_time:
            levels, dwells = levels + [0.0], dwells + [off_time]
        if not 1 <= len(levels) <= MAX_LIST_STEPS or len(program.dwells) != len(program.levels):
            raise ValueError(f"a list holds 1-{MAX_LIST_STEPS} steps with one dwell each")
        if any(not 0 <= d <= MAX_DWELL for d in dwells):
            raise ValueError(f"list dwells must be within 0-{MAX_DWELL} s")
        if not 1 <= count <= MAX_LIST_COUNT:
            raise ValueError(f"a list runs 1-{MAX_LIST_COUNT} times")
        stepped = PRIORITY[program.control]
        fixed = "VOLT" if stepped == "CURR" else "CURR"
        self.io.write("ABOR:TRAN")
        self.set_priority(program.control)  # the stepped quantity is the priority's, the other its bound
        self.io.write(f"{fixed}:MODE FIX;:{stepped}:MODE FIX;:{stepped} {_setting(stepped, 0.0)};"
                      f":{fixed}:LIM {_setting(fixed + ':LIM', program.limit)}")
        self.io.write(f"LIST:{stepped} {','.join(f'{v:.6g}' for v in levels)}")
        self.io.write(f"LIST:DWEL {','.join(f'{d:.7g}' for d in dwells)};:LIST:COUN {count};:LIST:TERM:LAST OFF")
        first_step = ",".join(["1"] + ["0"] * (len(levels) - 1))  # trigger out as each pulse starts
        self.io.write(f"LIST:TOUT:BOST {first_step};:LIST:TOUT:EOST {first_step.replace('1', '0')}")
        self.io.write(f"{stepped}:MODE LIST;:TRIG:TRAN:SOUR BUS;:DIG:PIN1:FUNC TOUT")
        self.io.check_errors()

    def arm_list(self) -> None:
        self.io.write("INIT:TRAN")

    def trigger(self) -> None:
        """*TRG: starts an armed list (and a bus-triggered acquisition)."""
        self.io.write("*TRG")

    def list_running(self) -> bool:
        return bool(int(self.io.query("STAT:OPER:COND?")) & TRAN_ACTIVE)

    def list_and_digitizer(self) -> tuple[bool, bool]:
        """Whether the list runs and whether the digitizer still measures (STAT:OPER:COND? bits
        6 and 5, one query)."""
        bits = int(self.io.query("STAT:OPER:COND?"))
        return bool(bits & TRAN_ACTIVE), bool(bits & MEAS_ACTIVE)

    # --- built-in digitizer ----------------------------------------------------------------
    def configure_digitizer(self, points: int, interval: float, pre_trigger: int = 0) -> None:
        """Acquire `points` samples every `interval` s, starting with the list (TRAN1)."""
        self.io.write(f"SENS:SWE:POIN {points};:SENS:SWE:TINT {interval:.6g};"
                      f":SENS:SWE:OFFS:POIN {-pre_trigger};:TRIG:ACQ:SOUR TRAN1;:FORM REAL;:FORM:BORD NORM")
        self.io.check_errors()

    def fixed_output(self, points: int = 64, interval: float = 20.48e-6) -> None:
        """Settings follow CURR/VOLT at once (no list) and MEAS? averages `points` samples
        `interval` s apart (a measurement lasts points x interval: after a pulse's capture it
        would last the whole record)."""
        self.io.write(f"ABOR:TRAN;:CURR:MODE FIX;:VOLT:MODE FIX;:SENS:SWE:POIN {points};"
                      f":SENS:SWE:TINT {interval:.6g};:SENS:SWE:OFFS:POIN 0")
        self.io.check_errors()

    def arm_digitizer(self) -> None:
        self.io.write("INIT:ACQ")

    def abort_acquisition(self) -> None:
        self.io.write("ABOR:ACQ")

    def fetch(self) -> tuple[np.ndarray, np.ndarray]:
        """(volts, amps) of the last acquisition, as binary blocks of singles (FORMat REAL, set
        with the digitizer: a whole train's half million points each); waits for it to complete."""
        return tuple(self.io.query_block(f"FETC:ARR:{what}?", datatype="f", big_endian=True).astype(float)
                     for what in ("VOLT", "CURR"))

    def close(self) -> None:
        self.io.close()
