"""bluesky plans: pulses and trains, kelvin profiles, an aerosol line's slot and its phases, the
plan a recipe becomes on the configured supply; the bare-message stubs they share (`stubs`).
Plans compose devices and do no I/O of their own.

May import: `quenchlab.recipes`, `quenchlab.config`, `quenchlab.devices` and below.
"""
