"""TDK-Lambda Genesys: driver and device against the twin over a pseudo-terminal, then the twin
as an independent client sees it (plain pyserial, nothing from devices/), checked against the
"Genesys 3300W Technical Manual", ch. 7 (RS232 & RS485 remote control) and protocols.md section 2.

Reactor time runs at wall speed here, so every test is short.
"""
import re
import time

import pytest
import serial

from quenchlab.clock import ReactorClock
from quenchlab.devices.genesys_device import GenesysSupply
from quenchlab.devices.genesys_driver import Genesys, GenesysError
from quenchlab.errors import InstrumentError
from quenchlab.sim.fjh_world import FJHWorld
from quenchlab.sim.genesys_twin import GenesysTwin, Rating
from quenchlab.sim.samples import PRESETS
from quenchlab.sim.servers import PtyServer

UNIT = 6
# STAT? and FLT? bits (manual 7.11, status and fault condition register tables)
CV, CC, NFLT, FLT = 1, 2, 4, 8
AC_FAIL, OVER_TEMPERATURE, FOLDBACK, OVER_VOLTAGE = 2, 4, 8, 16


def make_world() -> FJHWorld:
    return FJHWorld(PRESETS["thin_film"], ReactorClock())


class Bus:
    """Several units on one RS-485 line: each hears every message, their replies share the wire."""

    terminator = b"\r"

    def __init__(self, *twins):
        self.twins, self.baudrate = twins, twins[0].baudrate

    def handle(self, message: bytes) -> bytes | None:
        return b"".join(reply for twin in self.twins if (reply := twin.handle(message))) or None


class ServiceRequestFirst:
    """A unit that sends a service request (`!nn`) just before its next reply."""

    def __init__(self, twin):
        self.twin, self.terminator, self.baudrate = twin, twin.terminator, twin.baudrate
        self.pending = True

    def handle(self, message: bytes) -> bytes | None:
        reply = self.twin.handle(message)
        if reply and self.pending:
            self.pending = False
            return b"!06\r" + reply
        return reply


class GenLine:
    """A plain pyserial client of the GEN language (8N1, CR-terminated)."""

    def __init__(self, path: str, baudrate: int = 9600, timeout: float = 0.15):
        self.port = serial.Serial(path, baudrate, bytesize=8, parity=serial.PARITY_NONE, stopbits=1,
                                  timeout=timeout)

    def ask(self, command: str) -> str | None:
        """The reply without its CR, or None when no unit answers."""
        self.port.reset_input_buffer()
        self.port.write(command.encode("ascii") + b"\r")
        reply = self.port.read_until(b"\r")
        if not reply:
            return None
        assert reply.endswith(b"\r"), f"reply not terminated by CR: {reply!r}"
        return reply[:-1].decode("ascii")

    def ok(self, *commands: str) -> None:
        for command in commands:
            assert self.ask(command) == "OK", command

    def number(self, command: str) -> float:
        return float(self.ask(command))

    def hex(self, command: str) -> int:
        reply = self.ask(command)
        assert re.fullmatch(r"[0-9A-F]{2}", reply), reply
        return int(reply, 16)

    def close(self) -> None:
        self.port.close()


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def twin(world):
    return GenesysTwin(world, address=UNIT)


@pytest.fixture
def supply(server):
    driver = Genesys(server.path, unit=UNIT, timeout=0.1)
    yield driver
    driver.close()


@pytest.fixture
def line(server):
    client = GenLine(server.path)
    assert client.ask(f"ADR {UNIT}") == "OK"
    yield client
    client.close()


# === driver and device =====================================================================

def test_identifies_and_reports_its_rating(supply, twin):
    assert supply.identify() == "LAMBDA,GEN60-55"
    assert supply.rating() == (60.0, 55.0)
    supply.set_remote("LLO")
    assert supply.remote_mode() == "LLO"
    assert twin.selected


def test_setpoints_read_back_and_the_output_starts_off(supply):
    supply.set_voltage(12.5)
    supply.set_current(3.25)
    assert (supply.voltage_setting(), supply.current_setting()) == (12.5, 3.25)
    readings = supply.readings()
    assert readings["voltage_setting"] == 12.5 and readings["current_setting"] == 3.25
    assert readings["ovp"] == 66.0 and readings["uvl"] == 0.0
    assert supply.measure() == (0.0, 0.0)
    assert supply.mode() == "OFF" and not supply.output_enabled()


