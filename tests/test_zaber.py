"""Zaber sample collector: driver, device and the official zaber-motion library against the
twin over a pseudo-terminal, on a reactor clock 100 times faster than the wall."""

import threading

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import pytest
from bluesky import RunEngine
from bluesky.suspenders import SuspendBoolHigh
from ophyd import Signal

from conftest import wait_until
from quenchlab.clock import ReactorClock
from quenchlab.devices.zaber_device import Collector
from quenchlab.devices.zaber_driver import ZaberStage, lrc
from quenchlab.errors import InstrumentError
from quenchlab.sim.servers import LinkFault
from quenchlab.sim.zaber_twin import ZaberTwin


@pytest.fixture
def clock():
    return ReactorClock(speed=100)


@pytest.fixture
def twin(clock):
    return ZaberTwin(clock)


@pytest.fixture
def stage(server):
    driver = ZaberStage(server.path, timeout=0.2)
    yield driver
    driver.close()


@pytest.fixture
def collector(stage, twin):
    return Collector(stage, name="collector", microstep_um=twin.microstep_um, positions={"waste": (5.0, 5.0)})


def homed(stage: ZaberStage) -> ZaberStage:
    stage.home()
    stage.wait_idle(timeout=5)
    return stage



def raw(stage: ZaberStage, message: str) -> bytes:
    """One try of `message` as written, and the reply as received."""
    return stage.io.exchange(message.encode("ascii"), lambda got: got.endswith(b"\r\n"), message,
                             tried=stage.io.retries)


def test_axes_must_be_homed_and_homing_takes_time(stage, twin, clock):
    assert stage.get("system.axiscount") == "2"
    assert stage.warnings() == {"WR"}
    with pytest.raises(InstrumentError, match=r"not homed: home the collector first "
                                              r"\(command '/1 1 \d+ move abs 1000'\)"):
        stage.move_absolute(1, 1000)
    start = clock.now()
    homed(stage)  # from 75 mm at 10 mm/s
    assert clock.now() - start > 7.5
    assert 0 < twin.where(start + 3.7)[0] < 75
    assert stage.positions() == (0, 0) and stage.warnings() == set()
    assert twin.where(clock.now()) == (0.0, 0.0, False)


def test_a_move_lasts_what_maxspeed_and_accel_give(stage, twin, clock):
    homed(stage)
    speed = stage.maxspeed(1) / 1.6384  # microsteps/s ("Physical units")
    accel = stage.accel(1) * 10000 / 1.6384  # microsteps/s^2
    target = 100_000
    lasts = target / speed + speed / accel  # trapezoid: it reaches full speed
    before = clock.now()
    stage.move_absolute(1, target)
    after = clock.now()  # the move started in between
    assert twin.where(before + lasts - 0.01)[0] < twin.where(after + lasts)[0] == target * twin.microstep_um / 1000
    assert stage.busy(1)
    stage.wait_idle(1, timeout=5)
    assert clock.now() - before > lasts - 0.01
    assert stage.position(1) == target


def test_waiting_longer_than_the_timeout_fails_naming_the_position(stage):
    homed(stage)
    stage.move_absolute(1, stage.travel(1))
    with pytest.raises(InstrumentError, match=r"still moving after 0.001 s, at \d+ microsteps"):
        stage.wait_idle(1, timeout=0.001)


def test_shutter_output_opens_and_closes(stage, twin, clock):
    stage.set_output(1, True)
    assert stage.output(1) and twin.where(clock.now())[2]
    stage.set_output(1, False)
    assert not stage.output(1) and not twin.where(clock.now())[2]


def test_a_stall_fails_the_wait_and_latches_until_cleared(stage, twin, clock):
    homed(stage)
    stage.move_absolute(1, stage.travel(1))
    wait_until(lambda: stage.position(1) > 0)
    twin.inject("stall")
    stopped = twin.where(clock.now())[0]
    with pytest.raises(InstrumentError, match=r"stalled \(FS\): the axis stopped itself"):
        stage.wait_idle(1, timeout=5)
    assert twin.where(clock.now())[0] == stopped
    with pytest.raises(InstrumentError, match=r"stalled \(FS\)"):
        stage.move_absolute(1, 0)  # latched: no move starts
    assert "FS" in stage.warnings(1)
    stage.clear_warnings()
    stage.move_absolute(1, 0)
    stage.wait_idle(1, timeout=5)
    assert stage.position(1) == 0


def test_a_move_beyond_travel_is_refused(stage, collector, twin):
    homed(stage)
    with pytest.raises(InstrumentError, match=r"rejected it: BADDATA \(a value out of range"):
        stage.move_absolute(2, stage.travel(2) + 1)
    received = twin.received
    with pytest.raises(ValueError, match=r"x = 151 mm is outside the travel 0-150 mm"):
        collector.set((151, 0))
    assert twin.received == received  # refused before sending


