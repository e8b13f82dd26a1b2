"""The FJH twins as an independent client sees them: plain sockets and plain pyserial.

Nothing from quenchlab's drivers (devices/) is used: the twins must answer like the vendors'
manuals say, so that other client software can be pointed at them. References:

* N6900: Keysight "N6900/N7900 Series Operating and Service Guide" (ch. 4 "Using the Advanced
  Power System", ch. 6 "SCPI Programming Reference", status tables) and protocols.md section 1.
* IMPAC: LumaSense "IGA 6/23 Advanced" operating manual, chapter "Data format UPP" (pp. 37-39)
  and protocols.md section 3; pyrometer physics from domain.md.
* InfiniiVision: Keysight "InfiniiVision 3000 X-Series Programmer's Guide" (:CHANnel, :TIMebase,
  :TRIGger, :SINGle, :TER?, :OPERegister, :WAVeform) and protocols.md section 4.

Reactor time runs at wall speed here, so every test is short.
"""
import math
import re
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from quenchlab.config.fjh import load_config
from quenchlab.sim.fjh_twins import FJHTwins

CONFIG_PATH = Path(__file__).resolve().parents[1] / "configs" / "fjh-sim.yaml"
SHUNT_OHM = 250.0  # configs/fjh-sim.yaml digitizer.shunt: 4-20 mA -> 1-5 V
C2 = 14388.0  # um K
KELVIN = 273.15

# N6900 status bits (Operating and Service Guide, ch. 6 status tables)
CV, CC, OFF, WTG_MEAS, WTG_TRAN, MEAS_ACTIVE, TRAN_ACTIVE = 1, 2, 4, 8, 16, 32, 64
QUES_OV, QUES_PROT = 1, 2048
SCOPE_RUN = 8  # InfiniiVision :OPERegister bit 3


# --- plain clients -------------------------------------------------------------------------

class ScpiSocket:
    """A raw SCPI socket client: newline-terminated messages, IEEE 488.2 blocks parsed here."""

    def __init__(self, visa_address: str, timeout: float = 10.0):
        match = re.fullmatch(r"TCPIP0?::([^:]+)::(\d+)::SOCKET", visa_address)
        assert match, visa_address
        self.sock = socket.create_connection((match[1], int(match[2])), timeout=timeout)
        self.buffer = b""

    def write(self, *commands: str) -> None:
        for command in commands:
            self.sock.sendall(command.encode("ascii") + b"\n")

    def _fill(self, size: int) -> None:
        while len(self.buffer) < size:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("instrument closed the connection")
            self.buffer += chunk

    def read_line(self) -> str:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("instrument closed the connection")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("ascii").strip()

    def query(self, command: str) -> str:
        self.write(command)
        return self.read_line()

    def query_float(self, command: str) -> float:
        return float(self.query(command))

    def query_int(self, command: str) -> int:
        return int(round(float(self.query(command))))

    def query_block(self, command: str) -> bytes:
        """IEEE 488.2 definite-length block: '#', one digit N, N digits of length, the bytes
        (an empty `command`: the block already asked for)."""
        if command:
            self.write(command)
        self._fill(2)
        assert self.buffer[:1] == b"#", f"not a definite-length block: {self.buffer[:20]!r}"
        digits = int(self.buffer[1:2])
        assert digits > 0, "indefinite-length block (#0) instead of a definite-length one"
        self._fill(2 + digits)
        size = int(self.buffer[2:2 + digits])
        start = 2 + digits
        self._fill(start + size + 1)
        body = self.buffer[start:start + size]
        rest = self.buffer[start + size:]
        assert rest[:1] == b"\n", f"block not followed by the newline terminator: {rest[:10]!r}"
        self.buffer = rest[1:]
        return body

    def errors(self) -> list[tuple[int, str]]:
        """Drain SYST:ERR? until +0,"No error"."""
        found = []
        for _ in range(40):
            code, _, text = self.query("SYST:ERR?").partition(",")
            if int(code) == 0:
                return found
            found.append((int(code), text))
        raise AssertionError(f"error queue never empties: {found}")

    def close(self) -> None:
        self.sock.close()


class Upp:
    """A plain pyserial client of the IMPAC UPP protocol (8E1, CR-terminated)."""

    def __init__(self, path: str, baudrate: int = 19200, timeout: float = 0.4):
        self.port = serial.Serial(path, baudrate, bytesize=8, parity=serial.PARITY_EVEN,
                                  stopbits=1, timeout=timeout)

    def raw(self, message: bytes) -> bytes:
        self.port.reset_input_buffer()
        self.port.write(message)
        reply = self.port.read_until(b"\r")
        time.sleep(0.002)  # manual: wait >= 1.5 ms after a reply before the next command
        return reply

    def query(self, command: str) -> str | None:
        """The reply without its CR, or None when the unit stays silent (timeout)."""
        reply = self.raw(command.encode("ascii") + b"\r")
        if not reply:
            return None
        assert reply.endswith(b"\r"), f"reply not terminated by CR: {reply!r}"
        return reply[:-1].decode("ascii")

    def close(self) -> None:
        self.port.close()


# --- fixtures ------------------------------------------------------------------------------

@pytest.fixture
def supply(twins):
    client = ScpiSocket(twins.addresses["supply"])
    yield client
    client.close()


@pytest.fixture
def scope(twins):
    client = ScpiSocket(twins.addresses["digitizer"])
    yield client
    client.close()


@pytest.fixture
def pyro(twins):
    client = Upp(twins.addresses["pyrometer"])
    yield client
    client.close()


def operation(supply) -> int:
    return supply.query_int("STAT:OPER:COND?")


def questionable(supply) -> int:
    return supply.query_int("STAT:QUES:COND?")


def settle(client) -> None:
    """*OPC? round trip: everything sent before has been executed."""
    assert client.query("*OPC?") in ("1", "+1")


