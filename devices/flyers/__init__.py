"""Flyers: devices that run a program on the instruments and collect what they recorded (a pulse
or a train on each supply, a closed-loop hold, the process logger's pages)."""