def test_current_limited_then_voltage_limited_on_the_sample(supply, world):
    start = world.temperature
    supply.set_voltage(20)
    supply.set_current(3)
    supply.output_on()
    time.sleep(0.05)
    volts, amps = supply.measure()
    assert supply.mode() == "CC" and amps == pytest.approx(3.0, abs=2e-3) and 0.5 < volts < 20
    assert world.temperature > start + 100
    supply.set_voltage(1)
    supply.set_current(10)
    time.sleep(0.02)
    volts, amps = supply.measure()
    assert supply.mode() == "CV" and volts == pytest.approx(1.0, abs=2e-3) and 0 < amps < 10
    supply.output_off()
    assert supply.measure() == (0.0, 0.0)


@pytest.mark.parametrize("steps, action, code, meaning", [
    ([], lambda s: s.set_voltage(70), "E01", "above 105 % of the rating"),
    (["set_ovp 10"], lambda s: s.set_voltage(9.6), "E01", "95 % of the OVP"),
    (["set_voltage 5", "set_uvl 4"], lambda s: s.set_voltage(3), "E02", "below the UVL"),
    (["set_voltage 20"], lambda s: s.set_ovp(20.5), "E04", "OVP setting below"),
    (["set_voltage 5"], lambda s: s.set_uvl(6), "E06", "UVL setting above"),
    ([], lambda s: s.set_current(60), "C05", "out of range"),
])
def test_error_replies_name_the_code_its_meaning_and_the_command(supply, steps, action, code, meaning):
    for step in steps:
        method, value = step.split()
        getattr(supply, method)(float(value))
    with pytest.raises(GenesysError, match=rf"supply at /dev/pts/\d+ ADR 6: answered {code} \(.*{meaning}") as error:
        action(supply)
    assert error.value.code == code


def test_non_finite_numbers_are_refused_before_sending(supply, twin):
    received = twin.received
    for value in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="finite"):
            supply.set_voltage(value)
        with pytest.raises(ValueError, match="finite"):
            supply.set_ovp(value)
    with pytest.raises(ValueError, match="0-25.5 s"):
        supply.set_foldback_delay(float("nan"))
    assert twin.received == received


def test_ovp_trip_shuts_the_output_down_until_output_on(supply, twin):
    supply.set_voltage(2)
    supply.set_current(5)
    supply.output_on()
    twin.inject("ovp")
    assert supply.faults() == ["over-voltage"]
    assert supply.output_state() and not supply.output_enabled()  # OUT? alone would mislead
    assert supply.measure()[1] == 0.0
    supply.output_on()
    assert supply.faults() == [] and supply.output_enabled()
    supply.output_off()


def test_a_persistent_fault_refuses_output_on_and_safe_start_keeps_it_off(supply, twin):
    supply.set_voltage(2)
    supply.set_current(5)
    supply.output_on()
    twin.inject("over_temperature")
    assert supply.faults() == ["over-temperature"] and supply.mode() == "OFF"
    with pytest.raises(GenesysError, match=r"E07 \(the output cannot be turned on during a fault shutdown\)"):
        supply.output_on()
    twin.inject("recover")
    assert supply.faults() == [] and not supply.output_state()  # safe-start: stays off
    supply.output_on()
    assert supply.output_enabled()
    supply.output_off()


def test_fault_events_latch_until_read(supply, twin):
    supply.enable_fault_events()
    twin.inject("ac_fail")
    twin.inject("recover")
    assert supply.faults() == []
    assert supply.fault_events() == ["AC fail"]
    assert supply.fault_events() == []  # reading cleared it
    twin.inject("ovp")
    supply.clear()
    assert supply.fault_events() == [] and supply.faults() == ["over-voltage"]


def test_output_off_is_confirmed_by_readback(supply, twin, monkeypatch):
    supply.set_voltage(1)
    supply.set_current(2)
    supply.output_on()
    supply.output_off()
    assert not twin.output
    supply.output_on()
    monkeypatch.setattr(twin, "_cmd_out", lambda argument: None)  # answers OK, does nothing
    with pytest.raises(InstrumentError, match=r"still reads on after OUT 0 \(command 'OUT 0'\)"):
        supply.output_off()


