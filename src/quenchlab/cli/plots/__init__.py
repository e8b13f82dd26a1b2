"""The PNGs of the command line: one run's pulses or process data, a library's overview,
runs side by side (matplotlib, loaded only by the commands that draw).
"""
