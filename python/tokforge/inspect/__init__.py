"""See inside a tokenizer: how a text is split (:func:`explain`), how a token was built from
bytes (:func:`lineage`), what the vocabulary holds (:func:`find_tokens`, :func:`longest_tokens`,
:func:`tokens_by_script`, :func:`unreachable_tokens`, :func:`rarest_merges`), a readable dump of
the vocabulary (:func:`vocab_dump`), and several tokenizers side by side (:func:`compare`).

Everything works for any :class:`~tokforge.Tokenizer`: the OpenAI rank files (whose merges are
not published: they are recovered from the ranks with :meth:`Tokenizer.merge_parts`), trained
vocabularies, and hand-built ones. The views render as plain text, coloured terminal text,
tables, JSON and HTML (:mod:`tokforge.inspect.viz`); in a notebook they display themselves.

Modules: :mod:`.explanation`, :mod:`.merge_tree` (lineage), :mod:`.vocab`, :mod:`.comparison`,
:mod:`.stats` (corpus statistics), :mod:`.viz` (drawing), each taking any tokenizer with the
shape of :class:`tokforge.protocol.TokenizerLike` and never importing the tokenizer module; and
:mod:`.artifacts` (the classic surprises), which also resolves tokenizer names, so it sits above
the tokenizer and is not imported here.

>>> from tokforge import Tokenizer
>>> tok = Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="gpt2", name="toy")
>>> from tokforge.inspect import explain, lineage
>>> e = explain(tok, "low lo")
>>> e.to_text()
'[low][·][lo]'
>>> [(t.id, t.start, t.end) for t in e]
[(257, 0, 3), (32, 3, 4), (256, 4, 6)]
>>> print(lineage(tok, "low").to_text())
[l][o] -> [lo] 256
[lo][w] -> [low] 257
"""

from .comparison import Comparison as Comparison
from .comparison import compare as compare
from .explanation import Explanation as Explanation
from .explanation import TokenInfo as TokenInfo
from .explanation import explain as explain
from .merge_tree import Lineage as Lineage
from .merge_tree import LineageNode as LineageNode
from .merge_tree import lineage as lineage
from .vocab import RareToken as RareToken
from .vocab import UnreachableToken as UnreachableToken
from .vocab import VocabEntry as VocabEntry
from .vocab import find_tokens as find_tokens
from .vocab import longest_tokens as longest_tokens
from .vocab import rarest_merges as rarest_merges
from .vocab import script_of as script_of
from .vocab import tokens_by_script as tokens_by_script
from .vocab import unreachable_tokens as unreachable_tokens
from .vocab import vocab_dump as vocab_dump

__all__ = [
    "Comparison",
    "Explanation",
    "Lineage",
    "LineageNode",
    "RareToken",
    "TokenInfo",
    "UnreachableToken",
    "VocabEntry",
    "compare",
    "explain",
    "find_tokens",
    "lineage",
    "longest_tokens",
    "rarest_merges",
    "script_of",
    "tokens_by_script",
    "unreachable_tokens",
    "vocab_dump",
]
