"""The N6900 twin on the LAN as a client that is not quenchlab's sees it, with plain sockets:
several connections at once (each with its own error queue, the instrument's state shared),
the connection limit, the control socket's device clear, the IEEE 488.2 and SCPI common
commands and status registers, unit suffixes; and a pulse train that runs on while two other
clients poll the supply. Keysight "N6900/N7900 Series Operating and Service Guide": ch. 4
(LAN interface: six connections, control socket), ch. 6 (common commands, STATus)."""
import json
import signal
import socket
import subprocess
import threading
import time

import h5py
import numpy as np
import pytest
import serial
from bluesky import RunEngine

from conftest import CONFIGS, QUENCHLAB
from quenchlab.control.programs import ListProgram
from quenchlab.plans.pulses import pulse_train
from quenchlab.record.writer import HDF5Writer
from test_twin_protocols import ScpiSocket


@pytest.fixture
def clients(twins):
    opened = []

    def connect() -> ScpiSocket:
        opened.append(ScpiSocket(twins.addresses["supply"], timeout=5.0))
        return opened[-1]

    yield connect
    for client in opened:
        client.close()


def test_each_connection_has_its_own_error_queue_and_shares_the_instrument(clients):
    a, b = clients(), clients()
    a.write("VOLT:BOGUS 1", "VOLT 12.5 V")
    assert a.query("SYST:ERR?") == '-113,"Undefined header"'
    assert b.query("SYST:ERR?") == '+0,"No error"'  # not b's error
    assert b.query("VOLT?") == "+1.250000E+01"  # a's setting: one instrument


def test_a_seventh_connection_is_refused(twins, clients):
    six = [clients() for _ in range(6)]
    assert all(client.query("*OPC?") == "1" for client in six)
    host, port = twins.servers["supply"].host, twins.servers["supply"].port
    try:  # reset at once: the reset may meet the connect, the query on its way, or the read
        with socket.create_connection((host, port), timeout=5) as seventh:
            seventh.sendall(b"*IDN?\n")
            assert seventh.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError):
        pass
    six[0].close()
    time.sleep(0.3)  # the server sees it closed
    assert clients().query("*IDN?").startswith("Keysight Technologies,N6973A")


def test_dcl_on_the_control_socket_clears_a_data_connections_unread_input(twins, clients):
    data = clients()
    port = int(data.query("SYST:COMM:TCP:CONT?"))
    assert port != twins.servers["supply"].port
    data.sock.sendall(b"VOLT 3;:OUTP")  # a message cut short, no newline: it waits in the input buffer
    time.sleep(0.1)
    with socket.create_connection((twins.servers["supply"].host, port), timeout=5) as control:
        control.sendall(b"DCL\n")
        assert control.recv(100) == b"DCL\n"
    assert data.query("*IDN?").startswith("Keysight")  # not "VOLT 3;:OUTP*IDN?"
    assert data.query("VOLT?") == "+6.000000E-02" and data.query("SYST:ERR?") == '+0,"No error"'


def test_common_commands_answer_as_the_instrument_does(clients):
    supply = clients()
    assert supply.query("*TST?") == "+0"
    assert supply.query("*OPT?") == "302,303"  # the digitizer and lists it serves
    assert supply.query("SYST:VERS?") == "1995.0"
    supply.write("*ESE 36", "*SRE 48")
    assert (supply.query("*ESE?"), supply.query("*SRE?")) == ("+36", "+48")
    assert supply.query("*ESR?") == "+0" and supply.query("*STB?") == "+0"
    supply.write("*UNKNOWN")
    assert supply.query("*ESR?") == "+32"  # command error
    assert supply.query("SYST:ERR:COUN?") == "+1"


def test_the_status_registers_latch_transitions_and_preset(clients):
    supply = clients()
    assert supply.query("STAT:OPER:PTR?") == "+511" and supply.query("STAT:QUES:PTR?") == "+16383"
    assert supply.query("STAT:OPER:COND?") == "+4"  # output off
    supply.query("STAT:OPER?")  # read and cleared
    supply.write("STAT:OPER:ENAB 1", "*SRE 128", "VOLT 1 V", "CURR:LIM 10 A", "OUTP ON")
    assert supply.query("*OPC?") == "1"
    assert int(supply.query("STAT:OPER:COND?")) & 1  # constant voltage into the cold film
    assert int(supply.query("*STB?")) & (128 | 64) == 128 | 64  # OPER summary, and the service request
    assert int(supply.query("STAT:OPER:EVEN?")) & 1
    assert int(supply.query("STAT:OPER:EVEN?")) & 1 == 0  # read: cleared
    supply.write("OUTP OFF", "STAT:PRES")
    assert (supply.query("STAT:OPER:ENAB?"), supply.query("STAT:OPER:NTR?")) == ("+0", "+0")
    assert supply.query("STAT:OPER:PTR?") == "+511"


