"""Alicat flow controllers and a pressure gauge on one serial bus: drivers and devices against
the bus twin through a real pseudo-terminal. Reactor time runs 50x faster than the wall."""
from itertools import pairwise
from types import SimpleNamespace

import pytest

from quenchlab.clock import ReactorClock
from quenchlab.devices.alicat_device import MassFlowController, PressureGauge
from quenchlab.devices.alicat_driver import AlicatUnit, parse_frame
from quenchlab.errors import InstrumentError
from quenchlab.sim.aerosol_world import AerosolWorld, Precursor
from quenchlab.sim.alicat_twin import AlicatBus
from quenchlab.sim.servers import PtyServer

SPEED = 50.0
SETTLE = 2.0  # s of reactor time: ten time constants of the valve
KPA_PER_PSI = 6.894757


class Tap:
    """Serves a twin unchanged and keeps what crossed the line: messages and answers."""

    terminator = b"\r"

    def __init__(self, twin):
        self.twin, self.baudrate = twin, twin.baudrate
        self.messages, self.answers = [], []

    def handle(self, message):
        self.messages.append(message.decode("ascii"))
        answer = self.twin.handle(message)
        self.answers.append(answer or b"")
        return answer


@pytest.fixture
def rig():
    clock = ReactorClock(SPEED)
    world = AerosolWorld({1: Precursor("Fe(NO3)3")}, clock, seed=1)
    bus = AlicatBus(world, seed=2)
    dispersion = bus.add_controller("A", "dispersion", "O2", 10.0)
    bus.add_controller("C", "pilot_fuel", "CH4", 5.0)
    bus.add_gauge("G")
    tap = Tap(bus)
    server = PtyServer(tap)
    yield SimpleNamespace(clock=clock, world=world, bus=bus, dispersion=dispersion, tap=tap, path=server.path)
    server.close()


@pytest.fixture
def units(rig):
    made = {"A": AlicatUnit(rig.path, "A", name="dispersion"), "C": AlicatUnit(rig.path, "C", name="pilot fuel"),
            "G": AlicatUnit(rig.path, "G", name="filter gauge")}
    yield made
    made["A"].close()  # the port they share


def settle(rig):
    rig.clock.sleep(SETTLE)


def test_each_unit_answers_only_to_its_id(units, rig):
    a, c, g = (units[u].poll() for u in "ACG")
    assert (a.unit_id, a.gas, c.unit_id, c.gas) == ("A", "O2", "C", "CH4")
    assert g.unit_id == "G" and g.mass_flow is None and g.gas is None
    absent = AlicatUnit(rig.path, "D", name="absent")
    expected = r"absent at /dev/pts/\d+: unit D did not answer \(3 tries\) \(command 'D'\)"
    with pytest.raises(InstrumentError, match=expected):
        absent.poll()
    assert rig.tap.answers[-3:] == [b"", b"", b""]


def test_flow_follows_the_setpoint_in_reactor_time(units, rig):
    answer = units["A"].set_setpoint(5.0)
    assert answer.setpoint == 5.0 and answer.mass_flow < 0.5  # the valve has only begun to open
    assert units["A"].setpoint() == 5.0
    deadline, flows, late = rig.clock.now() + SETTLE, [], False
    while not late:  # poll until one poll has been sent after the deadline
        late = rig.clock.now() > deadline
        flows.append(units["A"].poll().mass_flow)
    assert all(later > earlier - 0.02 for earlier, later in pairwise(flows))
    assert flows[-1] == pytest.approx(5.0, abs=0.02)
    assert rig.world.gases["dispersion"].flow_at(rig.world.clock.now()) == pytest.approx(5.0, abs=1e-3)
    assert units["C"].poll().mass_flow == pytest.approx(0.0, abs=0.01)


def test_broadcast_reaches_every_unit_and_nobody_answers(units, rig):
    units["A"].io.write("*S 2.0")
    settle(rig)
    for unit in ("A", "C"):
        frame = units[unit].poll()
        assert frame.setpoint == 2.0 and frame.mass_flow == pytest.approx(2.0, abs=0.02)
    assert units["G"].poll().unit_id == "G"
    assert rig.tap.answers[rig.tap.messages.index("*S 2.0")] == b""


def test_unknown_command_is_an_instrument_error(units):
    with pytest.raises(InstrumentError, match=r"filter gauge at /dev/pts/\d+: unit G answered '\?'.*\(command 'GHP'\)"):
        units["G"].hold()


