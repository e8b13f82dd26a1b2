"""NE-1000 syringe pump: driver against its twin over a pseudo-terminal, on a 50x reactor clock."""
import time

import pytest

from conftest import wait_until
from quenchlab.clock import ReactorClock
from quenchlab.devices.ne1000_device import SyringePump
from quenchlab.devices.ne1000_driver import (
    NE1000,
    PumpAlarm,
    crc16,
    fit_units,
    format_number,
    frame,
    reply_complete,
    unframe,
    unpack,
)
from quenchlab.devices.transport import SerialTransport
from quenchlab.errors import InstrumentError
from quenchlab.sim.aerosol_world import AerosolWorld, Precursor
from quenchlab.sim.ne1000_twin import NE1000Twin
from quenchlab.sim.ne1000_twin import _crc as twin_crc
from quenchlab.sim.servers import PtyServer

SPEED = 50  # reactor seconds per wall second
MAX_RATE = 1699 / 60  # mL/min with a 60 mL syringe (26.59 mm), from the manual's specifications


@pytest.fixture
def bench():
    world = AerosolWorld({1: Precursor("A")}, ReactorClock(speed=SPEED))
    twin = NE1000Twin(world, diameter=26.59, content=60.0)  # a full 60 mL syringe
    server = PtyServer(twin)
    yield world, twin, server
    server.close()


@pytest.fixture
def pump(bench):
    driver = NE1000(bench[2].path, safe_mode=120, timeout=0.2)
    yield driver
    driver.close()



def diameter_whose_crc_holds(byte: int, template: str) -> float:
    """A syringe diameter whose packet `template.format(d)` has `byte` in its CRC."""
    return next(d / 100 for d in range(1000, 3000)
                if byte in crc16(template.format(d / 100).encode()).to_bytes(2, "big"))


# --- framing ---------------------------------------------------------------------------
def test_safe_mode_framing_matches_the_manual_example_and_round_trips():
    assert frame(b"SAF0") == b"\x02\x08SAF0\x55\x43\x03"  # the packet printed in 10.2.2
    assert twin_crc(b"SAF0") == b"\x55\x43"  # the twin's own CRC agrees with the manual too
    packet = frame(b"0RAT5.000MM")
    assert packet[1] == len(packet) - 1 and unframe(packet) == b"0RAT5.000MM"
    with pytest.raises(ValueError, match="CRC"):
        unframe(packet[:3] + b"1" + packet[4:])


def test_a_reply_is_complete_only_at_its_length_even_with_etx_in_its_crc():
    answered = diameter_whose_crc_holds(0x03, "00S{:.2f}")
    packet = frame(f"00S{answered:.2f}".encode())
    assert 0x03 in packet[-3:-1]
    assert [reply_complete(packet[:n]) for n in range(len(packet) + 1)] == [False] * len(packet) + [True]
    assert reply_complete(b"\x0200SNE1000V3.928\x03") and not reply_complete(b"\x0200SNE1000")


@pytest.mark.parametrize("byte", [0x0D, 0x03])
def test_twin_splits_packets_by_length_when_a_crc_byte_is_cr_or_etx(bench, byte):
    twin = bench[1]
    command = f"0DIA{diameter_whose_crc_holds(byte, '0DIA{:.2f}'):.2f}".encode()
    packet = frame(command)
    assert byte in packet[-3:-1]
    messages, rest = twin.split(packet + frame(b"0VER") + b"0STP\r" + packet[:5])
    assert messages == [packet, frame(b"0VER"), b"0STP"] and rest == packet[:5]


def test_safe_mode_end_to_end_with_cr_and_etx_inside_crcs(pump, bench):
    assert bench[1].safe == 120
    sent = diameter_whose_crc_holds(0x0D, "0DIA{:.2f}")  # CR in the command's CRC
    pump.set_diameter(sent)
    assert pump.diameter() == sent
    answered = diameter_whose_crc_holds(0x03, "00S{:.2f}")  # ETX in the reply's CRC
    pump.set_diameter(answered)
    assert pump.diameter() == answered


