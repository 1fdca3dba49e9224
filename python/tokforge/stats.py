"""The old home of :mod:`tokforge.inspect.stats`, kept for one release: it re-exports it."""

from .inspect.stats import CorpusStats as CorpusStats
from .inspect.stats import FileStats as FileStats
from .inspect.stats import corpus_stats as corpus_stats
from .inspect.stats import plot_stats as plot_stats
from .inspect.stats import stats_json as stats_json
from .inspect.stats import stats_text as stats_text
from .inspect.stats import text_stats as text_stats

__all__ = [
    "CorpusStats",
    "FileStats",
    "corpus_stats",
    "plot_stats",
    "stats_json",
    "stats_text",
    "text_stats",
]