def wait_for(predicate, timeout: float, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def measuring_range(pyro) -> tuple[float, float]:
    """The analog output's range in degC. IGA 6/23 manual: 'AAme' answers the sub range as
    XXXXYYYY (2 x 4 hex digits); protocols.md words mb/me as range begin/end, so a 4-digit
    decimal answer is read that way."""
    me = pyro.query("00me")
    if me and re.fullmatch(r"[0-9A-Fa-f]{8}", me):
        return float(int(me[:4], 16)), float(int(me[4:], 16))
    mb = pyro.query("00mb")
    assert mb and me and mb.isdigit() and me.isdigit(), (mb, me)
    return float(mb), float(me)


# === Keysight N6900 ========================================================================

def test_n6900_idn_and_reset_state(supply):
    """*IDN? answers 'Keysight Technologies,<model>,<serial>,<firmware>' with an N69xx/N79xx
    model (IEEE 488.2 *IDN?, ch. 6 "*IDN?"). *RST state (ch. 6 "*RST" table): output off,
    watchdog off with a 60 s delay, lists 1 step, no errors queued."""
    fields = supply.query("*IDN?").split(",")
    assert len(fields) == 4, fields
    assert fields[0].lower() == "keysight technologies"
    assert re.fullmatch(r"N[67]9\d\dA", fields[1]), fields[1]
    supply.write("VOLT 5", "OUTP:PROT:WDOG:DEL 10", "TRIG:TRAN:SOUR IMM", "OUTP:PROT:MODE HIGHZ", "*RST")
    assert supply.query("VOLT?") == supply.query("VOLT? MIN") == "+6.000000E-02"  # 0.1 % of 60 V
    assert supply.query("VOLT:LIM?") == supply.query("VOLT:LIM? MAX") == "+6.120000E+01"
    assert supply.query("CURR?") == "+0.000000E+00"
    assert supply.query("CURR:LIM?") == "+3.396600E-01"  # 1 % of its MAX, 102 % of 33.3 A
    assert supply.query("CURR:LIM:NEG?") == supply.query("CURR:LIM:NEG? MIN") == "-3.396600E+00"
    assert supply.query("TRIG:TRAN:SOUR?") == "BUS" and supply.query("OUTP:PROT:MODE?") == "LOWZ"
    assert supply.query("OUTP?") == "0"
    assert supply.query("OUTP:PROT:WDOG?") == "0"
    assert supply.query("OUTP:PROT:WDOG:DEL?") == "+60"
    assert supply.query_int("LIST:CURR:POIN?") == 1
    assert supply.errors() == []


def test_n6900_short_long_forms_and_optional_nodes(supply):
    """SCPI (protocols.md "General SCPI rules"; ch. 6 "Introduction to the SCPI Language"):
    case-insensitive short/long mnemonics, optional [SOURce:] and [:LEVel][:IMMediate]
    [:AMPLitude] nodes, ';' joins commands, a leading ':' returns to the root, query replies of
    one message are joined by ';'; an unknown header queues -113."""
    supply.write("SOUR:CURR 2")
    assert supply.query_float("CURRent:LEVel:IMMediate:AMPLitude?") == pytest.approx(2.0)
    assert supply.query_float("curr?") == pytest.approx(2.0)
    supply.write("source:voltage:level:immediate:amplitude 7.5")
    assert supply.query_float("VOLTage?") == pytest.approx(7.5)
    assert supply.query_float("SOUR:VOLT:LEV?") == pytest.approx(7.5)
    supply.write("VOLT 3;:CURR 1.5")
    volts, amps = supply.query("VOLT?;:CURR?").split(";")
    assert (float(volts), float(amps)) == pytest.approx((3.0, 1.5))
    supply.write("OUTPut:STATe OFF")
    assert supply.query("OUTP:STAT?") == "0"
    assert supply.errors() == []
    supply.write("VOLT:BOGUS 1")
    assert [code for code, _ in supply.errors()] == [-113]


def test_n6900_setpoints_and_range_errors(supply):
    """VOLT/CURR accept 0-102 % of the rating (ch. 6 [SOURce:]VOLTage/CURRent); a value
    outside queues -222 "Data out of range" on SYST:ERR? and leaves the setting unchanged;
    *ESR? reports the execution error (bit 4, 16). VOLT? MAX answers the upper limit."""
    supply.write("VOLT 12.5", "CURR 3")
    assert supply.query_float("VOLT?") == pytest.approx(12.5)
    assert supply.query_float("CURR?") == pytest.approx(3.0)
    assert supply.errors() == []
    supply.query("*ESR?")
    supply.write("VOLT 1000")
    assert supply.query("SYST:ERR?").startswith("-222,")
    assert supply.query("SYST:ERR?").startswith("+0,")
    assert supply.query_float("VOLT?") == pytest.approx(12.5)
    supply.write("CURR 1E6")
    assert [code for code, _ in supply.errors()] == [-222]
    assert supply.query_float("CURR?") == pytest.approx(3.0)
    assert supply.query_int("*ESR?") & 16
    vmax = supply.query_float("VOLT? MAX")
    assert 5.0 < vmax < 2000.0
    supply.write(f"VOLT {vmax}")
    assert supply.errors() == []


def test_n6900_output_heats_the_sample(twins, supply):
    """OUTP ON delivers the programmed output (ch. 4 "Programming the Output"): with a current
    limit below V/R the output runs in CC (STAT:OPER:COND? bit 1), MEAS:CURR? reads the set
    current and MEAS:VOLT? the I*R drop; the sample's temperature rises. OUTP OFF: no current,
    OFF bit 2 ("output is programmed off")."""
    start = twins.world.temperature
    supply.write("VOLT 20", "CURR:LIM 3")  # voltage priority (*RST): the current is bounded by CURR:LIM
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.0, abs=1e-3)
    supply.write("OUTP ON")
    time.sleep(0.1)
    amps = supply.query_float("MEAS:CURR?")
    volts = supply.query_float("MEAS:VOLT?")
    assert amps == pytest.approx(3.0, rel=0.01)
    assert 0.5 < volts < 20.0
    assert operation(supply) & CC
    twins.world.advance()
    assert twins.world.temperature > start + 100.0
    supply.write("OUTP OFF")
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.0, abs=1e-3)
    assert operation(supply) & OFF
    # constant voltage: a generous current limit, the supply holds the voltage
    supply.write("VOLT 1", "CURR:LIM 10", "OUTP ON")
    time.sleep(0.05)
    assert supply.query_float("MEAS:VOLT?") == pytest.approx(1.0, rel=0.01)
    assert 0.0 < supply.query_float("MEAS:CURR?") < 10.0
    assert operation(supply) & CV
    supply.write("OUTP OFF")


def test_n6900_priority_modes(supply):
    """ch. 6 [SOURce:]FUNCtion: in voltage priority CURR does nothing and CURR:LIM bounds the
    current; VOLT:LIM there is a settings conflict (+315). Changing priority switches the output
    off and returns the levels to *RST values; current priority holds CURR, bounded by VOLT:LIM."""
    assert supply.query("FUNC?") == "VOLT"
    supply.write("VOLT:LIM 10")
    assert supply.errors() == [(315, '"Settings conflict error"')]
    supply.write("VOLT 2", "CURR:LIM 4", "OUTP ON")
    supply.write("FUNC CURR")
    assert supply.query("OUTP?") == "0" and supply.query("VOLT?") == "+6.000000E-02"
    supply.write("VOLT:LIM 20", "CURR 1.5", "OUTP ON")
    time.sleep(0.05)
    assert supply.query_float("MEAS:CURR?") == pytest.approx(1.5, rel=0.01)
    assert operation(supply) & CC
    supply.write("CURR:LIM 3")
    assert supply.errors() == [(315, '"Settings conflict error"')]
    supply.write("OUTP OFF")


