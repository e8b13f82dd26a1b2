"""Capacitor-bank FJH supply: the driver against its twin over a pseudo-terminal, and the twin
against docs/capbank-protocol.md with plain pyserial, on a 10x reactor clock."""
import time

import numpy as np
import pytest
import serial

from conftest import wait_until
from quenchlab.clock import ReactorClock
from quenchlab.devices.capbank_device import CapBankSupply
from quenchlab.devices.capbank_driver import CapBank, Refused
from quenchlab.errors import InstrumentError
from quenchlab.sim.capbank_twin import CapBankTwin
from quenchlab.sim.fjh_world import FJHWorld
from quenchlab.sim.infiniivision_twin import InfiniiVisionTwin
from quenchlab.sim.samples import PRESETS
from quenchlab.sim.servers import LinkFault, PtyServer

SPEED = 10  # reactor seconds per wall second
C, VSAFE, ICHG, RDUMP, RBLEED = 0.06, 10.0, 3.0, 10.0, 50e3  # the twin's default Rating


@pytest.fixture
def bench():
    world = FJHWorld(PRESETS["carbon_paper"], ReactorClock(speed=SPEED))
    twin = CapBankTwin(world)
    server = PtyServer(twin)
    yield world, twin, server
    server.close()


@pytest.fixture
def bank(bench):
    driver = CapBank(bench[2].path, timeout=0.2)
    yield driver
    driver.close()


class Line:
    """A plain pyserial client of the protocol (section 1: 115200 8N1, CR-terminated)."""

    def __init__(self, path: str):
        self.port = serial.Serial(path, 115200, bytesize=8, parity=serial.PARITY_NONE, stopbits=1, timeout=0.3)

    def ask(self, command: str) -> str:
        self.port.write(command.encode("ascii") + b"\r")
        reply = self.port.read_until(b"\r")
        assert reply.endswith(b"\r"), f"no CR-terminated reply to {command!r}: {reply!r}"
        return reply[:-1].decode("ascii")

    def wait(self, *states: str, wall_seconds: float = 3.0) -> None:
        deadline = time.monotonic() + wall_seconds
        while (state := self.ask("STATE?")) not in states:
            assert time.monotonic() < deadline, f"still {state}, waiting for {states}"
            time.sleep(0.002)

    def charge(self, volts: float) -> None:
        assert self.ask(f"VSET {volts}") == "OK" and self.ask("CHG") == "OK"
        self.wait("CHARGED")


@pytest.fixture
def line(bench):
    client = Line(bench[2].path)
    yield client
    client.port.close()



# --- conformance: plain pyserial against the protocol document -----------------------------
def test_identity_hardware_and_power_on_state(line):
    assert line.ask("IDN?").startswith("QUENCHLAB,CAPBANK,")
    assert [line.ask(q) for q in ("CAP?", "VSAFE?", "ICHG?", "RDUMP?")] == ["0.06", "10", "3", "10"]
    assert [line.ask(q) for q in ("STATE?", "VBANK?", "VSET?", "FLT?", "WDOG?", "SHOT?")] == \
        ["IDLE", "0.000", "0.000", "NONE", "10", "0"]


@pytest.mark.parametrize("command, error", [
    ("BOGUS", "SYNTAX"), ("*IDN?", "SYNTAX"), ("STATE? 1", "SYNTAX"), ("ARM 1", "SYNTAX"),
    ("VSET", "SYNTAX"), ("VSET abc", "SYNTAX"), ("VSET nan", "SYNTAX"), ("VSET inf", "SYNTAX"),
    ("VSET 1e2", "SYNTAX"), ("VSET -5", "SYNTAX"), ("VSET 0", "RANGE"), ("VSET 150.5", "RANGE"),
    ("FIRE 1.5", "SYNTAX"), ("FIRE 0", "RANGE"), ("FIRE 1001", "RANGE"), ("WDOG 0", "RANGE"),
    ("VSET " + "1" * 40, "SYNTAX"), ("CHG", "RANGE"), ("ARM", "STATE"), ("DISARM", "STATE"),
    ("FIRE 10", "STATE")])
def test_refusals_change_nothing(line, command, error):
    assert line.ask(command) == f"ERR {error}"
    assert [line.ask(q) for q in ("STATE?", "VSET?", "SHOT?")] == ["IDLE", "0.000", "0"]


