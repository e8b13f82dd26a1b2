"""quenchlab: instrument control and data acquisition for heat/quench synthesis reactors.

The kernel (this package's modules: errors, units, files, clock) imports nothing of quenchlab
above it. The rooms, highest first: cli > library > run > reactor > plans | sim | record >
recipes > config > devices > control > analysis (pyproject.toml's import-linter contracts).
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("quenchlab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
