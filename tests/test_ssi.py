"""Teledyne SSI HPLC pump: driver and device against its twin over a pseudo-terminal, on a 50x
reactor clock (the pressure's time constant is 0.7 s of reactor time, 7 s with a clog)."""
import time

import bluesky.plan_stubs as bps
import pytest
import serial
from bluesky import RunEngine

from conftest import wait_until
from quenchlab.clock import ReactorClock
from quenchlab.devices.ssi_device import HplcPump
from quenchlab.devices.ssi_driver import PumpFault, Setup, SsiPump
from quenchlab.devices.transport import SerialTransport, run_together
from quenchlab.devices.vici_driver import ViciValve
from quenchlab.errors import InstrumentError
from quenchlab.sim.aerosol_world import AerosolWorld, Precursor
from quenchlab.sim.servers import PtyServer
from quenchlab.sim.ssi_twin import SsiTwin
from quenchlab.sim.vici_twin import ViciTwin

SPEED = 50  # reactor seconds per wall second
RESISTANCE = 60.0  # psi per mL/min: 300 psi at 5 mL/min


@pytest.fixture
def make_bench():
    servers = []

    def make(**options):
        world = AerosolWorld({1: Precursor("A")}, ReactorClock(speed=SPEED))
        twin = SsiTwin(world, resistance=RESISTANCE, **options)
        servers.append(PtyServer(twin))
        return world, twin, servers[-1]
    yield make
    for server in servers:
        server.close()


@pytest.fixture
def bench(make_bench):
    return make_bench()


@pytest.fixture
def pump(bench):
    driver = SsiPump(bench[2].path, timeout=0.2)
    yield driver
    driver.close()



def pumping(world, twin) -> float:
    return twin.flow_at(world.clock.now())


def settle(pump, psi: float) -> None:
    wait_until(lambda: pump.pressure() == psi)


def ask(line: SerialTransport, data: bytes) -> bytes:
    """The raw reply to `data`, up to its `/`."""
    return line.exchange(data, lambda got: b"/" in got, repr(data))


# --- the protocol ------------------------------------------------------------------------
def test_raw_protocol_case_formats_er_and_hash(bench):
    line = SerialTransport("pump", bench[2].path, baudrate=9600, timeout=0.2)
    try:
        assert ask(line, b"cs\r") == b"OK,0.00,1500,0,PSI,0,0,0/"
        assert ask(line, b"Fo0250\r") == b"OK/" and ask(line, b"CC\r") == b"OK,0,2.50/"
        assert ask(line, b"FM1234\r") == b"OK/" and ask(line, b"cc\r") == b"OK,0,1.234/"
        for bad in (b"XX\r", b"FO250\r", b"FO1001\r", b"UP0050\r", b"RU1\r", b"FO05CS\r"):
            assert ask(line, bad) == b"Er/", bad
        assert ask(line, b"FO05#CS\r").startswith(b"OK,1.234,")  # '#' dropped the unfinished FO05
        assert ask(line, b"RF\r") == b"OK,0,0,0/"
    finally:
        line.close()


def test_an_unfinished_command_is_dropped_after_a_second_of_wall_time(bench):
    """A-2: one second after its last character; the reactor clock (50x here) does not hurry it."""
    with serial.Serial(bench[2].path, 9600, timeout=0.5) as line:
        line.write(b"FO0")
        time.sleep(0.3)  # 15 s of reactor time
        line.write(b"500\r")
        assert line.read_until(b"/") == b"OK/"
        line.write(b"FO02")
        time.sleep(1.3)
        line.write(b"CS\r")
        assert line.read_until(b"/").startswith(b"OK,5.00,")


