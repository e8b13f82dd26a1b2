"""The forms an instrument's address takes in a config, checked before anything is opened.

A LAN (or USB, GPIB) instrument has a VISA resource name, whatever form pyvisa accepts: VXI-11
`TCPIP::host::INSTR`, HiSLIP `TCPIP::host::hislip0::INSTR`, a raw socket
`TCPIP::host::5025::SOCKET`, `USB0::...::INSTR`, `GPIB0::5::INSTR`, `ASRL/dev/ttyUSB0::INSTR`.
A serial instrument has a port (`/dev/ttyUSB0`, `COM3`) or a serial-to-Ethernet gateway's URL:
`socket://host:port` (raw TCP: the gateway holds baud rate and parity) or `rfc2217://host:port`
(the gateway takes them from quenchlab). `twin` is an instrument played by its twin.
"""
import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator
from pyvisa.rname import InvalidResourceName, parse_resource_name

TWIN = "twin"
VISA_FORMS = "e.g. TCPIP::192.168.1.20::5025::SOCKET, TCPIP::host::INSTR, TCPIP::host::hislip0::INSTR, " \
             "USB0::0x2A8D::0x1802::MY1234::INSTR, GPIB0::5::INSTR"
SERIAL_FORMS = "a port's path (/dev/ttyUSB0, COM3) or a gateway's socket://host:port or rfc2217://host:port " \
               "(pyserial's options after '?')"


def _visa(address: str) -> str:
    if address != TWIN:
        try:
            parse_resource_name(address)
        except InvalidResourceName:
            raise ValueError(f"{address!r} is not a VISA resource name ({VISA_FORMS})") from None
    return address


def _serial(address: str) -> str:
    if address == TWIN or re.fullmatch(r"(/\S+|COM\d+)", address):
        return address
    if re.fullmatch(r"(socket|rfc2217)://([^\s:/\[\]]+|\[[0-9A-Fa-f:]+\]):\d{1,5}(\?\S*)?", address):
        return address
    raise ValueError(f"{address!r} is not a serial address: {SERIAL_FORMS}")


def _visa_library(library: str) -> str:
    if library in ("@py", "@ivi") or Path(library).is_file():
        return library
    raise ValueError(f"{library!r}: '@py' (pyvisa-py, installed with quenchlab), '@ivi' (the vendor VISA the "
                     "machine has: Keysight's or NI's) or the path of a VISA library file")


def is_gateway(address: str) -> bool:
    """A serial address reached over TCP: `socket://` cannot set the line (the gateway holds it)."""
    return address.startswith("socket://")


VisaAddress = Annotated[str, AfterValidator(_visa)]
SerialAddress = Annotated[str, AfterValidator(_serial)]
VisaLibrary = Annotated[str, AfterValidator(_visa_library)]


def address_kind(address: str) -> str:
    """How an address is reached, as a record names it: "LAN socket", "VXI-11", "HiSLIP",
    "USB-TMC", "GPIB", "serial (VISA)", "serial port", "gateway (socket)", "gateway (RFC 2217)"."""
    if address.startswith(("socket://", "rfc2217://")):
        return "gateway (socket)" if is_gateway(address) else "gateway (RFC 2217)"
    try:
        parsed = parse_resource_name(address)
    except InvalidResourceName:
        return "serial port"
    if parsed.interface_type == "TCPIP":
        if parsed.resource_class == "SOCKET":
            return "LAN socket"
        return "HiSLIP" if parsed.lan_device_name.lower().startswith("hislip") else "VXI-11"
    return {"USB": "USB-TMC", "GPIB": "GPIB", "ASRL": "serial (VISA)"}.get(parsed.interface_type, parsed.interface_type)
