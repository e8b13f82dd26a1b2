"""Reactor configs of every kind (FJH, aerosol, the supplies), the addresses they give, the
collection plate and an aerosol slot's budget: validated YAML, before anything is opened.

May import: the kernel, `analysis` (the settings it holds), `devices` (an instrument's fixed
figures, such as the baud rates a Genesys takes). Never recipes, reactors or runs.
"""