def test_a_40_ml_head_takes_tenths(make_bench):
    world, twin, server = make_bench(head_max_flow=40.0)
    driver = SsiPump(server.path, head_max_flow=40.0, timeout=0.2)
    try:
        driver.set_flow(25.5)
        assert driver.setup() == Setup(25.5, 1500, 0, "PSI", "macro", False, True)
        assert ask(driver.io, b"FL399\r") == b"OK/" and driver.flow() == 39.9
        assert ask(driver.io, b"FO0401\r") == b"Er/"  # above the head's 40.0 mL/min
        assert ask(driver.io, b"FM0100\r") == b"Er/"  # FM: not on a 40 mL/min head
        assert driver.flow() == 39.9
    finally:
        driver.close()


def test_the_rest_of_the_command_table(bench):
    """A.1.3 pp. A-3, A-4: PI's 17 fields, KD/KE, PCxx/RC, SF, HTx and RE."""
    world, twin, server = bench
    line = SerialTransport("pump", server.path, baudrate=9600, timeout=0.2)
    try:
        assert ask(line, b"PI\r") == b"OK,0.00,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0/"  # HT1: steel, 10 mL/min
        for command in (b"FO0500\r", b"KD\r", b"PC25\r", b"RU\r"):
            assert ask(line, command) == b"OK/", command
        assert ask(line, b"RC\r") == b"OK,25/" and ask(line, b"pc51\r") == b"Er/" and ask(line, b"PC5\r") == b"Er/"
        assert ask(line, b"pi\r") == b"OK,5.00,1,25,1,0,0,0,0,0,0,0,1,0,0,0,0,0/"
        assert ask(line, b"SF\r") == b"OK/"  # fault mode: stopped at once; none of RF's faults
        assert pumping(world, twin) == 0.0 and ask(line, b"RF\r") == b"OK,0,0,0/"
        assert ask(line, b"CS\r") == b"OK,5.00,1500,0,PSI,0,0,0/"
        assert ask(line, b"RU\r") == b"OK/" and pumping(world, twin) == 5.0
        assert ask(line, b"HT4\r") == b"OK/"  # a plastic 40 mL/min head: stopped, limits reset
        assert ask(line, b"CS\r") == b"OK,5.0,1500,0,PSI,1,0,0/" and ask(line, b"RC\r") == b"OK,0/"
        assert ask(line, b"UP5001\r") == b"Er/" and ask(line, b"UP5000\r") == b"OK/"  # plastic: 5000 psi at most
        assert ask(line, b"FL400\r") == b"Er/" and ask(line, b"FL399\r") == b"OK/"  # FL: 001-399 on a 40
        assert ask(line, b"HT7\r") == b"Er/" and ask(line, b"HT\r") == b"Er/"
        assert ask(line, b"RE\r") == b"OK/"  # the power-up configuration; the head stays
        assert ask(line, b"PI\r") == b"OK,0.0,0,0,4,0,0,0,0,0,0,0,0,0,0,0,0,0/"
        assert ask(line, b"CS\r") == b"OK,0.0,1500,0,PSI,1,0,0/"
    finally:
        line.close()


def test_identify_and_setup_of_a_fresh_pump(pump):
    assert pump.identify() == "v2.04 SR3O firmware"
    assert pump.setup() == Setup(0.0, 1500, 0, "PSI", "standard", False, True)


# --- flow, run, stop ---------------------------------------------------------------------
def test_flow_is_set_read_back_and_pumped_only_while_running(bench, pump):
    world, twin, _ = bench
    pump.set_flow(5.0)
    assert pump.flow() == 5.0 and not pump.running() and pumping(world, twin) == 0.0
    pump.run()
    assert pump.running() and pumping(world, twin) == 5.0
    pump.set_flow(0.73)  # changed while running
    assert pumping(world, twin) == 0.73
    pump.stop()
    assert not pump.running() and pumping(world, twin) == 0.0


@pytest.mark.parametrize("ml_per_min", [10.01, 0.004, 0.013, -1.0, float("nan")])
def test_flow_outside_the_head_is_refused_before_anything_is_sent(bench, pump, ml_per_min):
    heard = bench[1].received
    with pytest.raises(ValueError, match=r"pump at /dev/pts/\d+: cannot set .* its 10 mL/min head takes "
                                         r"0.01 to 10 mL/min in steps of 0.01 \(nothing sent\)"):
        pump.set_flow(ml_per_min)
    assert bench[1].received == heard