def test_corrupted_packet_is_answered_com(pump):
    packet = frame(b"0RUN")
    corrupted = packet[:-3] + bytes([packet[-3] ^ 0xFF]) + packet[-2:]
    assert unpack(pump.io.exchange(corrupted, reply_complete, "0RUN")) == "00S?COM"
    assert pump.status() == "stopped"


def test_plain_text_in_safe_mode_is_not_honoured(bench, pump):
    pump.set_rate(6.0)
    with pytest.raises(InstrumentError, match="no complete reply"):
        pump.io.exchange(b"0RUN\r", reply_complete, "0RUN")
    assert bench[1].status == "S"
    assert pump.status() == "stopped"


# --- basic mode and the power-on alarm ---------------------------------------------------
def test_fresh_pump_reports_its_power_on_alarm_once_in_basic_mode(bench):
    line = SerialTransport("pump", bench[2].path, baudrate=9600, timeout=0.2)
    try:
        assert line.exchange(b"0VER\r", reply_complete, "0VER") == b"\x0200A?R\x03"
        assert line.exchange(b"0 ver\r", reply_complete, "0VER") == b"\x0200SNE1000V3.928\x03"
        assert line.exchange(b"0XYZ\r", reply_complete, "0XYZ") == b"\x0200S?\x03"
    finally:
        line.close()


def test_basic_mode_driver(bench):
    driver = NE1000(bench[2].path, safe_mode=0, timeout=0.2)
    try:
        assert bench[1].safe == 0
        assert driver.version() == "NE1000V3.928"
        driver.set_rate(0.05)
        assert driver.rate() == pytest.approx(0.05)
        driver.set_volume(0.012)
        assert driver.volume() == pytest.approx(0.012)
        driver.enable_safe_mode(30)
        assert bench[1].safe == 30 and driver.status() == "stopped"
    finally:
        driver.close()


# --- numbers -----------------------------------------------------------------------------
@pytest.mark.parametrize("value, text", [(12.34, "12.34"), (1234, "1234"), (0.123, "0.123"), (5, "5.000"),
                                         (9999.4, "9999"), (0, "0.000")])
def test_numbers_fit_four_digits(value, text):
    assert format_number(value) == text


@pytest.mark.parametrize("value", [12345, 0.0001, 0.0123, -1.0, float("nan")])
def test_numbers_that_four_digits_cannot_hold_are_refused(value):
    with pytest.raises(ValueError):
        format_number(value)


@pytest.mark.parametrize("ml_per_min, sent", [(5.0, ("5.000", "MM")), (10.5, ("630.0", "MH")),
                                              (12.3456, ("740.7", "MH")), (2e-6, ("0.120", "UH"))])
def test_rate_goes_out_in_the_unit_that_writes_it_best(ml_per_min, sent):
    assert fit_units(ml_per_min, {"MM": 1.0, "UM": 1e-3, "MH": 1 / 60, "UH": 1 / 60000}) == sent


def test_rate_change_while_pumping_keeps_the_unit_in_force(bench, pump):
    pump.set_rate(5.0)  # sent in MM
    pump.run()
    pump.set_rate(10.5)  # would go out in MH when stopped; the pump refuses a new unit while pumping
    assert pump.rate() == 10.5 and bench[1].flow_at(bench[0].clock.now()) == 10.5
    assert unpack(pump.io.exchange(frame(b"0RAT630.0MH"), reply_complete, "0RAT")) == "00I?NA"
    pump.stop()


def test_rate_out_of_range_for_the_syringe_is_an_instrument_error(pump):
    pump.set_rate(6.0)
    with pytest.raises(InstrumentError, match=r"pump at /dev/pts/\d+: pump 0 answered \?OOR .*'0RAT6000MH'"):
        pump.set_rate(100.0)  # above 28.3 mL/min for a 26.59 mm syringe
    assert pump.rate() == 6.0