def test_foldback_and_protection_settings_read_back(supply):
    supply.set_voltage(20)
    supply.set_ovp(30)
    supply.set_uvl(2)
    supply.set_foldback(True)
    supply.set_foldback_delay(0.3)
    assert supply.protection_settings() == pytest.approx(
        {"ovp": 30.0, "uvl": 2.0, "foldback": 1.0, "foldback_delay": 0.3})
    supply.set_ovp_max()
    supply.reset()
    assert supply.protection_settings() == pytest.approx(
        {"ovp": 66.0, "uvl": 0.0, "foldback": 0.0, "foldback_delay": 0.3})  # FBD survives RST


def test_a_unit_not_selected_does_not_answer(server):
    with pytest.raises(InstrumentError, match=r"supply at /dev/pts/\d+ ADR 7: no answer, even after "
                                              r"selecting unit 7 again with ADR"):
        Genesys(server.path, unit=7, timeout=0.05, retries=0)


def test_the_driver_selects_its_unit_again_when_the_line_lost_it(supply, twin):
    supply.io.write("ADR 9")  # behind the driver's back: no unit is selected now
    deadline = time.monotonic() + 2
    while twin.selected:
        assert time.monotonic() < deadline, "the twin never heard ADR 9"
        time.sleep(0.002)
    assert supply.voltage_setting() == 0.0
    assert twin.selected


def test_two_units_share_one_line():
    first, second = GenesysTwin(make_world(), address=6), GenesysTwin(make_world(), address=7)
    server = PtyServer(Bus(first, second))
    a = Genesys(server.path, unit=6, name="left", timeout=0.1)
    b = Genesys(server.path, unit=7, name="right", timeout=0.1)
    try:
        assert a.io is b.io
        a.set_voltage(5)
        b.set_voltage(7)
        assert (a.voltage_setting(), b.voltage_setting()) == (5.0, 7.0)
        assert (first.pv, second.pv) == (5.0, 7.0)
        a.close()
        assert b.voltage_setting() == 7.0  # the line stays open for the other unit
    finally:
        b.close()
        server.close()


def test_a_service_request_before_the_reply_is_skipped(world):
    server = PtyServer(ServiceRequestFirst(GenesysTwin(world, address=UNIT)))
    driver = Genesys(server.path, unit=UNIT, timeout=0.1)
    try:
        assert driver.identify() == "LAMBDA,GEN60-55"
    finally:
        driver.close()
        server.close()


def test_wrong_baud_rate_gets_no_reply(server):
    with pytest.raises(InstrumentError, match="no answer"):
        Genesys(server.path, unit=UNIT, baudrate=19200, timeout=0.05, retries=0)
    with pytest.raises(ValueError, match="baud"):
        Genesys(server.path, unit=UNIT, baudrate=115200)


def test_device_reads_sets_and_switches_off_when_staged(supply, twin):
    device = GenesysSupply(supply, name="supply")
    assert device.identity.get() == "LAMBDA,GEN60-55" and device.ovp.get() == 66.0
    device.voltage.set(10).wait(timeout=5)
    device.current.set(2).wait(timeout=5)
    supply.output_on()
    time.sleep(0.02)
    device.trigger().wait(timeout=5)
    reading = device.read()
    assert reading["supply_measured_current"]["value"] == pytest.approx(2.0, abs=2e-3)
    assert reading["supply_regulation"]["value"] == "CC" and reading["supply_output"]["value"]
    assert device.describe()["supply_measured_voltage"]["units"] == "V"
    device.stage()
    assert not twin.output
    device.unstage()


# === the twin as a plain pyserial client sees it ===========================================

