"""The old home of :mod:`tokforge.training.distributed`, kept for one release: it re-exports it."""

from .training.distributed import MANIFEST as MANIFEST
from .training.distributed import count as count
from .training.distributed import encode_files as encode_files
from .training.distributed import train as train

__all__ = ["MANIFEST", "count", "encode_files", "train"]
