"""Drivers against the twins through the real transports (TCP socket, pseudo-terminal)."""
import math
import time

import numpy as np
import pytest

from quenchlab.control.programs import ListProgram
from quenchlab.devices.impac_driver import Impac, parse_temperature
from quenchlab.devices.infiniivision_driver import InfiniiVision
from quenchlab.devices.n6900_driver import N6900
from quenchlab.errors import InstrumentError
from quenchlab.sim.servers import PtyServer


@pytest.fixture
def supply(twins):
    driver = N6900(twins.addresses["supply"])
    yield driver
    driver.output_off()
    driver.close()


@pytest.fixture
def pyrometer(twins):
    driver = Impac(twins.addresses["pyrometer"])
    yield driver
    driver.close()


def test_supply_identifies_and_reads_back_protection(supply):
    assert supply.identify().startswith("Keysight Technologies,N69")
    supply.configure_protection(ovp=55.0, ocp=False, delay=0.02, watchdog=7.0)
    assert supply.protection_settings() == {"ovp": 55.0, "ocp": 0.0, "protection_delay": 0.02,
                                            "watchdog": 1.0, "watchdog_delay": 7.0}


def test_supply_error_queue_is_reported_with_address_and_command(supply):
    supply.io.write("VOLT 1000")  # above the rating: -222 on the error queue
    with pytest.raises(InstrumentError, match=r"supply at TCPIP::127\.0\.0\.1::\d+::SOCKET.*-222"):
        supply.io.check_errors()


def test_supply_output_heats_the_sample_and_goes_off(supply, twins):
    supply.set_voltage(50)
    supply.set_current(14.5)
    supply.output_on()
    time.sleep(0.15)
    volts, amps = supply.measure()
    assert amps == pytest.approx(14.5) and volts > 10
    assert twins.world.temperature > 1500
    supply.output_off()
    assert not supply.output_enabled()
    assert supply.measure()[1] == 0.0


def test_list_pulse_runs_on_the_supply_clock_and_is_digitised(supply, twins):
    program = ListProgram(levels=(20.0, 10.0), dwells=(0.01, 0.02), control="current", limit=50.0)
    supply.upload_list(program)
    supply.configure_digitizer(points=2000, interval=20.48e-6, pre_trigger=100)
    supply.arm_digitizer()
    supply.arm_list()
    supply.output_on()
    supply.trigger()
    assert supply.list_running()
    time.sleep(0.05)
    assert not supply.list_running()
    volts, amps = supply.fetch()
    assert amps.size == 2000
    assert np.all(amps[:100] == 0)  # pre-trigger samples
    assert np.median(amps[150:400]) == pytest.approx(20.0)
    assert np.median(amps[700:1000]) == pytest.approx(10.0)
    assert np.all(amps[1600:] == 0)  # back to the pre-list setting (0 A) after the list


def test_zero_levels_go_as_min_where_the_supply_cannot_take_0(supply):
    """VOLT and the limits reach down to 0.1 % of their range, not 0 (ch. 6): a voltage list (its
    level before the list is 0 V) and a 0 bound are sent as MIN, and the supply takes them."""
    supply.upload_list(ListProgram(levels=(5.0, 0.0), dwells=(0.01, 0.01), control="voltage", limit=2.0))
    supply.upload_list(ListProgram(levels=(1.0,), dwells=(0.01,), control="current", limit=0.0))
    supply.set_voltage(0.0)
    supply.io.check_errors()
    assert supply.voltage_setting() == float(supply.io.query("VOLT:LIM? MIN")) > 0


def test_list_longer_than_the_supply_holds_is_refused_before_sending(supply):
    with pytest.raises(ValueError, match="512"):
        supply.upload_list(ListProgram(levels=(1.0,) * 513, dwells=(1e-3,) * 513))


def test_pyrometer_reports_under_range_as_nan_and_flag(pyrometer):
    reading = pyrometer.temperature()
    assert math.isnan(reading.kelvin) and reading.flag == "under range"


@pytest.mark.parametrize("reply, kelvin, flag", [("02563", 256.3 + 273.15, ""), ("88880", math.nan, "over range"),
                                                 ("77770", math.nan, "under range")])
def test_temperature_replies_parse_to_kelvin_or_flag(reply, kelvin, flag):
    reading = parse_temperature(reply)
    assert reading.flag == flag
    assert (math.isnan(reading.kelvin) and math.isnan(kelvin)) or reading.kelvin == pytest.approx(kelvin)


