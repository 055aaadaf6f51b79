"""voltproof: the console script and the end-to-end demo that tie the packages together."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("voltproof")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
