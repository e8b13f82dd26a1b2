"""Loopback transports for twins: a TCP socket (LAN instruments, or a serial twin behind a
serial-to-Ethernet gateway) and a pseudo-terminal (serial).

A twin is any object with `handle(message: bytes) -> bytes | None`; the server splits the
byte stream into messages at the twin's terminator (or with the twin's own `split`, for
binary framing) and writes back whatever the twin answers.
"""
import contextlib
import functools
import os
import re
import select
import selectors
import socket
import struct
import termios
import threading
import time
import traceback
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from serial import rfc2217

_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on with 0 s: close() resets the connection
_BAUD_RATES = {getattr(termios, n): int(n[1:]) for n in dir(termios) if n[:1] == "B" and n[1:].isdigit()}


class Twin(Protocol):
    terminator: bytes  # what ends a message

    def handle(self, message: bytes) -> bytes | None: ...


def _lines(buffer: bytes) -> tuple[list[bytes], bytes]:
    *lines, rest = buffer.split(b"\n")
    return lines, rest


def line_settings(twin: Twin) -> dict:
    """What a client (or a gateway) sets a serial twin's port to: its baud rate and framing (data
    bits, parity, stop bits; the twin's `framing`, 8N1 if it names none), in pyserial's terms."""
    bytesize, parity, stopbits = getattr(twin, "framing", (8, "N", 1))
    return {"baudrate": twin.baudrate, "bytesize": bytesize, "parity": parity, "stopbits": stopbits}


def _split(buffer: bytes, twin: Twin) -> tuple[list[bytes], bytes]:
    """(complete messages, the incomplete rest) of the bytes received so far."""
    if hasattr(twin, "split"):
        return twin.split(buffer)
    *messages, rest = buffer.split(twin.terminator)
    return messages, rest


@dataclass
class LinkFault:
    """A fault on the wire: `no_reply` (the message never arrives), `garbage` (the reply is
    noise), `partial` (the reply is cut before its terminator), `latency` (the reply comes
    `delay` wall seconds late) or, on TCP only, `disconnect` (the server resets the connection
    without handling the message, and resets new ones for `down` wall seconds; the twin keeps
    its state, as an instrument does when its LAN cable is pulled and put back);
    from reactor time `after`, or from the first message matching `on`, for `count` messages."""

    kind: str
    after: float | None = None
    on: str | None = None
    count: int = 1
    delay: float = 0.0
    down: float = 0.0

    def armed(self, now: float, message: bytes) -> bool:
        if self.after is not None and now < self.after:
            return False
        return self.on is None or re.search(self.on.encode(), message) is not None


class Disconnect(Exception):
    """Raised by a `disconnect` fault: the server drops the connection for `down` wall seconds."""

    def __init__(self, down: float):
        super().__init__(down)
        self.down = down


LOGGED = 10_000  # messages a server keeps, the newest