def test_n6900_ovp_trip_latches_until_cleared(supply):
    """Over-voltage protection (ch. 4 "Programming Output Protection", ch. 6
    OUTPut:PROTection:CLEar): the trip latches the output off, STAT:QUES:COND? bit 0 (OV) shows
    why; OUTP:PROT:CLE clears it once the cause is removed and restores the output."""
    supply.write("VOLT:PROT 5", "VOLT 10", "CURR:LIM 5", "OUTP ON")
    time.sleep(0.05)
    assert questionable(supply) & QUES_OV
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.0, abs=1e-3)
    time.sleep(0.05)
    assert questionable(supply) & QUES_OV  # latched
    supply.write("VOLT 2")  # the cause alone does not clear the latch
    time.sleep(0.03)
    assert questionable(supply) & QUES_OV
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.0, abs=1e-3)
    supply.write("OUTP:PROT:CLE")
    time.sleep(0.03)
    assert questionable(supply) & QUES_OV == 0
    assert supply.query_float("MEAS:CURR?") > 0.1
    assert supply.errors() == []
    supply.write("OUTP OFF")


def test_n6900_io_watchdog(supply):
    """I/O watchdog (ch. 6 OUTPut:PROTection:WDOG[:STATe] and :DELay, 1-3600 s): with no SCPI
    I/O within the delay the output is latched off "but the programmed output state is not
    changed" (OUTP? still 1); the PROT bit 11 (2048) of the questionable register is set; I/O
    afterwards does not restore it; OUTP:PROT:CLE does."""
    supply.write("VOLT 5", "CURR:LIM 0.5", "OUTP ON")
    supply.write("OUTP:PROT:WDOG:DEL 1", "OUTP:PROT:WDOG ON")
    assert supply.query("OUTP:PROT:WDOG?") == "1"
    assert supply.query_float("OUTP:PROT:WDOG:DEL?") == 1.0
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.5, rel=0.01)
    time.sleep(0.6)  # I/O inside the delay restarts the timer
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.5, rel=0.01)
    time.sleep(1.3)  # now stay silent for longer than the delay
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.0, abs=1e-3)
    assert supply.query("OUTP?") == "1"
    assert questionable(supply) & QUES_PROT
    time.sleep(0.05)
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.0, abs=1e-3)  # still latched
    supply.write("OUTP:PROT:WDOG OFF", "OUTP:PROT:CLE")
    time.sleep(0.03)
    assert questionable(supply) & QUES_PROT == 0
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.5, rel=0.01)
    assert supply.errors() == []
    supply.write("OUTP OFF")


def test_n6900_list_pulse_status_and_return(supply):
    """Lists (ch. 4 "Programming Output Lists", ch. 6 LIST and status tables): after INIT:TRAN
    the transient system waits for its BUS trigger (WTG-tran bit 4, TRAN-active bit 6 "initiated
    or in progress"); *TRG runs the list; TRAN-active clears when it is done; with
    LIST:TERM:LAST OFF (*RST) the output returns to the settings in force before the list."""
    supply.write("FUNC CURR", "VOLT:LIM 10", "CURR 0.2", "OUTP ON")
    supply.write("LIST:CURR 1,0.5", "LIST:DWEL 0.4,0.1", "CURR:MODE LIST", "TRIG:TRAN:SOUR BUS")
    assert supply.query_int("LIST:CURR:POIN?") == 2
    assert supply.query_int("LIST:DWEL:POIN?") == 2
    assert [float(v) for v in supply.query("LIST:CURR?").split(",")] == pytest.approx([1.0, 0.5])
    supply.write("INIT:TRAN")
    status = operation(supply)
    assert status & WTG_TRAN and status & TRAN_ACTIVE
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.2, rel=0.02)
    supply.write("*TRG")
    settle(supply)
    triggered = time.monotonic()
    status = operation(supply)
    assert status & TRAN_ACTIVE and not status & WTG_TRAN
    assert supply.query_float("MEAS:CURR?") == pytest.approx(1.0, rel=0.02)
    time.sleep(max(0.0, triggered + 0.6 - time.monotonic()))
    assert wait_for(lambda: not operation(supply) & (TRAN_ACTIVE | WTG_TRAN), 2.0)
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.2, rel=0.02)
    assert supply.errors() == []
    supply.write("OUTP OFF")


def test_n6900_list_terminate_last_holds_last_step(supply):
    """LIST:TERMinate:LAST ON (ch. 6): when the list completes, the output keeps the last
    step's setting instead of returning to the pre-list setting."""
    supply.write("FUNC CURR", "VOLT:LIM 10", "CURR 0.2", "OUTP ON")
    supply.write("LIST:CURR 1,0.6", "LIST:DWEL 0.1", "LIST:TERM:LAST ON", "CURR:MODE LIST",
                 "TRIG:TRAN:SOUR BUS", "INIT:TRAN", "*TRG")
    settle(supply)
    time.sleep(0.25)
    assert wait_for(lambda: not operation(supply) & TRAN_ACTIVE, 2.0)
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.6, rel=0.02)
    assert supply.errors() == []
    supply.write("OUTP OFF")


def test_n6900_abort_transient_stops_the_list(supply):
    """ABORt:TRANsient (ch. 6 LIST:COUNt notes, protocols.md): stops a running list at once;
    the output returns to the settings in force before the list started."""
    supply.write("FUNC CURR", "VOLT:LIM 10", "CURR 0.3", "OUTP ON")
    supply.write("LIST:CURR 1.2", "LIST:DWEL 2", "CURR:MODE LIST", "TRIG:TRAN:SOUR BUS",
                 "INIT:TRAN", "*TRG")
    settle(supply)
    assert operation(supply) & TRAN_ACTIVE
    assert supply.query_float("MEAS:CURR?") == pytest.approx(1.2, rel=0.02)
    supply.write("ABOR:TRAN")
    settle(supply)
    assert operation(supply) & (TRAN_ACTIVE | WTG_TRAN) == 0
    time.sleep(0.02)
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.3, rel=0.02)
    assert supply.errors() == []
    supply.write("OUTP OFF")