def test_setpoint_above_full_scale_is_refused_before_sending(units, rig):
    assert units["C"].flow_full_scale() == 5.0
    sent = len(rig.tap.messages)
    with pytest.raises(ValueError, match=r"setpoint 5.5 SLPM is outside 0-5.0 SLPM"):
        units["C"].set_setpoint(5.5)
    assert rig.tap.messages[sent:] == []


def test_hold_freezes_the_valve_until_cancelled(units, rig):
    a = units["A"]
    a.set_setpoint(4.0)
    settle(rig)
    assert "HLD" in a.hold().status
    a.set_setpoint(1.0)  # accepted, but the valve stays where it was
    settle(rig)
    frame = a.poll()
    assert frame.mass_flow == pytest.approx(4.0, abs=0.02) and frame.setpoint == 1.0 and "HLD" in frame.status
    assert "HLD" not in a.cancel_hold().status
    settle(rig)
    assert a.poll().mass_flow == pytest.approx(1.0, abs=0.02)
    a.hold(closed=True)
    settle(rig)
    assert a.poll().mass_flow == pytest.approx(0.0, abs=0.02)


def test_over_range_shows_mov_and_the_reading_stays_at_full_scale(units, rig):
    rig.dispersion.over_range(True)
    settle(rig)
    frame = units["A"].poll()
    assert {"MOV", "VOV"} <= set(frame.status) and "OVR" not in frame.status
    assert frame.mass_flow == 10.0
    assert rig.world.gases["dispersion"].flow_at(rig.world.clock.now()) > 14.0  # the gas itself is not clamped
    rig.dispersion.over_range(False)
    settle(rig)
    frame = units["A"].poll()
    assert frame.status == () and frame.mass_flow == pytest.approx(0.0, abs=0.02)


def test_gauge_tracks_the_filter_pressure_drop(units, rig):
    units["A"].set_setpoint(6.0)
    settle(rig)
    assert units["G"].full_scale(7) == (15.0, "PSID")
    before = units["G"].poll().pressure
    assert before == pytest.approx(rig.world.filter_pressure_drop / KPA_PER_PSI, abs=0.02)
    with rig.world.lock:
        rig.world.collected += 10.0  # g of powder on the filter
    after = units["G"].poll().pressure
    assert after - before == pytest.approx(10 * rig.world.line.filter_per_gram / KPA_PER_PSI, abs=0.02)


def test_gas_firmware_and_tare(units, rig):
    a = units["A"]
    assert a.set_gas("n2").gas == "N2" and a.set_gas(11).gas == "O2"
    with pytest.raises(ValueError, match="unknown gas 'Unobtainium'"):
        a.set_gas("Unobtainium")
    assert a.firmware().startswith("10v")
    a.set_setpoint(2.0)
    settle(rig)
    assert a.tare().mass_flow == pytest.approx(0.0, abs=0.02)  # tared with gas flowing: 2 SLPM now reads 0
    settle(rig)
    assert a.poll().mass_flow == pytest.approx(2.0, abs=0.02)
    assert rig.world.gases["dispersion"].flow_at(rig.world.clock.now()) == pytest.approx(4.0, abs=1e-3)


def test_devices_read_every_value_from_one_poll_per_trigger(units, rig):
    mfc = MassFlowController(units["A"], name="mfc")
    gauge = PressureGauge(units["G"], name="filter_dp")
    mfc.setpoint.set(3.0).wait(timeout=2)
    assert mfc.setpoint.get() == 3.0
    settle(rig)
    sent = len(rig.tap.messages)
    mfc.trigger().wait(timeout=2)
    gauge.trigger().wait(timeout=2)
    reading, dp = mfc.read(), gauge.read()
    assert rig.tap.messages[sent:] == ["A", "G"]
    assert reading["mfc_mass_flow"]["value"] == pytest.approx(3.0, abs=0.02)
    assert reading["mfc_setpoint"]["value"] == 3.0 and reading["mfc_status"]["value"] == ""
    assert reading["mfc_pressure"]["value"] == pytest.approx(14.7, abs=0.05)
    assert reading["mfc_temperature"]["value"] == pytest.approx(25.0, abs=0.1)
    assert dp["filter_dp_pressure"]["value"] == pytest.approx(rig.world.filter_pressure_drop / KPA_PER_PSI, abs=0.02)
    assert mfc.hints == {"fields": ["mfc_mass_flow"]} and gauge.hints == {"fields": ["filter_dp_pressure"]}
    config = mfc.read_configuration()
    assert (config["mfc_gas"]["value"], config["mfc_full_scale"]["value"]) == ("O2", 10.0)
    assert mfc.describe()["mfc_mass_flow"]["units"] == "SLPM"
    assert gauge.describe()["filter_dp_pressure"]["units"] == "PSID"


