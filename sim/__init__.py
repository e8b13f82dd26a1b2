"""The twins: per instrument a protocol twin written from its manual, served on loopback (a TCP
socket, a pseudo-terminal, a serial-to-Ethernet gateway) over a shared physics world and clock;
fault scenarios injected into them.

May import: the kernel only (a config only under TYPE_CHECKING). Never the drivers: the twins
answer independent software written from the same manuals.
"""