def test_n6900_mismatched_list_lengths(supply):
    """All lists must have the same number of steps or one step (ch. 6 LIST:CURRent notes:
    "the Voltage, Current, BOST, EOST, and Dwell lists must all be the same length or have a
    length of 1"): a 3-step current list with a 2-step dwell list is rejected with an error on
    the queue when the list is initiated or triggered, and no list runs. A 1-step dwell list
    applies to every step."""
    supply.write("FUNC CURR", "VOLT:LIM 10", "CURR 0.2", "OUTP ON")
    supply.write("LIST:CURR 1,2,3", "LIST:DWEL 0.1,0.2", "CURR:MODE LIST", "TRIG:TRAN:SOUR BUS")
    assert supply.query_int("LIST:CURR:POIN?") == 3
    assert supply.query_int("LIST:DWEL:POIN?") == 2
    supply.write("INIT:TRAN", "*TRG")
    settle(supply)
    errors = supply.errors()
    assert errors and all(code != 0 for code, _ in errors), errors
    assert operation(supply) & (TRAN_ACTIVE | WTG_TRAN) == 0
    assert supply.query_float("MEAS:CURR?") == pytest.approx(0.2, rel=0.02)
    supply.write("LIST:CURR 0.5,0.4,0.3", "LIST:DWEL 0.2", "INIT:TRAN", "*TRG")  # one dwell, 3 steps
    settle(supply)
    assert operation(supply) & TRAN_ACTIVE
    assert supply.query_float("MEAS:CURR?") in (pytest.approx(0.5, rel=0.02), pytest.approx(0.4, rel=0.02))
    assert wait_for(lambda: not operation(supply) & TRAN_ACTIVE, 2.0)
    assert supply.errors() == []
    supply.write("OUTP OFF")


def test_n6900_digitizer_records_the_pulse(supply):
    """Built-in digitizer (ch. 4 "Making Measurements", ch. 6 SENSe:SWEep, TRIGger:ACQuire,
    FETCh:ARRay): SENS:SWE:POIN samples every SENS:SWE:TINT, SENS:SWE:OFFS:POIN < 0 keeps
    pre-trigger samples, TRIG:ACQ:SOUR TRAN1 starts the record with the list; FETC:ARR:CURR?
    and FETC:ARR:VOLT? return POIN comma-separated values showing the pulse."""
    points, interval, pre = 500, 102.4e-6, 50  # interval: a multiple of 5.12 us
    supply.write("FUNC CURR", "VOLT:LIM 20", "CURR 0", "OUTP ON")
    supply.write("LIST:CURR 2,0", "LIST:DWEL 0.02,0.01", "CURR:MODE LIST", "TRIG:TRAN:SOUR BUS")
    supply.write(f"SENS:SWE:POIN {points}", f"SENS:SWE:TINT {interval}", f"SENS:SWE:OFFS:POIN {-pre}",
                 "TRIG:ACQ:SOUR TRAN1")
    assert supply.query_int("SENS:SWE:POIN?") == points
    assert supply.query_float("SENS:SWE:TINT?") == pytest.approx(interval, rel=1e-3)
    assert supply.query("TRIG:ACQ:SOUR?").upper() in ("TRAN1", "TRANSIENT1")
    supply.write("INIT:ACQ")
    assert operation(supply) & WTG_MEAS
    supply.write("INIT:TRAN", "*TRG")
    amps = np.array([float(v) for v in supply.query("FETC:ARR:CURR?").split(",")])
    volts = np.array([float(v) for v in supply.query("FETC:ARR:VOLT?").split(",")])
    assert len(amps) == len(volts) == points
    t = (np.arange(points) - pre) * interval
    assert np.all(np.abs(amps[t < -interval]) < 0.05)  # before the trigger
    on = (t > 2 * interval) & (t < 0.02 - 2 * interval)
    assert np.allclose(amps[on], 2.0, rtol=0.02)
    assert np.all(volts[on] > 0.5)
    after = t > 0.02 + 2 * interval
    assert np.all(np.abs(amps[after]) < 0.05)
    assert on.sum() > 150 and after.sum() > 200
    assert supply.errors() == []
    supply.write("OUTP OFF")


def test_n6900_digitizer_sends_real_blocks_in_either_byte_order(supply):
    """FORMat[:DATA] REAL (ch. 6 FORMat): FETCh:ARRay answers an IEEE 488.2 definite-length
    block of 32-bit IEEE 754 values, most significant byte first unless FORMat:BORDer SWAPped;
    *RST gives ASCii and NORMal."""
    assert supply.query("FORM?") == "ASC" and supply.query("FORM:BORD?") == "NORM"
    supply.write("FUNC CURR", "VOLT:LIM 20", "CURR 0", "OUTP ON", "LIST:CURR 2,0", "LIST:DWEL 0.01,0.01",
                 "CURR:MODE LIST", "TRIG:TRAN:SOUR BUS", "SENS:SWE:POIN 100", "SENS:SWE:TINT 204.8e-6",
                 "TRIG:ACQ:SOUR TRAN1", "INIT:ACQ", "INIT:TRAN", "*TRG")
    ascii_values = np.array([float(v) for v in supply.query("FETC:ARR:CURR?").split(",")])
    for order, dtype in (("NORM", ">f4"), ("SWAP", "<f4")):
        supply.write("FORM REAL", f"FORM:BORD {order}")
        values = np.frombuffer(supply.query_block("FETC:ARR:CURR?"), dtype=dtype)
        assert values == pytest.approx(ascii_values, rel=1e-6, abs=1e-6)
    assert supply.errors() == []
    supply.write("OUTP OFF", "*RST")


def test_n6900_list_trigger_out_is_programmed_per_step(twins, supply, scope):
    """Trigger out (ch. 4 "External Trigger I/O": a TOUTput pin "will generate output triggers
    from any subsystem that has been configured to output trigger signals"; ch. 6
    LIST:TOUTput:BOSTep/EOSTep, one 0|1 per step, LIST:TOUTput:BOSTep:POINts?): a list emits a
    trigger at the beginning/end of the steps flagged in BOST/EOST, none when they are all 0."""
    supply.write("LIST:CURR 1,0", "LIST:DWEL 0.05,0.05", "LIST:TOUT:BOST 1,0", "LIST:TOUT:EOST 0,1")
    assert supply.errors() == []
    assert [int(float(v)) for v in supply.query("LIST:TOUT:BOST?").split(",")] == [1, 0]
    assert supply.query_int("LIST:TOUT:BOST:POIN?") == 2
    assert supply.query_int("LIST:TOUT:EOST:POIN?") == 2
    # all flags off: running the list must not pulse the trigger-out pin
    supply.write("LIST:TOUT:BOST 0,0", "LIST:TOUT:EOST 0,0", "DIG:PIN1:FUNC TOUT",
                 "CURR:MODE LIST", "TRIG:TRAN:SOUR BUS")
    scope.write(":TRIG:MODE EDGE", ":TRIG:EDGE:SOUR EXT", ":TRIG:SWE NORM", ":TIM:RANG 0.01", ":SINGle")
    supply.write("INIT:TRAN", "*TRG")
    settle(supply)
    time.sleep(0.15)
    assert scope.query(":TER?") in ("+0", "0")
    assert supply.errors() == []


# === IMPAC IGA 6/23 (UPP) ==================================================================

