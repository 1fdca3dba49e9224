"""The old home of :mod:`tokforge.training.counts`, kept for one release: it re-exports it."""

from .training.counts import MAGIC as MAGIC
from .training.counts import count as count
from .training.counts import info as info
from .training.counts import load as load
from .training.counts import merge as merge
from .training.counts import train_from_counts as train_from_counts
from .training.counts import train_merges_from_counts as train_merges_from_counts

__all__ = [
    "MAGIC",
    "count",
    "info",
    "load",
    "merge",
    "train_from_counts",
    "train_merges_from_counts",
]
