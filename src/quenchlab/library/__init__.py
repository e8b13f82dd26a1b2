"""Sample libraries: the rows, the journal and manifest, pre-flight and its forecasts, and the
unattended runner (one run and one record per attempt at a sample).

May import: `run` and everything below it.
"""
