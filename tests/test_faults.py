"""Fault scenarios on the twins: the drivers recover where that is safe and fail clearly where
it is not; instrument faults behave as the real ones do."""
import math
import socket
import threading
import time

import h5py
import pytest
import yaml

from conftest import CONFIGS
from quenchlab.devices.impac_driver import Impac
from quenchlab.devices.n6900_driver import N6900
from quenchlab.devices.transport import VisaTransport
from quenchlab.errors import ConfigError, InstrumentError
from quenchlab.plans.pulses import pulse_train
from quenchlab.reactor.fjh import FJHReactor
from quenchlab.recipes.load import load_recipe
from quenchlab.recipes.pulse import compile_recipe
from quenchlab.record.writer import HDF5Writer
from quenchlab.run.engine import run_engine
from quenchlab.run.interrupts import Interrupts
from quenchlab.run.outcome import run_once
from quenchlab.sim.faults import FaultScenario, apply_scenario, load_scenario
from quenchlab.sim.servers import LinkFault


def scenario(*faults):
    return FaultScenario.model_validate({"faults": list(faults)})


@pytest.fixture
def pyrometer(twins):
    driver = Impac(twins.addresses["pyrometer"], timeout=0.1)
    yield driver
    driver.close()


def test_a_lost_reply_is_resent_and_recovered(twins, pyrometer):
    apply_scenario(scenario({"instrument": "pyrometer", "fault": "no_reply", "on": "ms", "count": 2}),
                   twins, twins.world.clock)
    assert pyrometer.temperature().flag == "under range"  # third try answered
    events = pyrometer.io.take_events()
    assert ([(e.instrument, e.command, e.what) for e in events]
            == [("pyrometer", "00ms", "no complete reply within 0.1 s: resent")] * 2)
    assert pyrometer.io.take_events() == []  # taken once


def test_a_reply_later_than_the_timeout_is_not_read_with_the_next_one(twins, pyrometer):
    """The first try times out and is resent; its late reply and the resend's must not be read
    as one garbled reply (now, or by the next query)."""
    apply_scenario(scenario({"instrument": "pyrometer", "fault": "latency", "on": "ms", "delay": "170 ms"}),
                   twins, twins.world.clock)
    for _ in range(3):
        assert pyrometer.temperature().flag == "under range"
    assert pyrometer.io.take_events()[0].what == "no complete reply within 0.1 s: resent"


def test_a_dead_line_is_a_clear_error(twins, pyrometer):
    apply_scenario(scenario({"instrument": "pyrometer", "fault": "no_reply", "count": 10}), twins, twins.world.clock)
    with pytest.raises(InstrumentError, match=r"pyrometer at /dev/pts/\d+: no complete reply after 4 tries "
                                              r"\(command '00ms'\)"):
        pyrometer.temperature()


def test_a_cut_reply_is_resent(twins, pyrometer):
    apply_scenario(scenario({"instrument": "pyrometer", "fault": "partial", "on": "ms"}), twins, twins.world.clock)
    assert pyrometer.temperature().flag == "under range"


def test_garbage_is_an_error_not_a_number(twins, pyrometer):
    apply_scenario(scenario({"instrument": "pyrometer", "fault": "garbage", "on": "ms"}), twins, twins.world.clock)
    with pytest.raises(InstrumentError, match="garbled reply"):
        pyrometer.temperature()


def test_latency_within_the_timeout_is_tolerated(twins):
    apply_scenario(scenario({"instrument": "supply", "fault": "latency", "on": "IDN", "delay": "50 ms"}),
                   twins, twins.world.clock)
    supply = N6900(twins.addresses["supply"])
    try:
        start = time.monotonic()
        assert supply.identify().startswith("Keysight")
        assert time.monotonic() - start >= 0.05
    finally:
        supply.close()


def test_a_timed_trip_latches_the_supply_output_off(twins):
    supply = N6900(twins.addresses["supply"])
    try:
        supply.set_voltage(50)
        supply.set_current(5)
        supply.output_on()
        apply_scenario(scenario({"instrument": "supply", "fault": "trip_ot",
                                 "at": f"{twins.world.clock.now() + 0.1} s"}),
                       twins, twins.world.clock)
        time.sleep(0.3)
        assert supply.trips() == ["over-temperature"] and supply.measure()[1] == 0.0
        assert supply.io.query("OUTP?") == "1"  # programmed on, held off by the latch
    finally:
        supply.output_off()
        supply.close()


def disconnect(twins, on, down):
    apply_scenario(scenario({"instrument": "supply", "fault": "disconnect", "on": on, "down": down}),
                   twins, twins.world.clock)