def test_impac_cold_reading_is_under_range(pyro):
    """'AAms' answers five decimal digits in 0.1 degC + CR (manual p. 38); below the measuring
    range the unit answers the under-range sentinel 77770, never a made-up number
    (protocols.md section 3; domain.md "Pyrometer behaviour")."""
    reply = pyro.query("00ms")
    assert reply is not None and re.fullmatch(r"\d{5}", reply), reply
    assert reply == "77770"


def test_impac_emissivity_query_and_setting(pyro):
    """'AAem' reads the emissivity as 4 decimal digits in per mille; 'AAemXXXX' (0050-1000)
    sets it and answers "ok" (manual p. 37; protocols.md section 3)."""
    reply = pyro.query("00em")
    assert reply is not None and re.fullmatch(r"\d{4}", reply), reply
    assert pyro.query("00em0950") == "ok"
    assert pyro.query("00em") == "0950"
    assert pyro.query("00em0050") == "ok"
    assert pyro.query("00em1000") == "ok"
    assert pyro.query("00em") == "1000"


@pytest.mark.parametrize("command", ["00em2000", "00em0049", "00em12", "00emabcd", "00ez12", "00asX"])
def test_impac_bad_parameter_answers_no(pyro, command):
    """A setting outside its range or malformed answers "no" (manual p. 37: the unit answers
    "ok" or "no"), and leaves the setting alone."""
    before = pyro.query("00em")
    assert pyro.query(command) == "no"
    assert pyro.query("00em") == before


def test_impac_unknown_command_answers_no(pyro):
    """An unknown two-letter command answers "no" + CR (protocols.md section 3)."""
    assert pyro.query("00zz") == "no"
    assert pyro.query("00qq") == "no"


def test_impac_addressing(pyro):
    """Bus addresses (manual p. 38 'ga'; protocols.md section 3): a command for another address
    gets no reply at all; address 98 reaches all units and none replies, yet the setting is
    applied; 99 reaches all units with a reply."""
    assert pyro.query("01ms") is None
    assert pyro.query("01em0500") is None
    assert pyro.query("00em") != "0500"
    assert pyro.query("98em0900") is None
    assert pyro.query("00em") == "0900"
    assert pyro.query("99em") == "0900"
    assert pyro.query("99em0800") == "ok"
    assert pyro.query("00em") == "0800"


@pytest.mark.parametrize("garbage", [b"hello\r", b"0ms\r", b"00\r", b"\x00\xff\x13\r", b"ms00\r"])
def test_impac_garbage_gets_no_reply(pyro, garbage):
    """A syntax (or parity) error gets no answer at all; the host resends (manual p. 39,
    RS485 note 3; protocols.md section 3). The unit answers the next good command."""
    assert pyro.raw(garbage) == b""
    assert pyro.query("00em") is not None


def test_impac_wrong_baud_rate_gets_no_reply(twins):
    """At another baud rate than the unit's (19200 here) the UART sees only framing garbage:
    no reply (protocols.md section 3, failure modes). At the right rate it answers."""
    wrong = Upp(twins.addresses["pyrometer"], baudrate=9600)
    try:
        assert wrong.query("00ms") is None
        assert wrong.query("00em") is None
    finally:
        wrong.close()
    right = Upp(twins.addresses["pyrometer"], baudrate=19200)
    try:
        assert right.query("00em") is not None
    finally:
        right.close()


def test_impac_hot_sample_and_emissivity_bias(twins, supply, pyro):
    """A hot sample reads a plausible temperature; the emissivity setting biases it as the
    one-colour pyrometer equation says (domain.md: 1/T_m - 1/T = -(lambda/c2) ln(eps_true/
    eps_set)): a lower set emissivity reads higher, a higher one lower; the shift matches an
    InGaAs wavelength (1-2.6 um). With the set emissivity equal to the sample's the reading is
    the sample temperature."""
    supply.write("VOLT 50", "CURR:LIM 14", "OUTP ON")
    time.sleep(0.15)  # the thin film settles within tens of ms
    readings = {}
    for setting in ("0850", "0700", "1000"):
        assert pyro.query(f"00em{setting}") == "ok"
        values = [pyro.query("00ms") for _ in range(3)]
        assert all(v is not None and re.fullmatch(r"\d{5}", v) for v in values), values
        assert not {"77770", "88880"} & set(values), values
        readings[setting] = float(np.median([int(v) for v in values])) / 10 + KELVIN
        if setting == "0850":
            twins.world.advance()
            true = twins.world.temperature  # steady: the supply keeps the same output
    supply.write("OUTP OFF")
    assert 1500.0 < readings["0850"] < 2800.0
    if twins.world.sample.emissivity == pytest.approx(0.85):
        assert readings["0850"] == pytest.approx(true, abs=25.0)
    assert readings["0700"] > readings["0850"] > readings["1000"]
    wavelength = (1 / readings["0850"] - 1 / readings["0700"]) * C2 / math.log(0.85 / 0.70)
    assert 1.0 < wavelength < 2.6, wavelength


@pytest.mark.parametrize("command, pattern", [
    ("00ms", r"\d{5}"),
    ("00em", r"\d{4}"),
    ("00ez", r"\d"),
    ("00sn", r"[0-9A-Fa-f]{5}"),
    ("00fs", r"[0-9A-Fa-f]{2}"),
    ("00mb", r"[0-9A-Fa-f]{8}"),
    ("00me", r"[0-9A-Fa-f]{8}"),
    ("00gt", r"\d{3}"),
    ("00ve", r"27\d{4}"),
    ("00em?", r"00501000"),
])
def test_impac_reply_formats(pyro, command, pattern):
    """Reply formats of the IGA 6/23 Advanced manual, "Data format UPP" pp. 37-39: ms QQQQQ,
    em DDDD, ez X, sn XXXXX (hex), fs XX, mb/me XXXXYYYY (2 x 4 hex digits, basic and sub
    range), gt DDD, ve VVMMJJ (VV = 27), and '?' after a setting command answers its limits."""
    reply = pyro.query(command)
    assert reply is not None and re.fullmatch(pattern, reply), reply


@pytest.mark.parametrize("command", [
    "00ez0", "00ez9", "00as0", "00as1", "00lz0", "00lz9", "00la1", "00fh0",
])
def test_impac_settings_answer_ok(pyro, command):
    """Setting commands answer "ok" (manual p. 37-38: ezX 0-9 response time t90, asX 0/1 analog
    output 0-20/4-20 mA, lzX 0-9 clear time of the peak picker)."""
    assert pyro.query(command) == "ok"


