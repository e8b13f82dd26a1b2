"""Soft devices: what no instrument reads but a run records (the phase a line is in, the sample
model identified on the sample)."""