def test_message_ids_and_checksums(stage, twin, server):
    homed(stage)
    assert raw(stage, f"/1 1 42 get pos:{lrc('1 1 42 get pos')}\n") == b"@01 1 42 OK IDLE -- 0\r\n"
    assert raw(stage, "/1 1 123 get pos\n") == b"@01 1 RJ IDLE -- BADMESSAGEID\r\n"
    assert raw(stage, "/1 3 45 get pos\n") == b"@01 3 45 RJ IDLE -- BADAXIS\r\n"
    with pytest.raises(InstrumentError, match="no complete reply"):
        raw(stage, "/1 1 43 move abs 1000:00\n")  # a corrupted checksum: ignored
    assert not stage.busy(1) and stage.position(1) == 0
    stage.command("set comm.checksum 1")
    assert raw(stage, "/1 1 44 get pos\n") == f"@01 1 44 OK IDLE -- 0:{lrc('01 1 44 OK IDLE -- 0')}\r\n".encode()
    server.faults.add(LinkFault("garbage"))
    assert stage.position(1) == 0  # the garbled reply is discarded and the command resent
    assert any("resent" in event.what for event in stage.io.take_events())


def test_device_moves_both_axes_with_the_shutter_closed(stage, collector, twin, clock):
    homed(stage)
    collector.shutter.set(True).wait(timeout=5)
    assert twin.where(clock.now())[2]
    assert collector.read()["collector_shutter"]["value"] is True
    status = collector.set((20.0, 30.0))
    status.wait(timeout=5)
    x, y, shutter = twin.where(clock.now())
    assert (x, y, shutter) == (pytest.approx(20.0, abs=1e-3), pytest.approx(30.0, abs=1e-3), False)
    reading = collector.read()
    assert reading["collector_x"]["value"] == pytest.approx(20.0, abs=1e-3)
    assert reading["collector_shutter"]["value"] is False
    assert collector.describe()["collector_y"]["units"] == "mm"
    assert collector.read_configuration()["collector_travel_x"]["value"] == pytest.approx(150.0)
    collector.set("waste").wait(timeout=5)
    assert twin.where(clock.now())[:2] == (pytest.approx(5.0, abs=1e-3), pytest.approx(5.0, abs=1e-3))


def test_device_set_fails_before_homing_and_on_a_stall(collector, stage, twin, clock):
    with pytest.raises(InstrumentError, match="not homed"):
        collector.set((10.0, 10.0)).wait(timeout=5)
    homed(stage)
    status = collector.set((140.0, 140.0))
    wait_until(lambda: twin.where(clock.now())[0] > 1)
    twin.inject("stall")
    with pytest.raises(InstrumentError, match=r"stalled \(FS\)"):
        status.wait(timeout=5)
    assert not status.success


def test_device_stop_halts_both_axes_short_of_the_target(collector, stage, twin, clock):
    homed(stage)
    status = collector.set((140.0, 140.0))
    wait_until(lambda: twin.where(clock.now())[0] > 1)
    collector.stop()
    with pytest.raises(InstrumentError, match="stopped on request at .* not at the target"):
        status.wait(timeout=5)
    x, y, _ = twin.where(clock.now())
    assert 1 < x < 140 and 1 < y < 140
    assert stage.warnings() == {"NI"}  # the stop interrupted the moves


def test_a_suspension_stops_the_move_and_the_run_moves_on_to_the_target_on_resuming(collector, stage, twin, clock):
    """A RunEngine suspending stops what it moved with stop(success=True): the move under way ends
    short of its target without failing, and on resuming the plan, replayed from its checkpoint,
    moves the stage on to the target."""
    homed(stage)
    stage.command(f"set maxspeed {stage.maxspeed(1) // 50}")  # 0.4 mm/s: the move takes 3.5 s of wall
    alarm = Signal(name="alarm", value=0)
    engine = RunEngine({})
    engine.install_suspender(SuspendBoolHigh(alarm, sleep=0))

    def trip_and_clear():
        wait_until(lambda: twin.where(clock.now())[0] > 1)
        alarm.put(1)
        wait_until(lambda: not stage.busy())  # stopped
        x, _, _ = twin.where(clock.now())
        assert 1 < x < 140
        alarm.put(0)

    def plan():
        yield from bps.checkpoint()
        yield from bps.mv(collector, (140.0, 140.0))

    helper = threading.Thread(target=trip_and_clear)
    helper.start()
    engine(bpp.run_wrapper(plan()))
    helper.join(timeout=30)
    assert (collector.x.get(), collector.y.get()) == pytest.approx((140.0, 140.0), abs=1e-3)


def test_a_stop_that_succeeds_ends_the_move_short_without_failing(collector, stage, twin, clock):
    homed(stage)
    status = collector.set((140.0, 140.0))
    wait_until(lambda: twin.where(clock.now())[0] > 1)
    collector.stop(success=True)
    status.wait(timeout=5)
    assert status.success and 1 < collector.x.get() < 140