def test_streamed_frames_ahead_of_a_reply_are_skipped(units, rig):
    units["A"].io.write("A@=@")
    assert units["C"].poll().unit_id == "C"
    streamed = rig.tap.answers[-1].split(b"\r")[0]
    assert streamed.startswith(b"+") and streamed.endswith(b"O2")  # unit A's frame, without its ID
    units["A"].io.write("@@=A")
    assert units["A"].poll().unit_id == "A"


class Impostor:
    """A line on which unit B answers whatever is asked (two units set to one ID, say)."""

    terminator = b"\r"
    baudrate = 19200

    def handle(self, message):
        return b"B +014.70 +025.00 +00.000 +00.000 +00.000 N2\r"


def test_reply_from_another_unit_is_an_error_not_data():
    server = PtyServer(Impostor())
    unit = AlicatUnit(server.path, "A", name="mfc")
    try:
        with pytest.raises(InstrumentError, match=r"reply from unit 'B', not 'A'"):
            unit.poll()
    finally:
        unit.close()
        server.close()


def test_wrong_baud_rate_gets_no_reply(rig):
    unit = AlicatUnit(rig.path, "A", name="mfc", baudrate=9600, timeout=0.05, retries=1)
    try:
        with pytest.raises(InstrumentError, match=r"unit A did not answer \(2 tries\)"):
            unit.poll()
    finally:
        unit.close()


@pytest.mark.parametrize("line", ["A +014.70 +025.00 +05.000", "A", "A +014.70 +025.00 +1 +2 +3"])
def test_a_line_that_is_not_a_data_frame_is_refused(line):
    with pytest.raises(ValueError, match="not an Alicat data frame"):
        parse_frame(line)


def ask(rig, command: str, lines: int = 1) -> list[str]:
    """A plain pyserial client (19200 8N1, CR): the reply's lines."""
    import serial
    with serial.Serial(rig.path, 19200, timeout=1) as port:
        port.write(command.encode("ascii") + b"\r")
        return [port.read_until(b"\r").decode("ascii").rstrip("\r") for _ in range(lines)]


def test_registers_integer_setpoints_and_old_forms(rig):
    """Primer and MC manual: Rn / Wn=v answered `A   046 = 264`; 46 the gas, 91 the streaming
    interval (ms), 24 the setpoint in counts; a bare integer sets the setpoint in counts of 64000;
    the `$$` forms of older firmware."""
    assert ask(rig, "AR46") == ["A   046 = 267"]  # O2 is gas 11, bit 8 set
    assert ask(rig, "AW46=8") == ["A   046 = 264"] and ask(rig, "A")[0].endswith("    N2")
    assert ask(rig, "A$$R91") == ["A   091 = 50"]
    assert ask(rig, "AW91=200") == ["A   091 = 200"] and rig.bus.stream_interval == pytest.approx(0.2)
    frame = ask(rig, "A32000")[0].split()
    assert float(frame[5]) == pytest.approx(5.0)  # half of the 10 SLPM full scale
    assert ask(rig, "AR24") == ["A   024 = 32000"]
    assert ask(rig, "A70000") == ["?"]
    assert ask(rig, "A$$W46=11") == ["A   046 = 267"]


def test_display_lock_tables_and_gauge_tare(rig):
    """L / U (frames, LCK while locked); ??M* ten lines, ??D* the frame's fields; the gauge's P
    tare; an unknown command `?`."""
    assert ask(rig, "AL")[0].endswith("LCK") and "LCK" not in ask(rig, "A$$U")[0]
    info = ask(rig, "A??M*", lines=10)
    assert info[0] == "A  M00 ALICAT SCIENTIFIC" and info[4] == "A  M04 Model Number MC-10SLPM-D"
    assert info[9] == "A  M09 Software Revision 10v20.0-R24"
    table = ask(rig, "A??D*", lines=11)
    assert table[0].startswith("A D00 ID_ NAME______________________ TYPE_______ WIDTH NOTES")
    assert table[1] == "A D01 700 Unit ID                    string          1"
    assert table[2] == "A D02 002 Abs Press                  s decimal     7/2 010 02 PSIA"
    assert table[5] == "A D05 005 Mass Flow                  s decimal     7/3 007 02 SLPM"
    ask(rig, "AS 10")
    settle(rig)
    assert float(ask(rig, "G")[0].split()[1]) > 0.05  # the gas through the filter
    assert abs(float(ask(rig, "GP")[0].split()[1])) < 0.02  # tared: it reads zero
    assert ask(rig, "AXYZ") == ["?"] and ask(rig, "APC") == ["?"]
    assert ask(rig, "AVE") == ["A   10v20.0-R24 Jan  9 2025,15:04:07"]
