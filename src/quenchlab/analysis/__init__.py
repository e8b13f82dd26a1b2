"""Figures computed from traces: per-pulse figures of a shot, plateaus in a trace. Pure numpy.

May import: the kernel only.
"""