def test_state_transitions_of_a_shot(line, bench):
    assert line.ask("vset 40") == "OK" and line.ask("VSET?") == "40.000"  # case-insensitive
    assert line.ask("CHG") == "OK" and line.ask("STATE?") == "CHARGING"
    assert line.ask("CHG") == "OK"  # a resent command is harmless
    assert [line.ask(c) for c in ("VSET 30", "ARM", "FIRE 10")] == ["ERR STATE"] * 3
    line.wait("CHARGED")
    assert line.ask("FIRE 10") == "ERR STATE"  # not armed
    assert [line.ask(c) for c in ("ARM", "ARM", "STATE?")] == ["OK", "OK", "ARMED"]
    assert [line.ask(c) for c in ("DISARM", "STATE?", "ARM")] == ["OK", "CHARGED", "OK"]
    assert line.ask("FIRE 1000") == "OK" and line.ask("STATE?") == "FIRING"  # 100 ms wall
    assert line.ask("FIRE 1000") == "OK" and line.ask("SHOT?") == "1"  # not a second shot
    line.wait("IDLE")
    assert [line.ask(c) for c in ("FIRE 10", "ARM", "SHOT?")] == ["ERR STATE", "ERR STATE", "1"]
    assert float(line.ask("VBANK?")) < 0.01  # 1 s is some 16 time constants R C


def test_charging_takes_time_at_constant_current(line, bench):
    clock = bench[0].clock
    assert line.ask("VSET 100") == "OK"
    before = clock.now()
    assert line.ask("CHG") == "OK"
    after = clock.now()
    time.sleep(0.05)
    low, volts, high = clock.now(), float(line.ask("VBANK?")), clock.now()
    assert ICHG / C * (low - after) - 0.01 <= volts <= ICHG / C * (high - before) + 0.01
    assert line.ask("STATE?") == "CHARGING"
    line.wait("CHARGED")
    assert float(line.ask("VBANK?")) == pytest.approx(100, abs=0.01)
    assert line.ask("CHG") == "OK"  # top-up; above VSET + 1 % the charger refuses
    line.wait("CHARGED")


def test_energy_drop_matches_joule_heating_of_the_sample(line, bench):
    world, twin, _ = bench
    line.charge(40)
    assert line.ask("ARM") == "OK"
    capacitance, v0 = float(line.ask("CAP?")), float(line.ask("VBANK?"))
    assert line.ask("FIRE 50") == "OK"
    line.wait("IDLE")
    v1 = float(line.ask("VBANK?"))
    delivered = 0.5 * capacitance * (v0 ** 2 - v1 ** 2)
    t, volts, amps = twin.last_shot()
    assert t[-1] - t[0] == pytest.approx(0.050, abs=1e-9) and volts[-1] == amps[-1] == 0
    history = world.history(t[0], t[-1])
    joule = np.sum(history["volts"][1:] * history["amps"][1:] * np.diff(history["t"]))
    assert delivered == pytest.approx(joule, rel=5e-3)
    assert np.sum(volts[:-1] * amps[:-1] * np.diff(t)) == pytest.approx(joule, rel=1e-9)
    assert amps[0] == pytest.approx(v0 / PRESETS["carbon_paper"].r0, rel=1e-3)
    assert 1500 < history["temperature"].max() < 3300 and 15 < v1 < 25


def test_charged_bank_left_alone_bleeds_slowly(line, bench):
    clock = bench[0].clock
    assert line.ask("WDOG 60") == "OK"
    line.charge(40)
    start, v_start = clock.now(), float(line.ask("VBANK?"))
    time.sleep(0.5)
    v_end, end = float(line.ask("VBANK?")), clock.now()
    assert line.ask("STATE?") == "CHARGED"
    assert v_end < v_start
    assert v_end == pytest.approx(v_start * np.exp(-(end - start) / (RBLEED * C)), abs=2e-3)


def test_dump_brings_the_bank_below_the_safe_voltage(line, bench):
    clock = bench[0].clock
    line.charge(100)
    assert line.ask("DUMP") == "OK"
    start = clock.now()
    assert line.ask("STATE?") == "DUMPING" and line.ask("DUMP") == "OK"
    line.wait("IDLE")
    assert clock.now() - start >= RDUMP * C * np.log(100 / VSAFE) * 0.99  # dumping takes time
    assert float(line.ask("VBANK?")) <= VSAFE and line.ask("FLT?") == "NONE"


def test_dump_aborts_a_running_shot(line, bench):
    line.charge(40)
    assert line.ask("ARM") == "OK" and line.ask("FIRE 1000") == "OK"
    assert line.ask("DUMP") == "OK" and line.ask("STATE?") == "DUMPING"
    t, _, amps = bench[1].last_shot()
    assert t[-1] - t[0] < 0.5 and amps[-1] == 0