def test_impac_sub_range_takes_effect_when_m2_confirms_it(pyro):
    """IGA 6/23 Advanced manual p. 38: 1. AAm1XXXXYYYY, 2. AAm2 'confirms the change'."""
    before = pyro.query("00me")
    assert pyro.query("00m1044C09C4") == "ok"  # 1100-2500 degC
    assert pyro.query("00me") == before  # not yet
    assert pyro.query("00m2") == "ok" and pyro.query("00me") == "044C09C4"
    assert pyro.query("00m2") == "no"  # nothing left to confirm


def test_impac_fahrenheit_laser_and_parameters(pyro):
    """p. 38-39: fhX degC/degF for every temperature; laX; tm/gt DDD; pa 15 digits (emissivity
    %, ez, lz, as, internal temperature, address, baud code, 01000); na the device type."""
    assert pyro.query("00na") == "IGA 6/23 Advanced"
    assert pyro.query("00la") == "0" and pyro.query("00la1") == "ok" and pyro.query("00la") == "1"
    celsius = pyro.query("00gt")
    assert pyro.query("00fh1") == "ok" and pyro.query("00fh") == "1"
    assert int(pyro.query("00gt")) == round(int(celsius) * 9 / 5 + 32) and re.fullmatch(r"\d{3}", pyro.query("00tm"))
    low, high = (int(pyro.query("00mb")[i:i + 4], 16) for i in (0, 4))
    assert (low, high) == (482, 4532)  # 250-2500 degC in degF
    pyro.query("00fh0")
    pyro.query("00em0850")
    pyro.query("00ez2")
    assert re.fullmatch(r"852\d[01]\d{2}\d{2}\d01000", pyro.query("00pa")), pyro.query("00pa")
    assert pyro.query("00pa")[7:10] == "004"  # address 00, baud code 4: 19200


# === Keysight InfiniiVision ================================================================

def test_scope_idn_channel_and_timebase_setup(scope):
    """Channel and timebase setup (Programmer's Guide :CHANnel<n>, :TIMebase, :TRIGger):
    RANGe is 8 vertical divisions of SCALe, timebase RANGe 10 horizontal divisions of SCALe;
    each setting reads back; :CHANnel1? reports the channel setup; a bad channel suffix and an
    unknown header are errors."""
    idn = scope.query("*IDN?").split(",")
    assert len(idn) == 4 and idn[0].upper() in ("KEYSIGHT TECHNOLOGIES", "AGILENT TECHNOLOGIES"), idn
    assert re.fullmatch(r"[DM]SO-?X ?\d{4}[AGT]?", idn[1]), idn
    scope.write("*RST", ":CHAN1:RANG 8", ":CHAN1:OFFS 3", ":CHAN1:COUP DC", ":CHAN1:PROB 1")
    assert scope.query_float(":CHAN1:RANG?") == pytest.approx(8.0)
    assert scope.query_float(":CHANnel1:SCALe?") == pytest.approx(1.0)
    assert scope.query_float(":CHAN1:OFFS?") == pytest.approx(3.0)
    assert scope.query(":CHAN1:COUP?") == "DC"
    assert scope.query_float(":CHAN1:PROB?") == pytest.approx(1.0)
    scope.write(":CHAN2:SCAL 0.5")
    assert scope.query_float(":CHAN2:RANG?") == pytest.approx(4.0)
    summary = scope.query(":CHAN1?").upper()
    assert "RANG" in summary and "OFFS" in summary, summary
    scope.write(":TIM:RANG 0.4", ":TIM:REF LEFT", ":TIM:POS 0.03")
    assert scope.query_float(":TIM:SCAL?") == pytest.approx(0.04)
    assert scope.query_float(":TIMebase:RANGe?") == pytest.approx(0.4)
    assert scope.query_float(":TIM:POS?") == pytest.approx(0.03)
    assert scope.query(":TIM:REF?") == "LEFT"
    scope.write(":TRIG:MODE EDGE", ":TRIG:EDGE:SOUR EXT", ":TRIG:EDGE:LEV 1.5", ":TRIG:EDGE:SLOP POS",
                ":TRIG:SWE NORM")
    assert scope.query(":TRIG:MODE?") == "EDGE"
    assert scope.query(":TRIG:EDGE:SOUR?") == "EXT"
    assert scope.query_float(":TRIG:EDGE:LEV?") == pytest.approx(1.5)
    assert scope.query(":TRIG:EDGE:SLOP?") == "POS"
    assert scope.query(":TRIG:SWE?") == "NORM"
    assert scope.errors() == []
    scope.write(":CHAN9:SCAL 1")
    scope.write(":BOGus:THING 1")
    assert [code for code, _ in scope.errors()] == [-114, -113]


@pytest.fixture(scope="module")
def config():
    return load_config(CONFIG_PATH)[0]


@pytest.fixture(scope="module")
def shot(config):
    """One pulse recorded by the scope, EXT-triggered by the supply's trigger-out, with the
    pyrometer read over serial on the pulse's plateau. Shared by the waveform tests."""
    with FJHTwins(config) as tw:
        supply = ScpiSocket(tw.addresses["supply"])
        scope = ScpiSocket(tw.addresses["digitizer"])
        pyro = Upp(tw.addresses["pyrometer"])
        try:
            result = {"range": measuring_range(pyro)}
            scope.write("*RST", ":CHAN1:RANG 8", ":CHAN1:OFFS 3", ":CHAN1:COUP DC", ":CHAN1:PROB 1",
                        ":TIM:RANG 0.8", ":TIM:REF LEFT", ":TIM:POS 0.07",  # -10 ms .. +790 ms
                        ":TRIG:MODE EDGE", ":TRIG:EDGE:SOUR EXT", ":TRIG:EDGE:LEV 1.5",
                        ":TRIG:EDGE:SLOP POS", ":TRIG:SWE NORM", ":WAV:POIN 4000")
            assert scope.errors() == []
            scope.write(":SINGle")
            time.sleep(0.05)
            result["armed_run"] = scope.query_int(":OPER:COND?")
            result["armed_ter"] = scope.query(":TER?")
            supply.write("*RST", "FUNC CURR", "VOLT:LIM 50", "CURR 0", "DIG:PIN1:FUNC TOUT",
                         "LIST:CURR 14,0", "LIST:DWEL 0.5,0.05", "CURR:MODE LIST", "TRIG:TRAN:SOUR BUS")
            supply.write("LIST:TOUT:BOST 1,0")  # what the manual needs for a trigger-out
            supply.write("*CLS", "OUTP ON", "INIT:TRAN", "*TRG")
            settle(supply)
            time.sleep(0.08)  # on the plateau (the pulse is 0.5 s long)
            result["serial"] = [pyro.query("00ms") for _ in range(2)]
            result["still_running"] = bool(operation(supply) & TRAN_ACTIVE)
            result["ter"] = wait_for(lambda: scope.query(":TER?") in ("+1", "1") or None, 6.0)
            result["ter_again"] = scope.query(":TER?")
            result["stopped"] = wait_for(lambda: not scope.query_int(":OPER:COND?") & SCOPE_RUN, 6.0)
            scope.write(":WAV:SOUR CHAN1", ":WAV:FORM WORD", ":WAV:BYT MSBF", ":WAV:UNS 1")
            result["word_settings"] = [scope.query(q) for q in
                                       (":WAV:SOUR?", ":WAV:FORM?", ":WAV:BYT?", ":WAV:UNS?")]
            result["word_pre"] = scope.query(":WAV:PRE?")
            result["word"] = scope.query_block(":WAV:DATA?")
            scope.write(":WAV:BYT LSBF")
            result["word_lsb_pre"] = scope.query(":WAV:PRE?")
            result["word_lsb"] = scope.query_block(":WAV:DATA?")
            scope.write(":WAV:FORM BYTE")
            result["byte_pre"] = scope.query(":WAV:PRE?")
            result["byte"] = scope.query_block(":WAV:DATA?")
            result["errors"] = scope.errors()
            supply.write("OUTP OFF")
            yield result
        finally:
            supply.close()
            scope.close()
            pyro.close()