def test_gen_no_unit_answers_before_adr_and_only_the_selected_one_after(server):
    """7.5/7.7.3: ADR n (0-30) selects the unit that answers; the others stay silent. 7.7.1:
    commands are case-insensitive and a CR alone answers OK."""
    client = GenLine(server.path)
    try:
        assert client.ask("IDN?") is None
        assert client.ask("ADR 6") == "OK"
        assert client.ask("") == "OK"
        assert client.ask("idn?") == "LAMBDA,GEN60-55"
        assert client.ask("ADR 31") == "C05"  # still selected: it answers the error
        assert client.ask("ADR 5") is None  # another unit now
        assert client.ask("IDN?") is None
        assert client.ask("adr 6") == "OK"
    finally:
        client.close()


def test_gen_units_on_one_line_answer_one_at_a_time():
    """RS-485 multi-drop (7.5): after ADR n only unit n answers, so one reply reaches the host."""
    server = PtyServer(Bus(GenesysTwin(make_world(), address=6, serial="A1"),
                           GenesysTwin(make_world(), address=7, serial="B2")))
    client = GenLine(server.path)
    try:
        assert client.ask("ADR 7") == "OK"
        assert client.ask("SN?") == "B2"
        time.sleep(0.05)
        assert client.port.in_waiting == 0  # no second reply
        assert client.ask("ADR 6") == "OK" and client.ask("SN?") == "A1"
    finally:
        client.close()
        server.close()


def test_gen_identity_and_reading_formats(line):
    """7.7.4: IDN? LAMBDA,GENX-Y; DATE? yyyy/mm/dd. 7.7.5: MV?/MC? in five digits; DVC? six fields."""
    assert line.ask("IDN?") == "LAMBDA,GEN60-55"
    assert re.fullmatch(r"\d{4}/\d\d/\d\d", line.ask("DATE?"))
    assert line.ask("SN?") and line.ask("REV?")
    assert re.fullmatch(r"\d\d\.\d{3}", line.ask("MV?"))
    assert re.fullmatch(r"\d\d\.\d{3}", line.ask("MC?"))
    assert len(line.ask("DVC?").split(",")) == 6
    assert re.fullmatch(r"MV\([\d.]+\),PV\([\d.]+\),MC\([\d.]+\),PC\([\d.]+\),SR\([0-9A-F]{2}\),FR\([0-9A-F]{2}\)",
                        line.ask("STT?"))


def test_gen_rating_is_a_constructor_argument(world):
    """7.7.4 IDN? names the model's rating; MV?/MC? keep five digits on its scale."""
    twin = GenesysTwin(world, rating=Rating(volts=8, amps=400, ovp_min=0.5, ovp_max=10, uvl_max=7.6))
    server = PtyServer(twin)
    client = GenLine(server.path)
    try:
        client.ok("ADR 6")
        assert client.ask("IDN?") == "LAMBDA,GEN8-400"
        assert (client.ask("MV?"), client.ask("MC?")) == ("0.0000", "000.00")
        assert client.ask("PV 8.5") == "E01" and client.ask("OVP 10.5") == "C05"
    finally:
        client.close()
        server.close()


def test_gen_settings_answer_ok_and_read_back_the_exact_string(line):
    """7.7.5: every setting answers OK; PV?, PC?, OVP?, UVL? return the exact string sent."""
    line.ok("PV 012.50", "PC 3", "OVP 30.0", "UVL 01", "RMT REM", "FLD ON", "FBD 3", "AST OFF")
    assert [line.ask(q) for q in ("PV?", "PC?", "OVP?", "UVL?")] == ["012.50", "3", "30.0", "01"]
    assert [line.ask(q) for q in ("RMT?", "FLD?", "FBD?", "AST?")] == ["REM", "ON", "3", "OFF"]
    line.ok("RMT 0")
    assert line.ask("RMT?") == "LOC" and line.hex("STAT?") & 128  # LCL bit


