"""The instruments: per model one driver (the manual's protocol, plain Python: no ophyd, no
bluesky) beside its ophyd device; the transports (VISA, serial; one lock per port, timeouts,
bounded retries); flyers, which run a program on the instruments and collect what they
recorded; soft devices, which hold what no instrument reads.

May import: `quenchlab.control` (the programs it executes), `quenchlab.analysis`, the kernel.
Never recipes, configs, reactors or the command line.
"""
