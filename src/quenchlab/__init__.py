"""quenchlab: instrument control and data acquisition for heat/quench synthesis reactors."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("quenchlab")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
