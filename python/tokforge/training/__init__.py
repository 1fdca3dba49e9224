"""Training: :func:`train` (texts or files -> :class:`~tokforge.Tokenizer`) and
:func:`train_merges` in :mod:`.trainer`; pretoken counts saved, merged and trained from in
:mod:`.counts`; counting and dataset encoding on many processes or a Dask cluster in
:mod:`.distributed`. ``tokforge.train`` is the function; this package is where it lives.
"""

from .trainer import TrainResult as TrainResult
from .trainer import coverage_alphabet as coverage_alphabet
from .trainer import hf_dict as hf_dict
from .trainer import train as train
from .trainer import train_merges as train_merges
from .trainer import train_merges_from_counter as train_merges_from_counter

__all__ = [
    "TrainResult",
    "coverage_alphabet",
    "hf_dict",
    "train",
    "train_merges",
    "train_merges_from_counter",
]
