"""Transports under the drivers: a VISA resource (LAN SCPI) and a serial port.

Each transport owns one lock, so a driver's command and its reply are never interleaved
with another thread's, and resends a query a bounded number of times before it raises an
`InstrumentError` naming the instrument, its address and the command. A VISA transport also
reconnects a lost link, and resends over it only what is safe to resend. Every fault a
transport rides through is kept as a `LinkEvent` until the run that saw it records it.

A serial driver's query may be written as steps: a generator that yields each `Request` it
needs and is sent the reply (or thrown the error). `SerialTransport.run(steps)` runs it alone;
`run_together` runs the steps of several lines at the same time, from one thread.
"""
import os
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
import pyvisa
import serial

from quenchlab.errors import InstrumentError

_resource_managers: dict[str, pyvisa.ResourceManager] = {}  # one per VISA library


@dataclass(frozen=True)
class LinkEvent:
    """A link fault a transport rode through: when (wall clock), on which instrument, during
    which command, and what the transport did about it."""

    time: float
    instrument: str
    command: str
    what: str

    def __str__(self) -> str:
        when = datetime.fromtimestamp(self.time).isoformat(timespec="milliseconds")
        return f"{when} {self.instrument} {self.command!r}: {self.what}"


class _Link:
    """What both transports share: a name, an address, one lock and the faults ridden through."""

    KEPT = 10_000  # link events kept between two runs' records; the oldest go first

    def __init__(self, name: str, address: str, retries: int):
        self.name, self.address, self.retries = name, address, retries
        self.lock = threading.RLock()
        self._events: deque[LinkEvent] = deque(maxlen=self.KEPT)

    def _note(self, command: str, what: str) -> None:
        self._events.append(LinkEvent(time.time(), self.name, command, what))

    def take_events(self) -> list[LinkEvent]:
        """The faults ridden through since the last call, oldest first. Without the port's lock,
        which a slow exchange may hold for its whole timeout: a deque's pops are atomic."""
        taken = []
        with suppress(IndexError):
            while True:
                taken.append(self._events.popleft())
        return taken


def _visa(library: str) -> pyvisa.ResourceManager:
    """The resource manager of a VISA library: "@py" (pyvisa-py), "@ivi" (a vendor VISA) or a path."""
    if library not in _resource_managers:
        _resource_managers[library] = pyvisa.ResourceManager(library)
    return _resource_managers[library]