# --- pumping on the reactor clock ----------------------------------------------------------
def test_dispensed_volume_grows_in_reactor_time_and_stops_at_the_target(bench, pump):
    clock = bench[0].clock
    pump.set_rate(6.0)
    before_run = clock.now()
    pump.run()
    after_run = clock.now()
    time.sleep(0.1)
    before_dis = clock.now()
    infused, withdrawn = pump.dispensed()
    after_dis = clock.now()
    assert 6.0 * (before_dis - after_run) / 60 - 5e-4 <= infused <= 6.0 * (after_dis - before_run) / 60 + 5e-4
    assert withdrawn == 0.0 and infused > 0.1
    pump.stop()
    pump.clear_dispensed()
    pump.set_volume(0.25)
    pump.run()
    wait_until(lambda: bench[1].status == "S")
    assert pump.dispensed() == (0.25, 0.0)


def test_stop_pauses_then_stops_and_flow_follows(bench, pump):
    world, twin, _ = bench
    pump.set_rate(6.0)
    pump.run()
    assert pump.status() == "infusing" and twin.flow_at(world.clock.now()) == 6.0
    time.sleep(0.05)
    world.advance()
    assert world.pumped > 0
    assert unpack(pump.io.exchange(frame(b"0STP"), reply_complete, "0STP")) == "00P"  # first STP pauses
    assert twin.flow_at(world.clock.now()) == 0.0
    pump.run()
    assert pump.status() == "infusing"
    pump.stop()
    assert pump.status() == "stopped" and twin.flow_at(world.clock.now()) == 0.0
    pump.purge()
    assert pump.status() == "purging" and twin.flow_at(world.clock.now()) == pytest.approx(MAX_RATE, rel=1e-3)
    pump.stop()
    pump.set_direction("WDR")
    pump.run()
    assert pump.status() == "withdrawing" and twin.flow_at(world.clock.now()) < 0  # drawn in, not pushed out
    pump.stop()


def test_stall_stops_the_pump_and_is_reported_once(bench, pump):
    world, twin, _ = bench
    pump.set_rate(6.0)
    pump.run()
    twin.stall()
    assert twin.flow_at(world.clock.now()) == 0.0
    with pytest.raises(PumpAlarm, match=r"pump 0 raised alarm S \(motor stalled\) \(command '0'\)"):
        pump.status()
    assert pump.status() == "stopped"


def test_silent_host_in_safe_mode_stops_the_pump_with_alarm_t(bench):
    world, twin, server = bench
    driver = NE1000(server.path, safe_mode=10, timeout=0.2)
    try:
        driver.set_rate(6.0)
        driver.run()
        wait_until(lambda: twin.status == "S")  # the twin stopped by itself: nobody spoke to it
        assert twin.alarm == "T" and twin.flow_at(world.clock.now()) == 0.0
        with pytest.raises(PumpAlarm, match="safe-mode communications timeout"):
            driver.dispensed()
        assert driver.dispensed() == (1.0, 0.0)  # 6 mL/min for the 10 s after the last packet
    finally:
        driver.close()


def test_wrong_baud_rate_gets_no_reply(bench):
    with pytest.raises(InstrumentError, match="no complete reply after 2 tries"):
        NE1000(bench[2].path, baudrate=19200, timeout=0.05, retries=1)


# --- ophyd device ----------------------------------------------------------------------------
def test_device_sets_rate_reads_volume_and_stops_on_unstage(bench, pump):
    device = SyringePump(pump, name="pump")
    assert device.read_configuration()["pump_diameter"]["value"] == 26.59
    device.stage()
    device.rate.set(6.0).wait(timeout=2)
    pump.run()
    time.sleep(0.05)
    device.trigger().wait(timeout=2)
    reading = device.read()
    assert reading["pump_running"]["value"] and reading["pump_rate"]["value"] == 6.0
    assert reading["pump_infused"]["value"] > 0
    assert device.hints == {"fields": ["pump_infused"]}
    device.unstage()
    assert bench[1].status == "S"
