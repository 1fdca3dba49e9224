"""The installed distribution's version (``0.0.0`` in a source tree without metadata)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tokforge")
except PackageNotFoundError:  # running from a source tree without metadata
    __version__ = "0.0.0"
