"""The record of a run: the HDF5 writer (a bluesky callback), reading a record back, the
summary row of a run, a library's records, and the emissivity check added to a record later.

May import: `config`, `control`, `analysis`, the kernel.
"""