@pytest.mark.parametrize("setup, command, code", [
    ([], "PV 63.1", "E01"),  # above 105 % of the 60 V rating
    (["OVP 10"], "PV 9.6", "E01"),  # above 95 % of OVP
    (["PV 5", "UVL 4"], "PV 3", "E02"),
    (["PV 20"], "OVP 20.9", "E04"),  # below 105 % of PV
    ([], "OVP 4", "E04"),  # below the model's minimum
    (["PV 5"], "UVL 5.5", "E06"),
    ([], "XYZ", "C01"),
    ([], "PV12", "C01"),  # a space must separate command and argument
    ([], "PV", "C02"),
    ([], "PV abc", "C03"),
    ([], "PV 1234567890123", "C03"),  # more than 12 characters
    ([], "OUT MAYBE", "C03"),
    ([], "PC 58", "C05"),  # above 105 % of 55 A
    ([], "OVP 67", "C05"),  # above the 66 V maximum
])
def test_gen_error_codes(line, setup, command, code):
    """7.6: programming errors E01 E02 E04 E06 and command errors C01-C05 replace OK, and the
    setting stays unchanged."""
    line.ok(*setup)
    before = line.ask("DVC?")
    assert line.ask(command) == code
    assert line.ask("DVC?") == before


def test_gen_checksum(line):
    """7.5: an optional $hh (sum of the characters modulo 256) ends a command; the reply then
    carries one too; a wrong one answers C04."""
    reply = line.ask("STT?$3A")  # 'S'+'T'+'T'+'?' = 0x13A
    body, _, checksum = reply.rpartition("$")
    assert body.startswith("MV(") and checksum == f"{sum(body.encode()) % 256:02X}"
    assert line.ask("STT?$3B").startswith("C04$")


def test_gen_cv_cc_mode_follows_the_sample(line, world):
    """7.7.5 MODE? and 7.11 STAT? bits 0/1: with PC below PV/R the supply limits the current
    (CC, MC? = PC, MV? = I R); with PC above it, it holds the voltage (CV, MV? = PV). SENA
    chooses the status changes SEVE? latches."""
    start = world.temperature
    line.ok("SENA 02", "PV 20", "PC 3", "OUT 1")
    time.sleep(0.05)
    assert line.ask("MODE?") == "CC" and line.hex("STAT?") & (CV | CC) == CC
    assert line.hex("SEVE?") == CC and line.hex("SEVE?") == 0  # the CC event, cleared by reading
    assert line.number("MC?") == pytest.approx(3.0, abs=2e-3)
    assert 0.5 < line.number("MV?") < 20
    assert world.temperature > start + 100
    line.ok("PV 1", "PC 10")
    time.sleep(0.02)
    assert line.ask("MODE?") == "CV" and line.hex("STAT?") & (CV | CC) == CV
    assert line.number("MV?") == pytest.approx(1.0, abs=2e-3)
    assert 0 < line.number("MC?") < 10
    line.ok("OUT 0")


def test_gen_ovp_trip_latches_until_out_1(line, twin):
    """7.11 fault table: an OVP shutdown sets FLT? bit 4 and holds the output off (MODE? OFF)
    until OUT 1 turns the output on again; OUT 0 alone does not clear it."""
    line.ok("PV 1", "PC 10", "OUT 1")
    twin.inject("ovp")
    assert line.hex("FLT?") == OVER_VOLTAGE
    assert line.ask("MODE?") == "OFF" and line.number("MC?") == 0.0
    assert line.ask("OUT?") == "ON"  # the programmed state
    time.sleep(0.05)
    assert line.hex("FLT?") == OVER_VOLTAGE  # latched
    line.ok("OUT 0")
    assert line.hex("FLT?") == OVER_VOLTAGE
    line.ok("OUT 1")
    time.sleep(0.02)
    assert line.hex("FLT?") == 0 and line.ask("MODE?") == "CV" and line.number("MC?") > 0.1
    line.ok("OUT 0")


def test_gen_fault_register_events_and_e07(line, twin):
    """7.11: FLT? shows faults present; FENA chooses which latch into FEVE? (cleared by the
    reading); STAT? NFLT clears while an enabled fault is present, FLT is set while FEVE holds
    an event. 7.6 E07: OUT 1 during an AC-fail or over-temperature shutdown. Ch. 5: after the
    cause goes, safe-start (AST OFF) keeps the output off, auto-restart (AST ON) resumes it."""
    line.ok("FENA 06", "PV 1", "PC 10", "OUT 1")
    assert line.hex("FENA?") == AC_FAIL | OVER_TEMPERATURE
    twin.inject("ac_fail")
    assert line.hex("FLT?") == AC_FAIL
    assert line.hex("STAT?") & (NFLT | FLT) == FLT
    assert line.ask("OUT 1") == "E07"
    twin.inject("recover")
    assert line.hex("FLT?") == 0 and line.ask("OUT?") == "OFF"  # safe-start
    assert line.hex("FEVE?") == AC_FAIL and line.hex("FEVE?") == 0
    assert line.hex("STAT?") & (NFLT | FLT) == NFLT
    line.ok("AST ON", "OUT 1")
    twin.inject("over_temperature")
    twin.inject("recover")
    time.sleep(0.02)
    assert line.ask("OUT?") == "ON" and line.ask("MODE?") == "CV"  # auto-restart
    twin.inject("ovp")  # not enabled in FENA: no event
    assert line.hex("FLT?") == OVER_VOLTAGE and line.hex("FEVE?") == OVER_TEMPERATURE
    line.ok("CLS")
    assert line.hex("FEVE?") == 0