def _no_delay(resource: pyvisa.resources.MessageBasedResource) -> None:
    """TCP_NODELAY on a LAN resource's socket. pyvisa-py (0.7/0.8) routes VI_ATTR_TCPIP_NODELAY to
    a setter that refuses it: its session's socket is then set directly; a VXI-11 or HiSLIP
    session, or another VISA, keeps what it has."""
    try:
        resource.set_visa_attribute(pyvisa.constants.ResourceAttribute.tcpip_nodelay, pyvisa.constants.VisaBoolean.true)
    except Exception:  # noqa: BLE001 - pyvisa-py's UnknownAttribute, a VISA that does not offer it
        sock = getattr(getattr(resource.visalib, "sessions", {}).get(resource.session), "interface", None)
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class VisaTransport(_Link):
    """SCPI over a VISA resource, e.g. ``TCPIP::192.168.1.20::5025::SOCKET``.

    A write returns once the socket has taken the command, before the instrument has read it, so
    only a reply proves that the commands written before it arrived. When the link is found lost,
    the transport reconnects (within `timeout` s) and then resends a query only if no command
    has been written since the last reply; else it raises, naming those commands: their effect
    is unknown, and the caller, on the re-established link, puts the instrument in a safe state.

    pyvisa-py 0.8.1 reports a lost TCPIP SOCKET link as a ConnectionError (found by experiment):
    ConnectionResetError (the peer reset it), BrokenPipeError (a write after the peer left),
    ConnectionRefusedError (the first I/O on a refused connection: opening one succeeds). A peer
    that closed cleanly is not reported: reads time out, the first write after it succeeds and
    the second raises BrokenPipeError.
    """

    def __init__(self, name: str, address: str, timeout: float = 2.0, retries: int = 2, library: str = "@py"):
        super().__init__(name, address, retries)
        self.timeout, self.library = timeout, library
        self._unconfirmed: list[str] = []  # written since the last reply
        self._down = False  # a reconnect failed: the next command tries again first
        self._answered = False  # a reply came: the link was up once
        try:
            self._resource = self._open(timeout)
        except Exception as error:  # pyvisa-py raises a bare Exception when a connection times out
            raise InstrumentError(name, address, "open", f"cannot connect ({error})") from None

    def _open(self, timeout: float) -> pyvisa.resources.MessageBasedResource:
        """The resource; on a LAN socket with Nagle's algorithm off (VI_ATTR_TCPIP_NODELAY, true by
        default in the VISA specification, not in pyvisa-py): a short command written behind one
        not yet acknowledged would otherwise wait for the instrument's delayed ACK, tens of ms."""
        resource = _visa(self.library).open_resource(self.address, read_termination="\n", write_termination="\n",
                                         timeout=timeout * 1000, open_timeout=timeout * 1000)
        if resource.interface_type == pyvisa.constants.InterfaceType.tcpip:
            _no_delay(resource)
        return resource

    def write(self, command: str) -> None:
        """Send `command`; never resent, as it may or may not have arrived before a link was lost."""
        with self.lock:
            if self._down:
                self._reconnect(command)
            self._unconfirmed.append(command)
            try:
                self._resource.write(command)
            except ConnectionError:
                self._relink(command)
            except (pyvisa.Error, OSError) as error:
                raise InstrumentError(self.name, self.address, command, f"write failed ({error})") from None

    def query(self, command: str) -> str:
        return self._retry(command, lambda: self._resource.query(command).strip())

    def check_errors(self) -> None:
        """Drain the SCPI error queue (SYSTem:ERRor?, SCPI-1999 vol.2 ch.21.8) and raise if the
        instrument reported any error."""
        errors = []
        while len(errors) < 30:
            reply = self.query(":SYST:ERR?")
            if reply.split(",", 1)[0].strip() in ("0", "+0"):
                break
            errors.append(reply)
        if errors:
            raise InstrumentError(self.name, self.address, ":SYST:ERR?", "reported " + "; ".join(errors))

    def query_block(self, command: str, datatype: str, big_endian: bool) -> np.ndarray:
        """A query answered by an IEEE 488.2 definite-length block."""
        return self._retry(command, lambda: self._resource.query_binary_values(
            command, datatype=datatype, is_big_endian=big_endian, container=np.array))

    def _retry(self, command, attempt):
        """Run the query `attempt`; resend it after a timeout (the late reply drained first), at
        most `retries` times, and once after re-establishing a lost link (see the class)."""
        with self.lock:
            if self._down:
                self._reconnect(command)
            tries, drain, relinked = 1, False, False
            while True:
                try:
                    if drain:
                        self._drain()
                    reply = attempt()
                except pyvisa.errors.VisaIOError as error:
                    if tries > self.retries:
                        raise InstrumentError(self.name, self.address, command,
                                              f"no reply after {tries} tries ({error.abbreviation})") from None
                    tries, drain = tries + 1, True
                    self._note(command, f"no reply within {self.timeout:g} s ({error.abbreviation}): resent")
                except ConnectionError:
                    if relinked:
                        raise InstrumentError(self.name, self.address, command,
                                              "link lost again after reconnecting") from None
                    self._relink(command)
                    self._note(command, "link lost: reconnected, resent")
                    drain, relinked = False, True
                except (pyvisa.Error, OSError) as error:
                    raise InstrumentError(self.name, self.address, command, f"I/O failed ({error})") from None
                else:
                    self._unconfirmed.clear()
                    self._answered = True
                    return reply

    def _drain(self) -> None:
        """Discard a late or cut reply: whatever arrives within 0.1 s. (pyvisa-py's `clear()` does
        the same, but never returns once the peer has closed the socket.)"""
        self._resource.timeout = 100
        try:
            while True:
                self._resource.read_raw()
        except pyvisa.errors.VisaIOError:
            pass
        finally:
            self._resource.timeout = self.timeout * 1000

    def _relink(self, command: str) -> None:
        """Reconnect a lost link; then, if commands were written since the last reply, raise: they
        may or may not have arrived, and are not resent."""
        unknown, self._unconfirmed = ", ".join(map(repr, self._unconfirmed)), []
        effect = f"; the effect of {unknown} is unknown" if unknown else ""
        self._reconnect(command, effect)
        if unknown:
            raise InstrumentError(self.name, self.address, command, f"link lost and re-established{effect}") from None

    def _reconnect(self, command: str, effect: str = "") -> None:
        """Reopen the resource until the instrument answers *IDN? (IEEE 488.2 section 10.14) on
        it, for at most `timeout` s in all."""
        self._resource.close()
        self._down = True
        deadline = time.monotonic() + self.timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                self._resource = self._open(left)
                self._resource.query("*IDN?")
            except Exception as error:  # a bare Exception when the connection times out
                self._resource.close()
                reason = error
                time.sleep(min(0.05, left))
            else:
                self._resource.timeout = self.timeout * 1000
                self._down = False
                return
        lost = "link lost, could not reconnect" if self._answered else "cannot connect"  # a socket opens lazily
        raise InstrumentError(self.name, self.address, command,
                              f"{lost} within {self.timeout:g} s ({reason}){effect}") from None

    def close(self) -> None:
        self._resource.close()