def preamble(text: str) -> dict:
    names = ("format", "type", "points", "count", "xincrement", "xorigin", "xreference",
             "yincrement", "yorigin", "yreference")
    values = text.split(",")
    assert len(values) == 10, text
    return {name: float(value) for name, value in zip(names, values)}


def to_volts(pre: dict, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    volts = (codes.astype(float) - pre["yreference"]) * pre["yincrement"] + pre["yorigin"]
    times = (np.arange(len(codes)) - pre["xreference"]) * pre["xincrement"] + pre["xorigin"]
    return times, volts


def test_scope_single_ext_trigger_and_ter(shot):
    """:SINGle arms one acquisition: the scope runs (:OPERegister:CONDition? bit 3, Run) and
    :TER? reads +0 until the EXT trigger (the supply's trigger-out on its digital pin 1, wired
    to EXT in the twins) arrives; :TER? then reads +1 once and is cleared by the read; after
    the record the scope stops (Run bit clear)."""
    assert shot["armed_run"] & SCOPE_RUN
    assert shot["armed_ter"] in ("+0", "0")
    assert shot["ter"], "the EXT trigger from the supply's list never arrived"
    assert shot["ter_again"] in ("+0", "0")
    assert shot["stopped"]
    assert shot["errors"] == []


def test_scope_preamble_fields(shot):
    """:WAVeform:PREamble? -> format (0 BYTE, 1 WORD), type (0 NORMal), points, count (1),
    xincrement, xorigin (time of the first point from the trigger), xreference, yincrement,
    yorigin, yreference. The record spans :TIMebase:RANGe and starts :TIMebase:POSition minus
    the reference point (LEFT = one division from the left edge) from the trigger: -10 ms here."""
    assert shot["word_settings"][0].upper() in ("CHAN1", "CHANNEL1")
    assert shot["word_settings"][1:] == ["WORD", "MSBF", "1"]
    word, byte = preamble(shot["word_pre"]), preamble(shot["byte_pre"])
    assert word["format"] == 1 and byte["format"] == 0
    for pre in (word, byte):
        assert pre["type"] == 0 and pre["count"] == 1
        assert pre["points"] == 4000
        assert pre["xincrement"] * pre["points"] == pytest.approx(0.8, rel=1e-3)
        assert pre["xorigin"] - pre["xreference"] * pre["xincrement"] == pytest.approx(-0.01, abs=2e-4)
        assert pre["yincrement"] > 0
    assert len(shot["word"]) == 2 * word["points"]
    assert len(shot["byte"]) == byte["points"]


def test_scope_word_data_matches_pyrometer_analog_output(shot):
    """:WAV:DATA? in WORD, MSBFirst, unsigned; volts = (code - yreference) * yincrement +
    yorigin (Programmer's Guide :WAVeform:PREamble). Channel 1 sees the pyrometer's 4-20 mA
    output (the measuring range mapped linearly, protocols.md section 3) across the configured
    250 ohm shunt: 1 V (4 mA) while under range before the pulse, on the plateau the value the
    serial 'ms' reading maps to, never outside 1-5 V."""
    pre = preamble(shot["word_pre"])
    times, volts = to_volts(pre, np.frombuffer(shot["word"], dtype=">u2"))
    assert volts.min() > 1.0 - 0.02 and volts.max() < 5.0 + 0.02
    before = times < -0.001
    assert before.sum() > 30
    assert volts[before].mean() == pytest.approx(4e-3 * SHUNT_OHM, abs=0.01)
    # the pulse: up within the first tens of ms, a plateau, down after the 0.5 s step
    plateau = volts[(times > 0.1) & (times < 0.48)]
    assert volts[(times > 0.0) & (times < 0.05)].max() > 2.0
    assert volts[times > 0.6].mean() < plateau.mean() - 0.5
    assert shot["still_running"], "serial readings were not taken during the pulse"
    serial_values = shot["serial"]
    assert all(v is not None and re.fullmatch(r"\d{5}", v) for v in serial_values), serial_values
    assert not {"77770", "88880"} & set(serial_values), serial_values
    celsius = float(np.median([int(v) for v in serial_values])) / 10
    begin, end = shot["range"]
    expected = SHUNT_OHM * (4e-3 + 16e-3 * (celsius - begin) / (end - begin))
    assert plateau.std() < 0.02
    assert plateau.mean() == pytest.approx(expected, abs=0.02)


def test_scope_byte_and_lsbfirst_formats(shot):
    """:WAVeform:FORMat BYTE (one unsigned byte per point) and :WAVeform:BYTeorder LSBFirst give
    the same volts as WORD MSBFirst, within one BYTE step."""
    word_pre, byte_pre = preamble(shot["word_pre"]), preamble(shot["byte_pre"])
    _, word = to_volts(word_pre, np.frombuffer(shot["word"], dtype=">u2"))
    _, word_lsb = to_volts(preamble(shot["word_lsb_pre"]), np.frombuffer(shot["word_lsb"], dtype="<u2"))
    _, byte = to_volts(byte_pre, np.frombuffer(shot["byte"], dtype="u1"))
    assert np.allclose(word_lsb, word, atol=1e-9)
    assert np.max(np.abs(byte - word)) <= byte_pre["yincrement"] + word_pre["yincrement"]
    assert 0.9 < byte.min() and byte.max() < 5.1


def test_scope_after_rst_runs_and_gives_data_in_every_format_with_an_8_digit_header(scope):
    """3000 X-Series Programmer's Guide: after *RST the scope runs in auto sweep, so :WAV:DATA?
    answers without :DIGitize; blocks are #8 + 8 digits; signed BYTE and WORD data read the same
    volts as unsigned through the preamble (the cold pyrometer's 4 mA through 250 ohm: 1.0 V)."""
    scope.write("*RST", ":CHAN1:SCAL 1", ":CHAN1:OFFS 2", ":TIM:SCAL 1e-3")
    assert int(scope.query(":OPER:COND?")) & SCOPE_RUN
    assert [scope.query(f":CHAN{n}:DISP?") for n in range(1, 5)] == ["1", "0", "0", "0"]
    for fmt, unsigned, dtype in (("BYTE", 1, "u1"), ("BYTE", 0, "i1"), ("WORD", 1, ">u2"), ("WORD", 0, ">i2")):
        scope.write(f":WAV:FORM {fmt}", f":WAV:UNS {unsigned}", ":WAV:BYT MSBF", ":WAV:POIN 1000")
        scope.write(":WAV:DATA?")
        scope._fill(10)
        assert scope.buffer[:2] == b"#8", scope.buffer[:10]
        body = scope.query_block("")  # the block already asked for
        pre = preamble(scope.query(":WAV:PRE?"))
        _, volts = to_volts(pre, np.frombuffer(body, dtype=dtype))
        assert np.median(volts) == pytest.approx(1.0, abs=0.05), (fmt, unsigned)
    scope.write(":WAV:FORM ASC")
    scope.write(":WAV:DATA?")
    scope._fill(10)
    assert scope.buffer[:2] == b"#8"
    scope.query_block("")
    assert scope.errors() == []


def test_scope_acquire_type_bandwidth_limit_points_mode_and_digitize_sources(scope):
    scope.write(":ACQ:TYPE HRES", ":CHAN2:BWL ON", ":WAV:POIN:MODE RAW", ":DIG CHAN1,CHAN2")
    assert (scope.query(":ACQ:TYPE?"), scope.query(":CHAN2:BWL?"), scope.query(":WAV:POIN:MODE?")) == \
        ("HRES", "1", "RAW")
    assert scope.errors() == []
    scope.write(":DIG CHAN9")
    assert scope.errors()[0][0] in (-224, -114)


def test_scope_arm_event_scaling_queries_and_channel_summaries(scope):
    """:AER? is 1 once the trigger is armed (read and cleared, and by *CLS); :OPERegister bit 5
    (Wait Trig) is set while it waits; each preamble value has its own query; the preamble's
    type and count follow :ACQuire:TYPE and :COUNt; :TIMebase? sums the time base up."""
    scope.write("*RST", ":STOP", ":TRIG:SWE NORM", ":TRIG:EDGE:SOUR EXT", ":TIM:SCAL 1e-4")
    scope.query(":AER?")  # the auto sweep's armings since *RST: read and cleared
    scope.write(":SING")
    assert wait_for(lambda: scope.query(":AER?") == "+1" or None, 5.0)
    assert scope.query(":AER?") == "+0"  # read: cleared
    assert scope.query_int(":OPER:COND?") & (SCOPE_RUN | 32) == SCOPE_RUN | 32
    scope.write(":SING")
    assert wait_for(lambda: scope.query_int(":OPER:COND?") & 32 or None, 5.0)
    scope.write("*CLS")
    assert scope.query(":AER?") == "+0"
    scope.write(":TRIG:FORC")
    assert wait_for(lambda: not scope.query_int(":OPER:COND?") & (SCOPE_RUN | 32) or None, 5.0)
    scope.write(":ACQ:TYPE AVER", ":ACQ:COUN 16", ":WAV:POIN 1000")
    pre = scope.query(":WAV:PRE?").split(",")
    assert pre[1:4:2] == ["2", "16"] and scope.query(":ACQ:POIN?") == pre[2] == "1000"
    names = ("XINC", "XOR", "XREF", "YINC", "YOR", "YREF")
    assert [scope.query(f":WAV:{name}?") for name in names] == pre[4:]
    assert scope.query(":TIM?") == f":TIM:MODE MAIN;REF CENT;MAIN:RANG {float(pre[4]) * 1000:+.8E};POS +0.00000000E+00"
    scope.write(":CHAN2:IMP FIFT", ":TRIG:SLOP EITH")
    assert (scope.query(":CHAN1:IMP?"), scope.query(":CHAN2:IMP?"),
            scope.query(":TRIG:SLOP?")) == ("ONEM", "FIFT", "EITH")
    assert scope.errors() == []


def test_scope_segmented_memory_takes_its_count_and_gives_one_or_all(scope):
    """3000T guide, :ACQuire:SEGMented and :WAVeform:SEGMented: one segment per trigger, then
    stopped (under :RUN too); INDex selects, TTAG? times from the first, ALL ON gives every
    segment; averaging is refused in segmented mode; *OPT? names SGM."""
    assert "SGM" in scope.query("*OPT?").split(",")
    scope.write("*RST", ":ACQ:TYPE AVER", ":ACQ:MODE SEGM")
    assert [code for code, _ in scope.errors()] == [-221]
    scope.write(":ACQ:TYPE NORM", ":ACQ:MODE SEGM", ":ACQ:SEGM:COUN 3", ":ACQ:TYPE AVER")
    assert [code for code, _ in scope.errors()] == [-221]
    scope.write(":TRIG:SWE NORM", ":TRIG:EDGE:SOUR EXT", ":TIM:SCAL 1e-4", ":WAV:POIN 500", ":WAV:FORM BYTE")
    scope.write(":CHAN1:SCAL 0.1", ":CHAN1:OFFS 3")  # the cold pyrometer's 1 V: far below the screen
    for run in (":SING", ":RUN"):
        scope.write(run)
        for _ in range(5):  # more triggers than segments
            assert wait_for(lambda: scope.query_int(":OPER:COND?") & 32 or scope.query_int(":OPER:COND?") == 0 or None,
                            5.0)
            scope.write(":TRIG:FORC")
        assert wait_for(lambda: scope.query(":WAV:SEGM:COUN?") == "3" or None, 5.0)
        assert scope.query_int(":OPER:COND?") & SCOPE_RUN == 0, run  # all taken: stopped
        scope.write(":ACQ:SEGM:IND 3")
        assert float(scope.query(":WAV:SEGM:TTAG?")) > 0
        one = scope.query_block(":WAV:DATA?")
        scope.write(":WAV:SEGM:ALL ON")
        every = scope.query_block(":WAV:DATA?")
        assert scope.query(":WAV:SEGM:ALL?") == "1" and scope.query(":WAV:PRE?").split(",")[2] == "500"
        assert len(one) == 500 and len(every) == 1500 and every[1000:] == one
        assert set(every) == {1}  # clipped low: code 1; 0 is a hole, never data
        scope.write(":WAV:SEGM:ALL OFF")
    assert scope.errors() == []