def test_gen_output_off_is_confirmed_by_readback(line):
    """7.7.5: after OUT 0, OUT? reads OFF, MODE? OFF, no current flows and STAT? has neither CV
    nor CC."""
    line.ok("PV 20", "PC 3", "OUT 1")
    time.sleep(0.02)
    assert line.number("MC?") > 2.9
    line.ok("OUT 0")
    time.sleep(0.01)
    assert line.ask("OUT?") == "OFF" and line.ask("MODE?") == "OFF"
    assert line.number("MC?") == 0.0 and line.number("MV?") == 0.0
    assert line.hex("STAT?") & (CV | CC) == 0


def test_gen_foldback_shuts_down_in_cc(line):
    """7.7.5 FLD/FBD: armed foldback shuts the output down once the supply has been in CC for
    the foldback delay (FLT? bit 3); OUT 1 releases it; FLD OFF cancels it."""
    line.ok("FLD ON", "FBD 3", "PV 20", "PC 3", "OUT 1")  # standard delay + 0.3 s
    assert line.hex("STAT?") & 32  # FDE
    time.sleep(0.1)
    assert line.hex("FLT?") == 0  # within the delay
    time.sleep(0.6)
    assert line.hex("FLT?") == FOLDBACK and line.ask("MODE?") == "OFF"
    line.ok("FLD OFF")
    assert line.hex("FLT?") == 0
    line.ok("OUT 1")
    time.sleep(0.4)
    assert line.ask("MODE?") == "CC" and line.hex("FLT?") == 0
    line.ok("OUT 0")


def test_gen_rst_brings_the_safe_state(line):
    """7.7.3 RST: output off, PV and PC zero, OVP maximum, UVL zero, foldback and auto-restart
    off, remote."""
    line.ok("PV 10", "PC 2", "OVP 20", "UVL 1", "FLD ON", "AST ON", "RMT LOC", "OUT 1", "RST")
    assert line.ask("OUT?") == "OFF" and line.ask("MODE?") == "OFF"
    values = [float(v) for v in line.ask("DVC?").split(",")]
    assert values[1] == 0.0 and values[3] == 0.0 and values[4] == 66.0 and values[5] == 0.0
    assert [line.ask(q) for q in ("FLD?", "AST?", "RMT?")] == ["OFF", "OFF", "REM"]


def test_gen_wrong_baud_rate_gets_no_reply(server):
    """7.5: the unit listens at its configured rate; at another rate it hears only noise."""
    client = GenLine(server.path, baudrate=19200)
    try:
        assert client.ask("ADR 6") is None
    finally:
        client.close()


def test_gen_sav_rcl_repeat_and_option_queries(line):
    """7.7.3: SAV keeps the settings and RCL brings them back; backslash repeats the last command,
    answering what it answers; MDAV? (multi-drop option) and MS? (master/slave)."""
    line.ok("PV 5", "PC 2", "SAV", "PV 7", "PC 3")
    assert line.ask("PV?") == "7"
    line.ok("RCL")
    assert line.ask("\\") == "OK"  # RCL again
    assert (line.ask("PV?"), line.ask("PC?")) == ("5", "2")
    assert line.ask("\\") == "2"  # PC? again
    line.ok("PV 4")
    assert line.ask("MV?") is not None and line.ask("\\") == line.ask("MV?")
    assert line.ask("MDAV?") == "0" and line.ask("MS?") == "1"
