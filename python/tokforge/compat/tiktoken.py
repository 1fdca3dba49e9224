"""``tiktoken``-shaped entry points backed by tokforge: ``get_encoding("cl100k_base")`` gives a
:class:`tokforge.Tokenizer` with identical ids, built from a local rank file (never downloaded).

>>> from tokforge.compat import tiktoken as tt
>>> enc = tt.get_encoding("cl100k_base")  # doctest: +SKIP
"""

from __future__ import annotations

from ..encodings import get_encoding as get_encoding
from ..registry import list_encoding_names as list_encoding_names
from ..tokenizer import Tokenizer as Encoding

__all__ = ["Encoding", "get_encoding", "list_encoding_names"]
