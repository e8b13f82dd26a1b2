"""VICI selector valve: driver and device against the twin over a pseudo-terminal."""

import pytest

from conftest import wait_until
from quenchlab.clock import ReactorClock
from quenchlab.devices.vici_device import SelectorValve
from quenchlab.devices.vici_driver import ViciValve
from quenchlab.errors import InstrumentError
from quenchlab.sim.aerosol_world import AerosolWorld, Precursor
from quenchlab.sim.servers import PtyServer
from quenchlab.sim.vici_twin import ViciTwin


def make_world() -> AerosolWorld:
    return AerosolWorld({1: Precursor("a"), 2: Precursor("b")}, ReactorClock())


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def twin(world):
    twin = ViciTwin(world, positions=10)
    world.valve = twin
    return twin


@pytest.fixture
def valve(server):
    driver = ViciValve(server.path, timeout=0.1)
    yield driver
    driver.close()



def test_identifies_and_reports_positions(valve, twin):
    assert valve.identify() == "VICI Valco Universal Actuator"
    assert "Main PCB firmware" in valve.firmware()
    assert valve.positions() == 10
    valve.set_positions(8)
    assert valve.positions() == 8 and twin.positions == 8
    with pytest.raises(ValueError, match="even number"):
        valve.set_positions(7)


def test_move_takes_reactor_time_and_the_twin_reports_the_old_position_meanwhile(valve, twin, world):
    before = world.clock.now()
    valve.go(6)  # five steps: 0.62 s of reactor time
    assert valve.position() == 1
    assert twin.port_at(world.clock.now()) is None  # between ports
    wait_until(lambda: valve.position() == 6)
    assert twin.port_at(world.clock.now()) == 6
    assert twin.port_at(before) == 1  # the world can still ask about the time before the move


def test_a_move_asked_while_the_valve_turns_elsewhere_still_arrives(valve, world):
    """The actuator ignores a motion command while it moves (the twin, as the manual): a safe
    state's GO10 sent while a slot's switch to port 5 turns the rotor is sent again."""
    valve.go(5)  # four steps: about 0.5 s of reactor time (the clock runs at real time here)
    valve.move(10, timeout=5.0)
    assert valve.position() == 10


def test_a_move_of_several_steps_takes_longer_than_one_step(valve, world):
    start = world.clock.now()
    valve.move(2)
    one_step = world.clock.now() - start
    start = world.clock.now()
    valve.move(7)
    five_steps = world.clock.now() - start
    assert five_steps > 3 * one_step


def test_shortest_route_wraps_around(valve, world):
    start = world.clock.now()
    valve.move(10)  # one step down from 1, not nine up
    one_step = world.clock.now() - start
    start = world.clock.now()
    valve.move(5)  # five steps down from 10
    assert world.clock.now() - start > 3 * one_step


def test_a_dry_run_clock_makes_moves_quick_in_wall_time():
    world = AerosolWorld({1: Precursor("a")}, ReactorClock(speed=1000))
    server = PtyServer(ViciTwin(world, positions=10))
    valve = ViciValve(server.path)
    try:
        start = world.clock.now()
        valve.move(6, timeout=0.5)  # 0.62 s of reactor time, under a millisecond of wall time
        assert world.clock.now() - start > 0.62
    finally:
        valve.close()
        server.close()


def test_out_of_range_port_is_refused_before_sending(valve, twin, world):
    valve.positions()
    received = twin.received
    for port in (0, 11):
        with pytest.raises(ValueError, match="port .* is outside 1-10"):
            valve.go(port)
    assert twin.received == received
    assert twin.port_at(world.clock.now()) == 1


def test_stuck_valve_times_out_naming_the_port_and_the_last_position(valve, twin, world):
    twin.stick()
    with pytest.raises(InstrumentError, match=r"valve at /dev/pts/\d+: did not reach port 5 .* "
                                              r"still reports position 1 .*\(command 'GO5'\)"):
        valve.move(5, timeout=0.3)
    assert twin.port_at(world.clock.now()) == 1
    twin.unstick()
    valve.move(5)
    assert twin.port_at(world.clock.now()) == 5


def test_valve_stuck_mid_move_stays_between_ports(valve, twin, world):
    start = world.clock.now()
    valve.go(6)
    wait_until(lambda: valve.position() == 2)
    twin.stick()
    reached = valve.position()
    assert 2 <= reached < 6
    wait_until(lambda: world.clock.now() > start + 1.0)  # longer than the whole move would take
    assert valve.position() == reached
    assert twin.port_at(world.clock.now()) is None