@pytest.mark.parametrize("command, query, reply", [
    ("VOLT 1250 mV", "VOLT?", "+1.250000E+00"),
    ("CURR 500 MA", "CURR?", "+5.000000E-01"),
    ("VOLT MAX", "VOLT?", "+6.120000E+01"),
    ("VOLT DEF", "VOLT?", "+6.000000E-02"),  # *RST: its MIN, 0.1 % of the rating
    ("CURR -3.3", "CURR?", "-3.300000E+00"),  # CURR may sink: -10 % of 33.966 A at most
    ("OUTP:PROT:WDOG:DEL 90 s", "OUTP:PROT:WDOG:DEL?", "+90"),
    ("SENS:SWE:POIN 1000.4", "SENS:SWE:POIN?", "+1000"),
    ("CURR:PROT:DEL 50 ms", "OUTP:PROT:DEL?", "+5.000000E-02"),
    ("VOLT 5", "VOLT? MAX", "+6.120000E+01"),
])
def test_numbers_take_suffixes_and_min_max_def(clients, command, query, reply):
    supply = clients()
    supply.write(command)
    assert supply.query(query) == reply
    assert supply.query("SYST:ERR?") == '+0,"No error"'


def test_a_train_runs_on_while_two_other_clients_poll_the_supply(reactor, tmp_path):
    """Two monitoring scripts ask OUTP? and MEAS:CURR? every few ms on connections of their own
    while quenchlab runs a 6-pulse train: every answer comes within its timeout and the train
    keeps its period."""
    stop, answers, late = threading.Event(), [0, 0], []

    def poll(index: int) -> None:
        client = ScpiSocket(reactor.twins.addresses["supply"], timeout=2.0)
        try:
            while not stop.is_set():
                for query in ("OUTP?", "MEAS:CURR?"):
                    start = time.monotonic()
                    float(client.query(query))
                    late.extend([time.monotonic() - start] if time.monotonic() - start > 1.0 else [])
                    answers[index] += 1
                time.sleep(0.005)
        finally:
            client.close()

    pollers = [threading.Thread(target=poll, args=(i,)) for i in range(2)]
    for poller in pollers:
        poller.start()
    engine, writer = RunEngine({}), HDF5Writer(tmp_path)
    engine.subscribe(writer)
    pulse = ListProgram(levels=(24.0,), dwells=(0.02,), control="current", limit=50.0)
    try:
        engine(pulse_train(reactor.flyer, pulse, 6, 1.08, reactor.detectors()))
    finally:
        stop.set()
        for poller in pollers:
            poller.join(timeout=10)
    assert min(answers) > 100 and not late
    with h5py.File(writer.path, "r") as f:
        starts = f["entry/pulse/pulse_start"][()]
        assert starts.size == 6 and np.diff(starts) == pytest.approx(1.10, rel=1e-3)
        assert f["entry/pulse/has_trace"][()].all()


def test_quenchlab_twins_prints_what_a_client_sets_its_serial_port_to():
    """As a user runs it: each serial twin's line with its baud rate and framing, which a plain
    pyserial client opened with them is answered on (the pyrometer: 8E1, UPP manual)."""
    twins = subprocess.Popen([QUENCHLAB, "twins", str(CONFIGS / "fjh-sim.yaml")], stdout=subprocess.PIPE, text=True)
    try:
        lines = {line["name"]: line for line in (json.loads(twins.stdout.readline()) for _ in range(3))}
        pyrometer = lines["pyrometer"]
        assert (pyrometer["baudrate"], pyrometer["bytesize"], pyrometer["parity"], pyrometer["stopbits"]) == \
            (19200, 8, "E", 1)
        assert "baudrate" not in lines["supply"]  # a LAN instrument: its address says it all
        with serial.Serial(pyrometer["address"], pyrometer["baudrate"], bytesize=pyrometer["bytesize"],
                           parity=pyrometer["parity"], stopbits=pyrometer["stopbits"], timeout=1) as port:
            port.write(b"00na\r")
            assert port.read_until(b"\r").startswith(b"IGA")
    finally:
        twins.send_signal(signal.SIGTERM)
        twins.communicate(timeout=30)  # drained, so a full pipe cannot hold it up
    assert twins.returncode == 0