def test_watchdog_dumps_a_charged_bank_when_the_host_falls_silent(line, bench):
    assert line.ask("WDOG 2") == "OK"
    line.charge(40)
    for _ in range(30):  # a host that keeps talking keeps its charge: 3 reactor s
        assert line.ask("STATE?") == "CHARGED"
        time.sleep(0.01)
    time.sleep(2.5 / SPEED)  # silent for 2.5 reactor s
    assert line.ask("STATE?") in ("DUMPING", "IDLE") and line.ask("FLT?") == "WATCHDOG"
    line.wait("IDLE")
    assert float(line.ask("VBANK?")) <= VSAFE
    assert line.ask("VSET 40") == "OK" and line.ask("CHG") == "ERR FAULT"  # acknowledge first
    assert line.ask("CLR") == "OK" and line.ask("FLT?") == "NONE" and line.ask("CHG") == "OK"


def test_watchdog_dumps_the_residue_of_a_shot(line, bench):
    assert line.ask("WDOG 1") == "OK"
    line.charge(40)
    assert line.ask("ARM") == "OK" and line.ask("FIRE 20") == "OK"
    time.sleep(1.5 / SPEED)
    assert line.ask("FLT?") == "WATCHDOG" and line.ask("STATE?") in ("DUMPING", "IDLE")


def test_charger_fault(line, bench):
    twin = bench[1]
    assert line.ask("VSET 100") == "OK" and line.ask("CHG") == "OK"
    twin.inject("charger_fault")
    assert line.ask("STATE?") == "FAULT" and line.ask("FLT?") == "CHARGER"
    wait_until(lambda: float(line.ask("VBANK?")) <= VSAFE)  # the dump relay is closed in FAULT
    assert line.ask("CLR") == "ERR FAULT" and line.ask("DUMP") == "OK"  # the cause is still there
    twin.inject("recover")
    assert line.ask("CLR") == "OK" and line.ask("STATE?") == "IDLE" and line.ask("FLT?") == "NONE"
    twin.inject("charger_fault")
    assert line.ask("CHG") == "ERR FAULT" and line.ask("STATE?") == "FAULT"


def test_stuck_switch_faults_the_shot_and_clr_waits_for_a_safe_bank(line, bench):
    world, twin, _ = bench
    line.charge(150)
    twin.inject("switch_stuck")
    assert line.ask("ARM") == "OK" and line.ask("FIRE 20") == "OK"
    line.wait("FAULT")
    assert line.ask("FLT?") == "SWITCH" and line.ask("CLR") == "ERR STATE"  # bank still high
    assert not twin.last_shot()[2].any() and world.history(0, world.time)["temperature"].max() < 300
    wait_until(lambda: float(line.ask("VBANK?")) <= VSAFE)
    assert line.ask("CLR") == "ERR FAULT"
    twin.inject("recover")
    assert line.ask("CLR") == "OK" and line.ask("STATE?") == "IDLE"
    with pytest.raises(ValueError, match="unknown fault"):
        twin.inject("melted")


def test_a_digitizer_wired_to_the_probes_sees_the_discharge(line, bench):
    world, twin, _ = bench
    scope = InfiniiVisionTwin(world, {1: lambda t: twin.probe("volts")(t) / 10,  # 10:1 divider
                                      2: lambda t: twin.probe("amps")(t) * 0.01}, seed=1)  # 10 mV/A

    def scpi(command: str) -> bytes | None:
        return scope.handle(command.encode("ascii"))

    for command in (":TIM:SCAL 0.01", ":TIM:REF LEFT", ":TRIG:SOUR CHAN2", ":TRIG:LEV 0.05",
                    ":WAV:SOUR CHAN2", ":WAV:FORM ASC", ":WAV:POIN 1000", ":SING"):
        scpi(command)
    line.charge(40)
    assert line.ask("ARM") == "OK" and line.ask("FIRE 50") == "OK"
    wait_until(lambda: scpi(":OPER:COND?") == b"+0\n")
    block = scpi(":WAV:DATA?")
    current = np.array([float(v) for v in block[2 + int(block[1:2]):-1].split(b",")]) / 0.01
    t, _, amps = twin.last_shot()
    assert current.max() == pytest.approx(amps.max(), rel=0.05)
    assert abs(current[:95]).max() < 1.0  # before the trigger (one division, 100 points)
    assert abs(current[610:]).max() < 1.0  # after the switch opened (50 ms, 500 points)