def test_a_flow_the_pump_refuses_is_an_instrument_error_and_the_line_stays_usable(make_bench):
    _, twin, server = make_bench(head_max_flow=5.0)
    driver = SsiPump(server.path, head_max_flow=10.0, timeout=0.2)  # configured for the wrong head
    try:
        with pytest.raises(InstrumentError, match=r"pump at /dev/pts/\d+: answered Er/ .*\(command 'FO0800'\)"):
            driver.set_flow(8.0)
        assert driver.flow() == 0.0 and twin.flow == 0.0
    finally:
        driver.close()


def test_wrong_baud_rate_gets_no_reply(bench):
    driver = SsiPump(bench[2].path, baudrate=19200, timeout=0.05, retries=1)
    try:
        with pytest.raises(InstrumentError, match=r"no complete reply after 2 tries \(command 'ID'\)"):
            driver.identify()
    finally:
        driver.close()


# --- pressure ----------------------------------------------------------------------------
def test_pressure_is_flow_times_resistance_once_settled(pump):
    pump.set_flow(5.0)
    pump.run()
    settle(pump, 5.0 * RESISTANCE)
    assert pump.conditions() == (300.0, 5.0)
    pump.set_flow(8.0)
    settle(pump, 8.0 * RESISTANCE)
    pump.stop()
    settle(pump, 0.0)
    assert pump.conditions() == (0.0, 8.0)  # CC reports the set flow; CS says it is stopped


def test_limits_are_sent_in_the_order_the_pump_accepts(bench, pump):
    pump.set_limits(3000, 1600)  # LP1600 first would be refused: above 1500 - 100
    assert (bench[1].upper, bench[1].lower) == (3000, 1600)
    pump.set_limits(1000, 500)  # UP1000 first would be refused: below 1600 + 100
    assert pump.setup().upper == 1000 and pump.setup().lower == 500
    heard = bench[1].received
    with pytest.raises(ValueError, match="lower \\+ 100 <= upper <= 6000"):
        pump.set_limits(550, 500)
    assert bench[1].received == heard


# --- faults ------------------------------------------------------------------------------
@pytest.mark.parametrize("faults, liquid", [({"upper"}, True), ({"stall"}, False), ({"lower"}, False),
                                            ({"upper", "stall"}, False)])
def test_only_an_upper_pressure_fault_is_the_liquids(faults, liquid):
    assert PumpFault("pump", "COM1", "RF", faults).liquid is liquid


def test_a_clog_trips_the_upper_limit_and_run_clears_it(bench, pump):
    world, twin, _ = bench
    pump.set_flow(5.0)
    pump.run()
    settle(pump, 300.0)
    twin.inject("clog")
    wait_until(lambda: pumping(world, twin) == 0.0)
    assert pump.faults() == {"upper"} and not pump.running() and pump.pressure() <= 1500
    with pytest.raises(PumpFault, match=r"pump at /dev/pts/\d+: pump fault latched: pressure above the "
                                        r"upper limit \(command 'RF'\)") as raised:
        pump.conditions()
    assert raised.value.liquid and raised.value.faults == {"upper"}
    wait_until(lambda: pump.pressure() < 1000)
    pump.run()  # clears the fault; the nozzle is still clogged: it climbs and trips again
    wait_until(lambda: pump.pressure() > 1200)
    wait_until(lambda: pump.faults() == {"upper"} and pumping(world, twin) == 0.0)
    twin.unclog()
    pump.run()
    assert pump.faults() == set() and pump.running()
    settle(pump, 300.0)
    assert pump.conditions() == (300.0, 5.0)