@pytest.fixture(params=[1.0])
def live_supply(twins, request):
    """The supply twin at 5 V, 1 A with its output on, confirmed by a reply; switched off and
    closed after the test. The driver's timeout is the parameter."""
    supply = N6900(twins.addresses["supply"], timeout=request.param)
    try:
        supply.set_voltage(5)
        supply.set_current(1)
        supply.output_on()
        assert supply.io.query("OUTP?") == "1"  # the reply confirms the writes
        yield supply
        supply.output_off()
        assert supply.io.query("OUTP?") == "0" and not twins.supply.output
    finally:
        supply.close()


def test_a_dropped_link_is_reconnected_and_the_query_resent(twins, live_supply):
    disconnect(twins, on="MEAS", down="0.4 s")
    start = time.monotonic()
    assert live_supply.measure()[0] > 0
    assert time.monotonic() - start >= 0.4  # new connections were reset until the link came up
    assert [e.what for e in live_supply.io.take_events()] == ["link lost: reconnected, resent"]
    assert twins.supply.output and (twins.supply.voltage, twins.supply.current_limit) == (5, 1)


def test_a_write_lost_with_the_link_is_an_error_then_the_output_goes_off(twins, live_supply):
    disconnect(twins, on="^VOLT ", down="0.2 s")
    with pytest.raises(InstrumentError, match=r"link lost and re-established; the effect of 'VOLT 10' is unknown"):
        live_supply.set_voltage(10)  # the socket takes it: the loss shows at the next exchange
        live_supply.voltage_setting()
    assert twins.supply.voltage == 5  # this time it was lost


@pytest.mark.parametrize("fault", [{"fault": "no_reply"}, {"fault": "disconnect", "down": "0.2 s"}],
                         ids=["write-lost", "link-lost"])
def test_output_off_is_confirmed_and_sent_again_when_lost(twins, live_supply, fault):
    apply_scenario(scenario({"instrument": "supply", "on": "OUTP OFF", **fault}), twins, twins.world.clock)
    live_supply.output_off()
    assert not twins.supply.output


def test_output_off_lost_twice_is_a_clear_error(twins, live_supply):
    apply_scenario(scenario({"instrument": "supply", "fault": "no_reply", "on": "OUTP OFF", "count": 2}),
                   twins, twins.world.clock)
    with pytest.raises(InstrumentError, match=r"supply at .*: the output still reads on after OUTP OFF, sent twice"):
        live_supply.output_off()
    assert twins.supply.output  # the fixture's own output off (a third one) switches it off


@pytest.mark.parametrize("live_supply", [0.3], indirect=True)
def test_a_link_down_longer_than_the_timeout_is_a_clear_error(twins, live_supply):
    disconnect(twins, on="MEAS", down="1 s")
    start = time.monotonic()
    with pytest.raises(InstrumentError, match=r"supply at TCPIP::127\.0\.0\.1::\d+::SOCKET: link lost, could not "
                                              r"reconnect within 0\.3 s \(.*\) \(command 'MEAS:VOLT\?'\)"):
        live_supply.measure()
    assert time.monotonic() - start < 1
    time.sleep(2)  # the link is up again (1 s after the twin met MEAS): the fixture's output off reconnects first