# --- the driver ------------------------------------------------------------------------------
def test_driver_reads_the_hardware_and_computes_energy_before_sending(bank, bench):
    twin = bench[1]
    assert bank.identify().startswith("QUENCHLAB,CAPBANK")
    assert bank.rating() == {"capacitance": C, "max_voltage": 150.0, "safe_voltage": VSAFE,
                             "charge_current": ICHG, "dump_resistance": RDUMP}
    assert bank.energy(40) == pytest.approx(48.0)
    heard = twin.heard
    for bad in (float("nan"), float("inf"), -float("inf"), "40", True):
        with pytest.raises(ValueError, match="finite number"):
            bank.energy(bad)
        with pytest.raises(ValueError, match="finite number"):
            bank.set_voltage(bad)
    with pytest.raises(ValueError, match="within 0-150 V"):
        bank.set_voltage(150.01)
    for bad in (0, 1001, 5.0, float("nan")):
        with pytest.raises(ValueError, match="1-1000 ms"):
            bank.fire(bad)
    with pytest.raises(ValueError, match="1-3600 s"):
        bank.set_watchdog(0)
    assert twin.heard == heard  # nothing was sent


def test_driver_runs_a_shot(bank, bench):
    bank.set_watchdog(30)
    bank.set_voltage(40)
    assert bank.voltage_setting() == 40.0 and bank.watchdog() == 30.0
    bank.charge()
    assert bank.wait_for("CHARGED", timeout=3) == "CHARGED"
    bank.arm()
    assert bank.state() == "ARMED" and bank.bank_voltage() == pytest.approx(40, abs=0.01)
    assert bank.fire(50) == 1
    bank.wait_for("IDLE", timeout=3)
    assert 15 < bank.bank_voltage() < 25 and bank.shots() == 1 and bank.faults() == []
    with pytest.raises(Refused, match=r"capbank at /dev/pts/\d+: refused: ERR STATE .*'FIRE 10'"):
        bank.fire(10)
    bank.dump()
    bank.wait_for("IDLE", timeout=3)
    assert bank.bank_voltage() <= VSAFE


def test_driver_confirms_a_shot_whose_reply_was_lost_by_the_shot_counter(bank, bench):
    bank.set_voltage(40)
    bank.charge()
    bank.wait_for("CHARGED", timeout=3)
    bank.arm()
    bench[2].faults.add(LinkFault("partial", on="FIRE"))  # the shot happens, its OK is cut short
    assert bank.fire(5) == 1  # the resend found the shot over (ERR STATE); SHOT? says it happened
    assert bank.shots() == 1 and bank.state() == "IDLE"


def test_driver_reports_faults(bank, bench):
    bench[1].inject("charger_fault")
    bank.set_voltage(40)
    with pytest.raises(Refused, match="ERR FAULT") as refused:
        bank.charge()
    assert refused.value.code == "FAULT" and bank.faults() == ["CHARGER"]
    with pytest.raises(InstrumentError, match=r"controller in FAULT \(CHARGER\)"):
        bank.wait_for("CHARGED", timeout=1)


def test_wrong_baud_rate_gets_no_reply(bench):
    with pytest.raises(InstrumentError, match="no complete reply after 1 tries"):
        CapBank(bench[2].path, baudrate=9600, timeout=0.05, retries=0)


# --- ophyd device ----------------------------------------------------------------------------
def test_device_charges_fires_and_dumps_on_unstage(bank, bench):
    twin = bench[1]
    device = CapBankSupply(bank, name="capbank", timeout=3)
    configuration = device.read_configuration()
    assert configuration["capbank_capacitance"]["value"] == C
    assert device.describe_configuration()["capbank_capacitance"]["units"] == "F"
    device.stage()
    device.voltage.set(40).wait(timeout=2)
    device.charge().wait(timeout=5)
    assert twin.state == "CHARGED"
    device.fire(50).wait(timeout=5)
    device.trigger().wait(timeout=2)
    reading = device.read()
    assert reading["capbank_shots"]["value"] == 1 and reading["capbank_state"]["value"] == "IDLE"
    assert 15 < reading["capbank_bank_voltage"]["value"] < 25 and reading["capbank_faults"]["value"] == ""
    assert device.hints == {"fields": ["capbank_bank_voltage"]}
    device.unstage()
    assert twin.state in ("DUMPING", "IDLE")
    wait_until(lambda: bank.bank_voltage() <= VSAFE)


def test_device_fire_fails_on_a_stuck_switch(bank, bench):
    device = CapBankSupply(bank, name="capbank", timeout=3)
    device.voltage.set(40).wait(timeout=2)
    device.charge().wait(timeout=5)
    bench[1].inject("switch_stuck")
    status = device.fire(20)
    with pytest.raises(InstrumentError, match=r"FAULT \(SWITCH\)"):
        status.wait(timeout=5)