def test_the_official_library_drives_the_twin_offline(server, twin, clock, tmp_path):
    zaber_motion = pytest.importorskip("zaber_motion")
    from zaber_motion.ascii import Connection, DigitalOutputAction

    # never the web device database: identification is off, and the only source is a local file
    zaber_motion.Library.set_device_db_source(zaber_motion.DeviceDbSourceType.FILE, str(tmp_path / "none.sqlite"))
    with Connection.open_serial_port(server.path) as connection:
        (device,) = connection.detect_devices(identify_devices=False)
        assert device.device_address == 1
        for number, target in ((1, 20_000), (2, 40_000)):
            axis = device.get_axis(number)
            axis.home()  # waits until idle
            assert axis.get_position(zaber_motion.Units.NATIVE) == 0
            axis.move_absolute(target, zaber_motion.Units.NATIVE)
            assert axis.get_position(zaber_motion.Units.NATIVE) == target
        axis = device.get_axis(1)
        axis.move_relative(-5_000, zaber_motion.Units.NATIVE)
        assert axis.get_position(zaber_motion.Units.NATIVE) == 15_000
        axis.move_max()
        assert axis.get_position(zaber_motion.Units.NATIVE) == axis.settings.get("limit.max")
        axis.move_velocity(-400_000, zaber_motion.Units.NATIVE)  # maxspeed data: towards the home end
        axis.stop()  # waits until idle
        assert 0 < axis.get_position(zaber_motion.Units.NATIVE) < axis.settings.get("limit.max")
        axis.move_min()
        assert axis.settings.get("limit.home.triggered") == 1
        axis.move_absolute(20_000, zaber_motion.Units.NATIVE)
        device.io.set_all_digital_outputs([DigitalOutputAction.OFF, DigitalOutputAction.ON] * 2)
        assert device.io.get_all_digital_outputs() == [False, True, False, True]
        device.io.set_digital_output(1, DigitalOutputAction.ON)
        assert device.io.get_digital_output(1)
    mm = twin.microstep_um / 1000
    assert twin.where(clock.now()) == (pytest.approx(20_000 * mm), pytest.approx(40_000 * mm), True)


def test_relative_end_and_velocity_moves_estop_reset_and_set_pos(stage, twin, clock):
    """The ASCII protocol's move rel|min|max|vel, estop, system reset, set pos, tools echo, with a
    plain client (the driver's transport, raw messages)."""
    def reply(message: str) -> str:
        return raw(stage, f"/1 {message}\n").decode().strip()
    assert reply("1 move rel 100") == "@01 1 RJ IDLE WR BADDATA"  # no reference yet
    assert reply("1 set pos 1000") == "@01 1 OK IDLE -- 0"  # sets it: WR gone
    assert reply("1 move rel -1001") == "@01 1 RJ IDLE -- BADDATA"  # would end below limit.min
    assert reply("1 move rel 500") == "@01 1 OK BUSY -- 0"
    wait_until(lambda: not stage.busy(1))
    assert stage.position(1) == 1500
    assert reply("1 move vel 20000") == "@01 1 OK BUSY -- 0"
    assert reply("1 move max") == "@01 1 OK BUSY NI 0"  # interrupted the velocity move
    assert reply("1 warnings clear") == "@01 1 OK BUSY NI 01 NI"  # NI is not cleared by it
    assert reply("1 estop") == "@01 1 OK IDLE NI 0"  # at once: idle in the same reply
    stopped = stage.position(1)
    assert reply("1 move min") == "@01 1 OK BUSY -- 0"  # a move sent while idle clears NI
    wait_until(lambda: not stage.busy(1))
    assert stage.position(1) == 0  # limit.min of the position set, not the home sensor:
    assert reply("1 get limit.home.triggered") == "@01 1 OK IDLE -- 0"
    assert 1500 < stopped and reply("1 get motion.busy") == "@01 1 OK IDLE -- 0"
    assert reply("0 tools echo hello there") == "@01 0 OK IDLE WR hello there"  # axis 2 has no reference
    assert reply("0 io set do port 1 1 1 2") == "@01 0 RJ IDLE WR BADDATA"  # nothing set
    assert (reply("0 io set do port 1 0 0 1") == "@01 0 OK IDLE WR 0"
            and reply("0 io get do") == "@01 0 OK IDLE WR 1 0 0 1")
    assert twin.where(clock.now())[2] is True
    assert reply("0 system reset") == "@01 0 OK IDLE WR 0"  # then a restart: outputs off, no reference
    assert reply("0 io get do") == "@01 0 OK IDLE WR 0 0 0 0" and twin.where(clock.now())[2] is False
    assert reply("1 home") == "@01 1 OK BUSY WR 0"
    wait_until(lambda: not stage.busy(1))
    assert reply("0 system reset") == "@01 0 OK IDLE WR 0"
    assert reply("1 warnings") == "@01 1 OK IDLE WR 01 WR"  # a home done before the reset does not count after it
    assert (reply("0 get version") == "@01 0 OK IDLE WR 7.21"
            and reply("0 get comm.rs232.baud") == "@01 0 OK IDLE WR 115200")
