"""Recipe files turned into checked programs: current or voltage steps and ramps (`pulse`),
kelvin profiles (`kelvin`), capacitor-bank shots (`shot`), every limit checked before anything
is sent.

May import: `config`, `control` (the programs they compile to), `devices` (an instrument's
fixed limits), the kernel.
"""
