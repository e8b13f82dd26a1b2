"""Transports under the drivers: a VISA resource (LAN SCPI) and a serial port.

Each transport owns one lock, so a driver's command and its reply are never interleaved
with another thread's, and resends a query a bounded number of times before it raises an
`InstrumentError` naming the instrument, its address and the command.
"""
import os
import select
import threading
import time

import numpy as np
import pyvisa
import serial

from quenchlab.errors import InstrumentError

_resource_manager: pyvisa.ResourceManager | None = None


def _visa() -> pyvisa.ResourceManager:
    global _resource_manager
    if _resource_manager is None:
        _resource_manager = pyvisa.ResourceManager("@py")
    return _resource_manager


class VisaTransport:
    """SCPI over a VISA resource, e.g. ``TCPIP::192.168.1.20::5025::SOCKET``."""

    def __init__(self, name: str, address: str, timeout: float = 2.0, retries: int = 2):
        self.name, self.address, self.retries = name, address, retries
        self.lock = threading.RLock()
        try:
            self._resource = _visa().open_resource(
                address, read_termination="\n", write_termination="\n", timeout=timeout * 1000)
        except (pyvisa.Error, OSError, ValueError) as error:
            raise InstrumentError(name, address, "open", f"cannot connect ({error})") from None

    def write(self, command: str) -> None:
        with self.lock:
            try:
                self._resource.write(command)
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
        with self.lock:
            for remaining in range(self.retries, -1, -1):
                try:
                    return attempt()
                except pyvisa.errors.VisaIOError as error:
                    if remaining == 0:
                        raise InstrumentError(self.name, self.address, command,
                                              f"no reply after {self.retries + 1} tries ({error.abbreviation})") from None
                    self._resource.clear()
                except (pyvisa.Error, OSError) as error:
                    raise InstrumentError(self.name, self.address, command, f"I/O failed ({error})") from None

    def close(self) -> None:
        self._resource.close()


class SerialTransport:
    """A serial line. `query` sends a command and reads a reply ending in `terminator`;
    `exchange` sends raw bytes and reads until `complete(reply_so_far)` says the reply is whole
    (for binary framing). Several drivers may share one port (units on one RS-485 bus):
    `SerialTransport.shared(...)` hands out one transport, and one lock, per port."""

    _open_ports: dict[str, "SerialTransport"] = {}

    def __init__(self, name: str, address: str, *, baudrate: int, parity: str = serial.PARITY_NONE,
                 terminator: bytes = b"\r", timeout: float = 0.5, retries: int = 2):
        self.name, self.address, self.retries, self.terminator = name, address, retries, terminator
        self.timeout = timeout
        self.lock = threading.RLock()
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
            self._port.write(command.encode("ascii") + self.terminator)

    def query(self, command: str, lines: int = 1) -> str:
        """Send `command` and return its reply (several lines joined by the terminator)."""
        terminator = self.terminator
        reply = self.exchange(command.encode("ascii") + terminator,
                              lambda got: got.count(terminator) >= lines, command)
        return reply[:-len(terminator)].decode("ascii", "replace")

    def exchange(self, data: bytes, complete, label: str) -> bytes:
        """Send `data`, read until `complete(received)`; resend on a timeout or a partial
        reply, a bounded number of times."""
        with self.lock:
            for _ in range(self.retries + 1):
                self._port.reset_input_buffer()
                self._port.write(data)
                reply = self._read_until(complete)
                if reply is not None:
                    return reply
            raise InstrumentError(self.name, self.address, label,
                                  f"no complete reply after {self.retries + 1} tries")

    def _read_until(self, complete) -> bytes | None:
        """Read what is waiting in chunks (not byte by byte) until the reply is complete."""
        received = b""
        deadline = time.monotonic() + self.timeout
        while not complete(received):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            received += self._read_some(left)
        return received

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