def test_a_stall_stops_the_pump_until_run_clears_it(bench, pump):
    world, twin, _ = bench
    pump.set_flow(5.0)
    pump.run()
    twin.inject("stall")
    assert pumping(world, twin) == 0.0 and pump.faults() == {"stall"} and not pump.running()
    with pytest.raises(PumpFault, match=r"motor stalled \(command 'RF'\)") as raised:
        pump.conditions()
    assert not raised.value.liquid
    pump.stop()
    assert pump.faults() == {"stall"}  # ST does not clear it
    with pytest.raises(PumpFault, match=r"motor stalled"):
        pump.spray(5.0)  # a spray never clears a fault unseen
    assert pump.faults() == {"stall"} and pumping(world, twin) == 0.0
    pump.run()
    assert pump.faults() == set() and pumping(world, twin) == 5.0


def test_pressure_falling_below_a_reached_lower_limit_trips_it(bench, pump):
    world, twin, _ = bench
    pump.set_limits(1500, 200)
    pump.set_flow(5.0)
    pump.run()  # from 0 psi: below the lower limit, which is not armed yet
    wait_until(lambda: pump.pressure() >= 250)
    pump.set_flow(2.0)  # 120 psi: below the limit
    wait_until(lambda: pumping(world, twin) == 0.0)
    with pytest.raises(PumpFault, match="pressure below the lower limit") as raised:
        pump.conditions()
    assert not raised.value.liquid and pump.pressure() <= 200


def test_no_watchdog_the_pump_keeps_pumping_after_its_host_is_gone(bench):
    world, twin, server = bench
    driver = SsiPump(server.path, timeout=0.2)
    driver.set_flow(5.0)
    driver.run()
    driver.close()  # the host is gone, the pump is not told
    world.advance()
    start, pumped = world.time, world.pumped
    time.sleep(0.3)  # 15 s of reactor time with nobody on the line
    world.advance()
    assert pumping(world, twin) == 5.0
    assert world.pumped - pumped == pytest.approx(5.0 * (world.time - start) / 60, abs=1e-6)
    again = SsiPump(server.path, timeout=0.2)
    try:
        assert again.running() and again.faults() == set()
    finally:
        again.close()


# --- the process logger's row ----------------------------------------------------------------
def test_conditions_are_read_together_with_another_line(bench, pump):
    world, twin, _ = bench
    world.valve = valve_twin = ViciTwin(world)
    valve_server = PtyServer(valve_twin)
    valve = ViciValve(valve_server.path, timeout=0.2)
    try:
        pump.set_flow(5.0)
        pump.run()
        settle(pump, 300.0)
        assert run_together([(pump.io, pump.conditions_steps()), (valve.io, valve.position_steps())]) == [
            (300.0, 5.0), 1]
        twin.inject("stall")
        with pytest.raises(PumpFault, match="motor stalled"):
            run_together([(pump.io, pump.conditions_steps()), (valve.io, valve.position_steps())])
        assert valve.position() == 1
    finally:
        valve.close()
        valve_server.close()


# --- ophyd device --------------------------------------------------------------------------
def test_device_moves_the_rate_serves_cached_pressure_and_stops(bench, pump):
    world, twin, _ = bench
    device = HplcPump(pump, name="pump")
    assert device.read_configuration()["pump_firmware"]["value"] == "v2.04 SR3O firmware"
    RunEngine({})(bps.mv(device.rate, 5.0))
    assert twin.flow == 5.0 and device.rate.get() == 5.0
    pump.run()
    settle(pump, 300.0)
    device.trigger().wait(timeout=2)
    heard = twin.received
    reading = device.read()
    assert twin.received == heard  # read() serves what trigger() fetched
    assert reading["pump_pressure"]["value"] == 300.0 and reading["pump_running"]["value"]
    assert device.describe()["pump_pressure"]["units"] == "psi"
    assert device.hints == {"fields": ["pump_pressure"]}
    with pytest.raises(PermissionError):
        device.pressure.put(0.0)
    device.stop()
    assert not pump.running() and pumping(world, twin) == 0.0