def test_garbled_temperature_is_an_error_not_a_number():
    with pytest.raises(ValueError):
        parse_temperature("0256")


def test_pyrometer_settings_round_trip(pyrometer):
    pyrometer.set_emissivity(0.9)
    pyrometer.set_response_time(0.01)
    pyrometer.set_measuring_range(1100.0, 2773.15)
    assert pyrometer.emissivity() == 0.9
    assert pyrometer.response_time() == 0.01
    assert pyrometer.measuring_range() == (pytest.approx(1100.15), pytest.approx(2773.15))
    assert "IGA" in pyrometer.identify()


def test_pyrometer_no_reply_names_the_command(pyrometer):
    pyrometer.set_measuring_range(1100.0, 2773.15)
    with pytest.raises(InstrumentError, match="answered 'no'"):
        pyrometer._set("m100FA270F")  # a sub range ending at 9999 degC, outside the instrument


def test_pyrometer_wrong_bus_address_times_out_after_bounded_retries(twins):
    driver = Impac(twins.addresses["pyrometer"], bus_address=7, timeout=0.05, retries=2)
    try:
        start = time.monotonic()
        with pytest.raises(InstrumentError, match=r"pyrometer at /dev/pts/\d+: no complete reply after 3 tries "
                                                  r"\(command '07ms'\)"):
            driver.temperature()
        assert time.monotonic() - start < 2
    finally:
        driver.close()


def test_pyrometer_wrong_baud_rate_gets_no_reply(twins):
    driver = Impac(twins.addresses["pyrometer"], baudrate=9600, timeout=0.05, retries=1)
    try:
        with pytest.raises(InstrumentError, match="no complete reply"):
            driver.temperature()
    finally:
        driver.close()


class Stutterer:
    """A serial twin that answers its first query with half a line, then properly."""

    terminator = b"\r"
    baudrate = 19200

    def __init__(self):
        self.calls = 0

    def handle(self, message):
        self.calls += 1
        return b"025" if self.calls == 1 else b"02563\r"


def test_partial_reply_is_resent_and_recovered():
    server = PtyServer(Stutterer())
    driver = Impac(server.path, timeout=0.05)
    try:
        assert driver.temperature().kelvin == pytest.approx(529.45)
        assert server.twin.calls == 2
    finally:
        driver.close()
        server.close()


def test_digitizer_captures_the_pyrometer_analog_output(twins, supply, pyrometer):
    pyrometer.set_measuring_range(1100.0, 2773.15)
    pyrometer.set_emissivity(0.85)
    scope = InfiniiVision(twins.addresses["digitizer"])
    try:
        scope.configure_channel(1, 5.5, 2.75)
        scope.configure_capture(duration=0.1, pre_trigger=0.01, points=5000)
        supply.upload_list(ListProgram(levels=(24.0, 14.5), dwells=(0.0065, 0.03), limit=50.0))
        scope.arm()
        supply.arm_list()
        supply.output_on()
        supply.trigger()
        deadline = time.monotonic() + 5  # the record takes 0.1 s once triggered; a busy host may add to it
        while scope.acquiring() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert scope.triggered() and not scope.acquiring()
        trace = scope.fetch(1)
        assert trace.time[0] == pytest.approx(-0.01) and trace.time.size == 5000
        assert trace.volts[trace.time < 0].mean() == pytest.approx(1.0, abs=0.02)  # 4 mA * 250 ohm, cold
        # ~2000 K on a 1100-2773 K range: 4 + 16 * 900/1673 mA = 12.6 mA -> 3.15 V
        assert 3.0 < np.percentile(trace.volts, 99) < 3.3
    finally:
        scope.close()


def test_the_scope_takes_no_trigger_before_it_has_filled_the_record_before_the_trigger(twins):
    """Raw SCPI, not our driver: a trigger 20 ms after :SINGle, with 50 ms of record before the
    trigger still to fill, is not taken; one after it is."""
    scope = InfiniiVision(twins.addresses["digitizer"])
    world = twins.world
    try:
        scope.configure_capture(duration=0.2, pre_trigger=0.05, points=1000)
        scope.io.write(":SINGle")
        scope.io.query("*OPC?")
        with world.lock:
            world.advance()
            world.trigger_line.append(world.time + 0.02)
        time.sleep(0.1)
        assert not scope.triggered()
        with world.lock:
            world.advance()
            world.trigger_line.append(world.time + 0.01)
        time.sleep(0.05)
        assert scope.triggered()
    finally:
        scope.close()