def test_device_set_finishes_only_when_the_twin_reports_the_port(valve, twin, world):
    device = SelectorValve(valve, name="valve")
    assert device.positions.get() == 10 and "Universal" in device.firmware.get()
    finished = []
    status = device.set(4)
    status.add_callback(lambda st: finished.append(world.clock.now()))
    status.wait(timeout=5)
    assert status.success
    assert twin.port_at(finished[0]) == 4  # the twin had arrived when the status finished
    assert device.read()["valve_port"]["value"] == 4
    assert device.hints == {"fields": ["valve_port"]}


def test_device_set_on_a_stuck_valve_fails(valve, twin):
    device = SelectorValve(valve, name="valve", move_timeout=0.3)
    twin.stick()
    status = device.set(3)
    with pytest.raises(InstrumentError, match="did not reach port 3"):
        status.wait(timeout=5)
    assert not status.success


def test_motion_replies_follow_ifm(valve, world):
    assert valve.io.query("GO3") == "CP01"  # IFM1: answered at once with where it is now
    wait_until(lambda: valve.position() == 3)
    valve.io.write("IFM0")
    with pytest.raises(InstrumentError, match="no complete reply"):
        valve.io.query("GO5")
    wait_until(lambda: valve.position() == 5)


def test_unknown_command_is_an_error_naming_it(valve):
    assert valve.io.query("XYZ") == "Bad command"
    with pytest.raises(InstrumentError, match=r"answered 'Bad command' \(command 'XYZ'\)"):
        valve._ask("XYZ")
    assert valve.io.query("GO11") == "Bad command"  # the twin checks the range too


def test_device_id_prefix_and_broadcast(world):
    twin = ViciTwin(world, device_id="3")
    server = PtyServer(twin)
    valve = ViciValve(server.path, device_id=3, timeout=0.5, retries=0)  # a loaded host may take 50 ms
    try:
        assert valve.position() == 1
        with pytest.raises(InstrumentError, match="no complete reply"):
            valve.io.query("CP")  # unprefixed: not for this unit
        assert valve.io.query("*CP") == "3CP01"  # the unit's replies carry its ID
        valve.move(2)
        valve.io.write("3ID*")  # back to no ID
        assert valve.io.query("CP") == "CP02"
        valve.io.write("IDB")
        assert valve.io.query("BNP") == "BNP10"
    finally:
        valve.close()
        server.close()


def test_wrong_baud_rate_gets_no_reply_and_sb_changes_the_rate(world):
    twin = ViciTwin(world)
    server = PtyServer(twin)
    try:
        wrong = ViciValve(server.path, baudrate=19200, timeout=0.05, retries=1)
        with pytest.raises(InstrumentError, match="no complete reply after 2 tries"):
            wrong.position()
        wrong.close()
        right = ViciValve(server.path, timeout=0.05)
        right.io.write("SB192")
        with pytest.raises(InstrumentError, match="no complete reply"):
            right.position()
        right.close()
        assert ViciValve(server.path, baudrate=19200).position() == 1
    finally:
        server.close()


def test_delimiter_legacy_replies_and_the_command_list(server, twin):
    """Command reference: DELn (1 CR, 2 LF, 3 CRLF) ends commands and replies; LG1 answers as a
    microelectric actuator ("Position is = n", "NP = n"); /? lists the commands."""
    import serial
    with serial.Serial(server.path, 9600, timeout=0.5) as port:
        def ask(command: bytes, end: bytes) -> bytes:
            port.reset_input_buffer()
            port.write(command)
            return port.read_until(end)

        assert ask(b"DEL3\r", b"\r") == b""  # a setting: no reply
        assert ask(b"CP\r\n", b"\r\n") == b"CP01\r\n"
        assert ask(b"DEL\r\n", b"\r\n") == b"DEL3\r\n"
        ask(b"DEL2\r\n", b"\n")
        assert ask(b"LG1\nCP\n", b"\n") == b"Position is = 1\n"
        assert ask(b"NP\n", b"\n") == b"NP = 10\n"
        port.write(b"/?\n")
        listed = port.read_until(b"VR   firmware\n")
        assert b"GO   next position" in listed and listed.endswith(b"\n")