DRAIN = 0.05  # s a serial line is listened to, and what arrives discarded, before a resend


class Request(NamedTuple):
    """One exchange a driver's steps ask for: send `data`, read until `complete(received)`;
    `label` names it in errors and link events."""

    data: bytes
    complete: Callable[[bytes], bool]
    label: str


Steps = Generator[Request, bytes, Any]  # yields its requests, is sent their replies, returns its value


class SerialTransport(_Link):
    """A serial line. `query` sends a command and reads a reply ending in `terminator`;
    `exchange` sends raw bytes and reads until `complete(reply_so_far)` says the reply is whole
    (for binary framing). Several drivers may share one port (units on one RS-485 bus):
    `SerialTransport.shared(...)` hands out one transport, and one lock, per port."""

    _open_ports: dict[str, "SerialTransport"] = {}

    def __init__(self, name: str, address: str, *, baudrate: int, parity: str = serial.PARITY_NONE,
                 terminator: bytes = b"\r", timeout: float = 0.5, retries: int = 2):
        super().__init__(name, address, retries)
        self.terminator, self.timeout = terminator, timeout
        try:
            self._port = serial.serial_for_url(address, baudrate=baudrate, bytesize=serial.EIGHTBITS,
                                               parity=parity, stopbits=serial.STOPBITS_ONE, timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as error:
            raise InstrumentError(name, address, "open", f"cannot open the serial port ({error})") from None

    @classmethod
    def shared(cls, name: str, address: str, **settings) -> "SerialTransport":
        """The transport already open on `address`, or a new one (same settings expected)."""
        port = cls._open_ports.get(address)
        if port is None or not port._port.is_open:
            port = cls._open_ports[address] = cls(name, address, **settings)
        return port

    def write(self, command: str) -> None:
        with self.lock:
            self._send(command.encode("ascii") + self.terminator)

    def query(self, command: str, lines: int = 1) -> str:
        """Send `command` and return its reply (several lines joined by the terminator)."""
        return self.run(self.query_steps(command, lines))

    def query_steps(self, command: str, lines: int = 1) -> Steps:
        """`query` as steps."""
        terminator = self.terminator
        reply = yield Request(command.encode("ascii") + terminator, lambda got: got.count(terminator) >= lines, command)
        *messages, rest = reply.split(terminator)
        if len(messages) > lines or rest:  # a late reply to an earlier try came with this one's
            self._note(command, "a late reply to an earlier try discarded")
        return terminator.join(messages[-lines:]).decode("ascii", "replace")

    def run(self, steps: Steps):
        """Run a driver's steps on this line, holding it throughout; returns their value."""
        with self.lock:
            reply = error = None
            while True:
                try:
                    request = steps.throw(error) if error else steps.send(reply)
                except StopIteration as done:
                    return done.value
                try:
                    reply, error = self.exchange(*request), None
                except InstrumentError as failed:
                    reply, error = None, failed

    def exchange(self, data: bytes, complete, label: str, tried: int = 0) -> bytes:
        """Send `data`, read until `complete(received)`; resend on a timeout or a partial
        reply, a bounded number of times (`tried` of them already made)."""
        with self.lock:
            for attempt in range(tried, self.retries + 1):
                if attempt:
                    self._note(label, f"no complete reply within {self.timeout:g} s: resent")
                    self._read_until(lambda got: False, DRAIN)  # a late reply to the last try is not this one's
                self._start(data)
                reply = self._read_until(complete)
                if reply is not None:
                    return reply
            raise InstrumentError(self.name, self.address, label,
                                  f"no complete reply after {self.retries + 1} tries")

    def _start(self, data: bytes) -> None:
        """Discard what arrived unasked (line noise, a late reply), then send `data`."""
        self._port.reset_input_buffer()
        self._send(data)

    def _read_until(self, complete, timeout: float | None = None) -> bytes | None:
        """Read what is waiting in chunks (not byte by byte) until the reply is complete, or
        None after `timeout` (the transport's)."""
        received = b""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not complete(received):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            received += self._read_some(left)
        return received

    def _send(self, data: bytes) -> None:
        """Write `data`: straight to the file descriptor when the port has one and takes it all
        at once (a command is a few bytes: half of pyserial's per-write cost), else via pyserial."""
        fd = getattr(self._port, "fd", None)
        if fd is not None:
            try:
                sent = os.write(fd, data)
            except BlockingIOError:
                sent = 0
            data = data[sent:]
        if data:
            self._port.write(data)

    def _read_some(self, timeout: float) -> bytes:
        """Whatever arrives within `timeout`; straight from the file descriptor when the port
        has one (a local serial port: a third of pyserial's per-read cost), else via pyserial."""
        fd = getattr(self._port, "fd", None)
        if fd is None:
            return self._port.read(max(1, self._port.in_waiting))
        ready, _, _ = select.select([fd], [], [], timeout)
        return os.read(fd, 4096) if ready else b""

    def close(self) -> None:
        self._open_ports.pop(self.address, None)
        self._port.close()


class _Line:
    """One serial line's share of `run_together`: its steps in turn, one request at a time."""

    def __init__(self, io: SerialTransport):
        self.io, self.fd = io, getattr(io._port, "fd", None)
        self.steps: list[tuple[int, Steps]] = []  # with each one's place among all the values
        self.request: Request | None = None
        self.received, self.deadline = b"", 0.0

    def chain(self, values: list) -> Steps:
        for place, steps in self.steps:
            values[place] = yield from steps

    def advance(self, chain: Steps, reply: bytes | None = None, error: Exception | None = None) -> bool:
        """Hand over the reply (or the error) and send the next request; False when done."""
        try:
            self.request = chain.throw(error) if error else chain.send(reply)
        except StopIteration:
            return False
        self.io._start(self.request.data)
        self.received, self.deadline = b"", time.monotonic() + self.io.timeout
        return True


def run_together(steps: list[tuple[SerialTransport, Steps]]) -> list:
    """Run each (line, steps): those on one line one after another, the lines at the same
    time (each line's request is out before any reply is awaited), all from this thread.
    Returns their values, in order. Each line is held while its steps run; one held elsewhere
    for longer than its transport's whole patience fails as busy. A reply not complete in
    time is waited for, and resent, as `exchange` does (the other lines wait meanwhile). The
    first error is raised once every line is done, so none is left within an exchange."""
    lines: dict[int, _Line] = {}
    for place, (io, one) in enumerate(steps):
        if id(io) not in lines:
            lines[id(io)] = _Line(io)
        lines[id(io)].steps.append((place, one))
    values: list = [None] * len(steps)
    errors: list[Exception] = []
    held, waiting = [], {}
    try:
        for line in lines.values():
            patience = line.io.timeout * (line.io.retries + 1)
            if not line.io.lock.acquire(timeout=patience):
                errors.append(InstrumentError(line.io.name, line.io.address, "none sent",
                                              f"line busy: held elsewhere for over {patience:g} s"))
                continue
            held.append(line.io)
            chain = line.chain(values)
            try:
                if line.fd is None:  # no file descriptor to wait on (a socket URL): this line alone
                    line.io.run(chain)
                elif line.advance(chain):
                    waiting[line.fd] = (line, chain)
            except Exception as error:
                errors.append(error)
        while waiting:
            soonest = min(line.deadline for line, _ in waiting.values())
            ready, _, _ = select.select(list(waiting), [], [], max(0.0, soonest - time.monotonic()))
            late = [] if ready else [fd for fd, (line, _) in waiting.items() if line.deadline <= time.monotonic()]
            for fd in ready + late:
                line, chain = waiting[fd]
                try:
                    if fd in late:  # waited for, and resent, as `exchange` does
                        try:
                            reply, failed = line.io.exchange(*line.request, tried=1), None
                        except InstrumentError as error:
                            reply, failed = None, error
                        going = line.advance(chain, reply, failed)
                    else:
                        line.received += os.read(fd, 4096)
                        if not line.request.complete(line.received):
                            continue
                        going = line.advance(chain, line.received)
                except Exception as error:
                    errors.append(error)
                    going = False
                if not going:
                    del waiting[fd]
    finally:
        for io in held:
            io.lock.release()
    if errors:
        raise errors[0]
    return values