@pytest.mark.timeout(10)
def test_a_link_closed_cleanly_is_reconnected_not_hung_on():
    """pyvisa-py reads a socket closed by its peer as silence (and its clear() then never returns):
    the query times out, the next write finds the link lost, and the query is resent."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():  # answers each line with 1, but closes its first connection after one reply
        for first in (True, False):
            conn, _ = listener.accept()
            with conn, conn.makefile("rb") as lines:
                for _ in lines:
                    conn.sendall(b"1\n")
                    if first:
                        break

    threading.Thread(target=serve, daemon=True).start()
    peer = VisaTransport("peer", f"TCPIP::127.0.0.1::{listener.getsockname()[1]}::SOCKET", timeout=0.3)
    try:
        assert peer.query("A?") == "1"
        time.sleep(0.05)
        assert peer.query("A?") == "1"
    finally:
        peer.close()
        listener.close()


def test_a_serial_line_has_no_connection_to_drop(twins):
    with pytest.raises(ValueError, match=r"'disconnect' is not a fault of this link; "
                                         r"allowed: no_reply, garbage, partial, latency$"):
        twins.servers["pyrometer"].faults.add(LinkFault("disconnect"))


def test_pyrometer_dropout_and_saturation(twins, pyrometer):
    twins.pyrometer.inject("saturation")
    reading = pyrometer.temperature()
    assert math.isnan(reading.kelvin) and reading.flag == "over range"
    twins.pyrometer.inject("dropout")
    assert pyrometer.temperature().flag == "under range"


@pytest.mark.parametrize("entry, expected", [
    ({"instrument": "oven", "fault": "no_reply"},
     r"faults\.0\.instrument: 'oven' is not an instrument of these twins; allowed: supply, pyrometer, digitizer"),
    ({"instrument": "supply", "fault": "melt", "at": "1 s"},
     r"faults\.0\.fault: 'melt' is not a fault of supply; "
     r"allowed: no_reply, garbage, partial, latency, disconnect, trip_ov"),
    ({"instrument": "pyrometer", "fault": "disconnect"},
     r"faults\.0\.fault: 'disconnect' is not a fault of pyrometer; "
     r"allowed: no_reply, garbage, partial, latency, dropout,"),
    ({"instrument": "supply", "fault": "trip_ov"}, r"faults\.0\.at: an instrument fault needs a time"),
])
def test_bad_scenarios_are_refused(twins, entry, expected):
    with pytest.raises(ConfigError, match=expected):
        apply_scenario(scenario(entry), twins, twins.world.clock)


def test_scenario_file_round_trip(tmp_path):
    path = tmp_path / "faults.yaml"
    path.write_text(yaml.safe_dump({"faults": [{"instrument": "pyrometer", "fault": "no_reply", "at": "2 s",
                                                "count": 3}]}))
    entry, = load_scenario(path).faults
    assert (entry.at, entry.count) == (2.0, 3)
    path.write_text(yaml.safe_dump({"faults": [{"instrument": "pyrometer", "fault": "no_reply", "when": "soon"}]}))
    with pytest.raises(ConfigError, match=r"faults\.0\.when: unknown key"):
        load_scenario(path)


def test_a_scenario_file_takes_a_disconnect(tmp_path, twins):
    path = tmp_path / "faults.yaml"
    path.write_text('faults:\n'
                    '  - {instrument: supply, fault: disconnect, on: "^OUTP ", down: 2 s}\n')  # YAML 1.1: on = true
    apply_scenario(load_scenario(path), twins, twins.world.clock)
    fault, = twins.servers["supply"].faults.pending
    assert (fault.kind, fault.on, fault.down) == ("disconnect", "^OUTP ", 2.0)
    path.write_text("faults:\n  - {instrument: supply, fault: disconnect, down: -1 s}\n")
    with pytest.raises(ConfigError, match=r"faults\.0\.down"):
        load_scenario(path)


def test_twins_command_injects_a_scenario(tmp_path):
    import json
    import signal
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "faults.yaml"
    path.write_text("faults:\n  - {instrument: pyrometer, fault: saturation, at: 0 s}\n")
    process = subprocess.Popen([str(Path(sys.executable).parent / "quenchlab"), "twins", CONFIGS / "fjh-sim.yaml",
                                "--faults", path], stdout=subprocess.PIPE, text=True)
    try:
        lines = {line["name"]: line["address"] for line in (json.loads(process.stdout.readline()) for _ in range(3))}
        time.sleep(0.2)
        driver = Impac(lines["pyrometer"])
        assert driver.temperature().flag == "over range"
        driver.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_link_faults_ridden_through_in_a_run_travel_as_documents_before_its_stop(sim_config, tmp_path):
    """A dropped LAN link during a pulse train: the run completes, and the fault reaches every
    consumer as the `notes` event before the stop, which the writer keeps at /entry/link_faults."""
    recipe = load_recipe(CONFIGS / "recipes" / "thin-film-2000K.yaml")[0]
    program = compile_recipe(recipe, sim_config.limits)
    documents, interrupts = [], Interrupts()
    with FJHReactor(sim_config, simulate=True) as reactor, interrupts, run_engine() as engine, \
            interrupts.running(engine):
        writer = HDF5Writer(tmp_path)
        engine.subscribe(writer)
        engine.subscribe(lambda name, doc: documents.append((name, doc)))
        disconnect(reactor.twins, on="FETC:ARR:VOLT", down="0.2 s")  # a query after confirmed writes
        outcome = run_once(engine, pulse_train(reactor.flyer, program, pulses=2, off_time=0.6,
                                               detectors=reactor.detectors()),
                           interrupts, None, reactor.link_events)
    assert outcome.state == "done", outcome.reason
    notes, = [doc["uid"] for name, doc in documents if name == "descriptor" and doc["name"] == "notes"]
    names = [name for name, doc in documents if doc.get("descriptor") in (None, notes)]
    assert names[-3:] == ["descriptor", "event", "stop"]
    faults, = [doc["data"]["link_faults"] for name, doc in documents if doc.get("descriptor") == notes]
    assert len(faults) == 1 and "supply" in faults[0] and "reconnected" in faults[0]
    with h5py.File(writer.path, "r") as f:
        assert [text.decode() for text in f["entry/link_faults"][()]] == faults
        assert f["entry/num_events/notes"][()] == 1 and "notes" not in f["entry"]  # not a table