class LinkFaults:
    """The faults injected on one server's link, applied to each message in turn; `kinds` are
    those this link can have. `messages` keeps the newest messages that came over it."""

    KINDS = ("no_reply", "garbage", "partial", "latency", "disconnect")
    SERIAL = KINDS[:-1]  # a serial line has no connection to drop

    def __init__(self, now: Callable[[], float] = time.monotonic, kinds: tuple[str, ...] = KINDS):
        self.now, self.kinds = now, kinds
        self.pending: list[LinkFault] = []
        self.messages: deque[bytes] = deque(maxlen=LOGGED)

    def add(self, fault: LinkFault) -> None:
        if fault.kind not in self.kinds:
            raise ValueError(f"{fault.kind!r} is not a fault of this link; allowed: {', '.join(self.kinds)}")
        self.pending.append(fault)

    def exchange(self, twin: "Twin", message: bytes) -> bytes | None:
        self.messages.append(message)
        fault = self.pending and next((f for f in self.pending if f.armed(self.now(), message)), None)
        if not fault:
            return twin.handle(message)
        fault.count -= 1
        if fault.count <= 0:
            self.pending.remove(fault)
        if fault.kind == "no_reply":
            return None
        if fault.kind == "disconnect":
            raise Disconnect(fault.down)
        reply = twin.handle(message)
        if fault.kind == "latency":
            time.sleep(fault.delay)
            return reply
        if not reply:
            return reply
        if fault.kind == "partial":
            return reply[:max(1, len(reply) // 2)]
        return bytes((b * 7 + 13) % 94 + 33 for b in reply[:-1]) + reply[-1:]  # garbled, but terminated


class TcpServer:
    """Serves one twin on 127.0.0.1 (or `host`) to as many clients at once as the twin's
    `connections` allows (its manual's limit, data and control connections together; one if it
    names none): each connection has its own input buffer, the twin (the instrument's state) is
    shared and handles one message at a time, whichever connection it came on; a client beyond
    the limit is reset. A twin with `sessions` set is told which connection a message came on
    (`handle(message, session)`), for what its manual keeps per connection (an error queue). A
    twin with a `control_port` attribute also gets a control socket (Keysight LAN instruments):
    its port is written there, and "DCL" on it is a device clear (every data connection's unread
    input dropped; replies are sent as they are made, so none waits), answered "DCL". After a `disconnect`
    fault, connections are reset as soon as they are accepted until the link is up.

    With `gateway`, the twin is a serial one behind a serial-to-Ethernet gateway, one client at a
    time, at pyserial's `socket://host:port` or `rfc2217://host:port`. In raw TCP mode ("socket")
    the gateway holds the line's settings (`line_settings(twin)`): nothing is checked. In RFC 2217 mode
    the client sets them over Telnet (pyserial's PortManager plays the gateway's side), and a
    message sent with settings other than the twin's is dropped, as its UART would see garbage."""

    def __init__(self, twin: Twin, host: str = "127.0.0.1", port: int = 0, gateway: str | None = None):
        self.twin = twin
        self.faults = LinkFaults()
        self._up_at = 0.0  # wall time (time.monotonic) from which connections are served
        self._handling = threading.Lock()  # the instrument takes one message at a time
        self._open: dict[socket.socket, list[bytes]] = {}  # data connections: their unread input
        self._controls = 0  # control connections open
        self._local = threading.local()  # the connection a server thread talks on
        self._sessions = getattr(twin, "sessions", False)
        self._sock = socket.create_server((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self.gateway, self.serial = gateway, bool(gateway)  # a serial twin behind a gateway
        self.address = f"{gateway}://{self.host}:{self.port}" if gateway else \
            f"TCPIP::{self.host}::{self.port}::SOCKET"  # what pyserial, or pyvisa, opens
        self._listening = [self._sock]
        if hasattr(twin, "control_port"):
            self._control = socket.create_server((host, 0))
            twin.control_port = self._control.getsockname()[1]
            self._listening.append(self._control)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name=f"tcp-twin-{self.port}")
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select(self._listening, [], [], 0.1)
            for listening in ready:
                conn, _ = listening.accept()
                data = listening is self._sock
                with self._handling:
                    refused = time.monotonic() < self._up_at or (  # the link is down, or no room
                        len(self._open) + self._controls >= getattr(self.twin, "connections", 1))
                    if data and not refused:
                        self._open[conn] = [b""]
                    self._controls += not data and not refused
                if refused:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                    conn.close()
                    continue
                talk = self._talk if data else self._control_talk
                threading.Thread(target=talk, args=(conn,), daemon=True, name=f"tcp-twin-{self.port}-client").start()

    def _messages(self, conn: socket.socket, pending: list[bytes], split=None, incoming=None):
        """The messages arriving on `conn` (split as the twin splits them, or by `split`), until
        it closes or the server stops; `pending` holds what is not a whole message yet;
        `incoming` takes the bytes apart from what else comes with them (RFC 2217's Telnet)."""
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while not self._stop.is_set():
            try:
                if not select.select([conn], [], [], 0.1)[0]:
                    continue
                chunk = conn.recv(65536)
            except (OSError, ValueError):  # reset, or closed by another thread (fd -1)
                return
            if not chunk:
                return
            chunk = incoming(chunk) if incoming else chunk
            messages, pending[0] = split(pending[0] + chunk) if split else _split(pending[0] + chunk, self.twin)
            yield from messages

    def _talk(self, conn: socket.socket) -> None:
        pending, self._local.conn = self._open[conn], conn
        try:
            with conn:
                line = _Rfc2217Line(conn) if self.gateway == "rfc2217" else None  # it offers at once
                for message in self._messages(conn, pending, incoming=line and line.incoming):
                    if line and line.settings() != line_settings(self.twin):  # (the VICI's SB changes it)
                        continue  # at another baud rate or framing: garbage to the instrument
                    try:
                        reply = self.faults.exchange(self, message)
                    except Disconnect as cut:  # the cable pulled: every connection is reset
                        self._up_at = time.monotonic() + cut.down
                        self._reset_all()
                        return  # this message and the rest are not handled
                    if reply is not None:
                        conn.sendall(line.outgoing(reply) if line else reply)
        except OSError:  # reset meanwhile
            pass
        finally:
            with self._handling:
                del self._open[conn]

    def _reset_all(self) -> None:
        """Reset every data connection (each one's thread then finds its socket closed)."""
        with self._handling:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                    conn.close()

    def handle(self, message: bytes) -> bytes | None:
        """The twin's answer to one message, one message at a time (the faults call it)."""
        with self._handling:
            if self._sessions:
                return self.twin.handle(message, self._local.conn)
            return self.twin.handle(message)

    def _control_talk(self, conn: socket.socket) -> None:
        try:
            with conn:
                for message in self._messages(conn, [b""], split=_lines):
                    if message.strip().upper() == b"DCL":
                        with self._handling:
                            for pending in self._open.values():
                                pending[0] = b""
                        conn.sendall(b"DCL\n")
        except OSError:  # reset meanwhile
            pass
        finally:
            with self._handling:
                self._controls -= 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for listening in self._listening:
            listening.close()


@dataclass
class _SerialSide:
    """An RFC 2217 gateway's serial port as its client sets it (what pyserial's PortManager sets)."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    rtscts: bool = False
    xonxoff: bool = False
    rts: bool = True
    dtr: bool = True
    break_condition: bool = False
    cd: bool = False
    cts: bool = False
    dsr: bool = False
    ri: bool = False

    def reset_input_buffer(self) -> None: ...

    def reset_output_buffer(self) -> None: ...


class _Rfc2217Line:
    """One client's RFC 2217 session (RFC 2217: Telnet Com Port Control), pyserial's PortManager
    answering its negotiation and keeping the settings it asks for."""

    def __init__(self, conn: socket.socket):
        self.side, self._conn = _SerialSide(), conn
        self._manager = rfc2217.PortManager(self.side, self)  # it writes its first offers at once

    def write(self, data: bytes) -> None:  # the manager's replies to the negotiation
        self._conn.sendall(data)

    def incoming(self, chunk: bytes) -> bytes:
        return b"".join(self._manager.filter(chunk))

    def outgoing(self, reply: bytes) -> bytes:
        return b"".join(self._manager.escape(reply))

    def settings(self) -> dict:
        side = self.side
        return {"baudrate": side.baudrate, "bytesize": side.bytesize, "parity": side.parity, "stopbits": side.stopbits}


class SerialLines:
    """One thread serving any number of pseudo-terminals: it waits on all of them at once and
    handles each message as it comes. A twin group's serial lines share one, so a host that
    talks to its instruments in turn finds their twins ready, not waiting on one another for
    the interpreter."""

    def __init__(self):
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="pty-twins")
        self._thread.start()

    def add(self, fd: int, on_bytes: Callable[[], None]) -> None:
        self._selector.register(fd, selectors.EVENT_READ, on_bytes)

    def remove(self, fd: int) -> None:
        self._selector.unregister(fd)

    def _serve(self) -> None:
        """A twin that raises is a twin's bug: reported, and that message gets no reply."""
        while not self._stop.is_set():
            for key, _ in self._selector.select(0.1):
                try:
                    key.data()
                except Exception:
                    traceback.print_exc()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._selector.close()


class PtyServer:
    """Serves one serial twin on a pseudo-terminal; `path` is what pyserial opens. The twin is
    served by `lines` (shared with other servers), or by lines of its own.

    The baud rate the client chose is read from the terminal: a message sent at another
    speed than the twin's `baudrate` is dropped, as a real UART would see only garbage.
    Linux pseudo-terminals always report 8 data bits and no parity, so parity cannot be
    checked here. They also refuse (EINVAL) a client's settings whose only change is the parity
    they drop: a second client opening at 8E1 would fail. So the server marks the line (IXANY,
    which does nothing with XON/XOFF off) whenever a client has cleared the mark, and the next
    client's settings always change something.
    """

    serial = True

    def __init__(self, twin: Twin, lines: SerialLines | None = None):
        self.twin = twin
        self.faults = LinkFaults(kinds=LinkFaults.SERIAL)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self._mark(termios.tcgetattr(self._slave))
        self.path = self.address = os.ttyname(self._slave)  # what pyserial opens
        self._buffer = b""
        self._own_lines = lines is None
        self._lines = lines or SerialLines()
        self._lines.add(self._master, self._receive)

    def baudrate(self) -> int:
        """The client's baud rate (the line marked again for the next client, if need be)."""
        settings = termios.tcgetattr(self._slave)
        self._mark(settings)
        return _BAUD_RATES.get(settings[4], 0)

    def _mark(self, settings: list) -> None:
        if not settings[0] & termios.IXANY:
            settings = [settings[0] | termios.IXANY, *settings[1:]]
            termios.tcsetattr(self._slave, termios.TCSANOW, settings)

    def _receive(self) -> None:
        try:
            chunk = os.read(self._master, 4096)
        except OSError:
            return
        messages, self._buffer = _split(self._buffer + chunk, self.twin)
        sent_at = self.baudrate() if messages else 0  # the client's speed, once per chunk
        for message in messages:
            if sent_at != self.twin.baudrate:  # the twin's may change with a message (VICI SB)
                continue  # framing garbage at the wrong speed: no reply
            reply = self.faults.exchange(self.twin, message)
            if reply:
                try:
                    os.write(self._master, reply)
                except OSError:  # closed meanwhile
                    return

    def close(self) -> None:
        self._lines.remove(self._master)
        if self._own_lines:
            self._lines.close()
        os.close(self._master)
        os.close(self._slave)


class TwinGroup:
    """The twins of one reactor, each behind its server; subclasses fill `servers`."""

    servers: dict[str, TcpServer | PtyServer]
    models: dict[str, str]  # instrument name -> model, as in the configs
    world: object  # the physics the twins share, with the reactor clock they run on (`world.clock`)
    lines: SerialLines | None = None  # serving the serial twins, when they share it

    @functools.cached_property
    def closed(self) -> threading.Event:
        """Set once the twins are closed (a fault scenario's timer ends with them)."""
        return threading.Event()

    @property
    def addresses(self) -> dict[str, str]:
        return {name: server.address for name, server in self.servers.items()}

    def messages(self) -> dict[str, list[bytes]]:
        """The messages each twin's link carried (the newest, at most LOGGED)."""
        return {name: list(server.faults.messages) for name, server in self.servers.items()}

    def config_addresses(self) -> dict[str, str]:
        """The address of every instrument entry of the config ("gases.sheath" for a nested one)."""
        return self.addresses

    def serial_server(self, twin: Twin, gateway: str | None) -> "PtyServer | TcpServer":
        """A serial twin's server: a pseudo-terminal served with the group's other serial lines,
        or with `gateway` ("socket" or "rfc2217") a TCP port as a serial-to-Ethernet gateway gives."""
        if gateway:
            return TcpServer(twin, gateway=gateway)
        if self.lines is None:
            self.lines = SerialLines()
        return PtyServer(twin, self.lines)

    def described(self) -> list[dict]:
        """Per instrument: its name, model and address, and for a serial one its line settings."""
        return [{"name": name, "model": self.models[name], "address": server.address,
                 **(line_settings(server.twin) if server.serial else {})} for name, server in self.servers.items()]

    def close(self) -> None:
        for server in self.servers.values():
            server.close()
        if self.lines:
            self.lines.close()
        self.closed.set()
        self.world.clock.wake()  # a fault scenario sleeping until its next fault ends now

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
