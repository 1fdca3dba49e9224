"""A small, pure-Python byte-level BPE: the trainer and the encoder, written to be read.

This is the oracle the Rust trainer is tested against (``tests/test_train.py`` checks that
both produce identical merges), and the place to learn the algorithm from. It is slow on
purpose: every merge recounts every pair. Use :func:`tokforge.train` for real corpora.

The whole algorithm, on the classic example (the whitespace pretokenizer keeps the spaces as
pretokens of their own)::

    >>> counts = count_pretokens(["low lower lowest lowly"], "whitespace")
    >>> counts[b"low"], counts[b" "]
    (1, 3)
    >>> merges = train_merges(counts, num_merges=10)
    >>> for line in trace(merges):
    ...     print(line)
    merge 1: (l, o) -> 'lo'  count 4
    merge 2: (lo, w) -> 'low'  count 4
    merge 3: (low, e) -> 'lowe'  count 2
    >>> ranks = vocab_from_merges([pair for pair, _ in merges])
    >>> [ranks_to_bytes(ranks)[i] for i in encode_piece(b"lowest", ranks)]
    [b'lowe', b's', b't']
    >>> [ranks_to_bytes(ranks)[i] for i in encode_piece(b"lowly", ranks)]
    [b'low', b'l', b'y']

The training stopped after three merges because every remaining pair occurs once, below the
default ``min_frequency=2``.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "PATTERNS",
    "count_pretokens",
    "encode",
    "encode_piece",
    "get_pair_counts",
    "merge",
    "pretokenize",
    "ranks_to_bytes",
    "render",
    "trace",
    "train",
    "train_merges",
    "vocab_from_merges",
]

# Unicode White_Space, the set Rust's char::is_whitespace and the regex class \s use. Python's
# str.isspace differs (it also accepts U+001C..U+001F), so the reference spells the set out.
_WHITE_SPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

Pair = tuple[int, int]


def pretokenize(text: str, pretokenizer: str = "cl100k") -> list[str]:
    """Cuts ``text`` into the pieces BPE works on.

    ``pretokenizer`` is a preset (``"cl100k"``, ``"o200k"``, ``"gpt2"``), ``"whitespace"``
    (alternating runs of whitespace and non-whitespace; nothing is dropped), ``"none"`` (the
    whole text), or any other string, taken as a regex for the ``regex`` module.

    >>> pretokenize("low lower", "whitespace")
    ['low', ' ', 'lower']
    >>> pretokenize("Hello world 12345!")
    ['Hello', ' world', ' ', '123', '45', '!']
    """
    if pretokenizer == "none":
        return [text] if text else []
    if pretokenizer == "whitespace":
        pieces: list[str] = []
        start = 0
        for i in range(1, len(text) + 1):
            if i == len(text) or (text[i] in _WHITE_SPACE) != (text[i - 1] in _WHITE_SPACE):
                pieces.append(text[start:i])
                start = i
        return pieces
    import regex  # for \p{..} and possessive quantifiers

    return [m for m in regex.findall(PATTERNS.get(pretokenizer, pretokenizer), text) if m]


#: The split patterns of the presets, as tiktoken writes them (kept here rather than taken from
#: the Rust core, so that the oracle does not share the code it checks).
PATTERNS = {
    "gpt2": r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""",
    "cl100k": (
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
        r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
    ),
    "o200k": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+"""
            r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*"""
            r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}


def count_pretokens(
    texts: Iterable[str], pretokenizer: str = "cl100k", special_tokens: Sequence[str] = ()
) -> Counter[bytes]:
    """How often each distinct pretoken occurs, as UTF-8 bytes. Special tokens' text is cut out
    first and takes no part in training.

    >>> sorted(count_pretokens(["ab ab<|eot|>ab"], "whitespace", ["<|eot|>"]).items())
    [(b' ', 1), (b'ab', 3)]
    """
    counts: Counter[bytes] = Counter()
    for text in texts:
        for stretch in _cut_specials(text, special_tokens):
            counts.update(p.encode("utf-8") for p in pretokenize(stretch, pretokenizer))
    return counts


def _cut_specials(text: str, specials: Sequence[str]) -> list[str]:
    """The stretches of ``text`` between special tokens (leftmost match, longest first)."""
    if not specials:
        return [text]
    out, start, i = [], 0, 0
    by_length = sorted(specials, key=len, reverse=True)
    while i < len(text):
        hit = next((s for s in by_length if text.startswith(s, i)), None)
        if hit is None:
            i += 1
        else:
            out.append(text[start:i])
            i += len(hit)
            start = i
    out.append(text[start:])
    return out


def get_pair_counts(words: Mapping[tuple[int, ...], int]) -> Counter[Pair]:
    """The total count of each adjacent pair: every occurrence inside a word counts, weighted by
    the word's count.

    >>> get_pair_counts({(1, 2, 1, 2): 3, (2, 1): 1})
    Counter({(1, 2): 6, (2, 1): 4})
    """
    counts: Counter[Pair] = Counter()
    for word, n in words.items():
        for pair in itertools.pairwise(word):
            counts[pair] += n
    return counts


def merge(ids: Sequence[int], pair: Pair, idx: int) -> list[int]:
    """Replaces every occurrence of ``pair``, left to right, by ``idx``.

    >>> merge([1, 2, 3, 1, 2], pair=(1, 2), idx=4)
    [4, 3, 4]
    >>> merge([5, 5, 5], pair=(5, 5), idx=9)  # overlapping: the leftmost wins
    [9, 5]
    """
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train_merges(
    counts: Mapping[bytes, int],
    num_merges: int,
    *,
    min_frequency: int = 2,
    max_token_bytes: int | None = None,
) -> list[tuple[Pair, int]]:
    """The BPE merges learned from pretoken counts, each with its count when it was chosen.

    Repeatedly: count all adjacent pairs; take the one with the highest count, ties to the
    smallest ``(left, right)``; stop when that count is below ``min_frequency``. A pair is never
    merged when the token it makes would be longer than ``max_token_bytes``, or when its bytes
    are already a token (``(ab, c)`` after ``(a, bc)``): a vocabulary must not hold the same
    bytes twice, since encoding looks tokens up by their bytes. Such pairs are skipped as if
    they were absent. Merge ``k`` (from 0) makes id ``256 + k``.

    >>> train_merges({b"aaab": 2, b"ab": 1}, 5, min_frequency=1)
    [((97, 97), 4), ((97, 98), 3), ((256, 257), 2)]
    """
    words: dict[tuple[int, ...], int] = {tuple(w): n for w, n in counts.items() if n > 0}
    tokens: list[bytes] = [bytes([b]) for b in range(256)]
    known = set(tokens)
    merges: list[tuple[Pair, int]] = []

    def eligible(pair: Pair) -> bool:
        joined = tokens[pair[0]] + tokens[pair[1]]
        too_long = max_token_bytes is not None and len(joined) > max_token_bytes
        return not too_long and joined not in known

    while len(merges) < num_merges:
        pair_counts = get_pair_counts(words)
        candidates = [(n, pair) for pair, n in pair_counts.items() if eligible(pair)]
        if not candidates:
            break
        # Highest count first; among equal counts the smallest pair.
        n, pair = min(candidates, key=lambda e: (-e[0], e[1]))
        if n < max(min_frequency, 1):
            break
        idx = len(tokens)
        tokens.append(tokens[pair[0]] + tokens[pair[1]])
        known.add(tokens[-1])
        words = {tuple(merge(w, pair, idx)): c for w, c in words.items()}
        merges.append((pair, n))
    return merges


def train(
    texts: Iterable[str],
    vocab_size: int,
    *,
    pretokenizer: str = "cl100k",
    special_tokens: Sequence[str] = (),
    min_frequency: int = 2,
    max_token_bytes: int | None = None,
) -> list[Pair]:
    """The merges for a vocabulary of ``vocab_size`` ids (256 bytes, the merges, then the
    special tokens).

    >>> train(["low lower lowest lowly"], 300, pretokenizer="whitespace")
    [(108, 111), (256, 119), (257, 101)]
    """
    num_merges = vocab_size - 256 - len(special_tokens)
    if num_merges < 0:
        raise ValueError(f"vocab_size must be at least {256 + len(special_tokens)}")
    counts = count_pretokens(texts, pretokenizer, special_tokens)
    merges = train_merges(
        counts, num_merges, min_frequency=min_frequency, max_token_bytes=max_token_bytes
    )
    return [pair for pair, _ in merges]


def vocab_from_merges(merges: Sequence[Pair]) -> dict[bytes, int]:
    """Token bytes -> rank: the 256 bytes, then one token per merge.

    >>> v = vocab_from_merges([(108, 111), (256, 119)])
    >>> v[b"lo"], v[b"low"], len(v)
    (256, 257, 258)
    """
    tokens = [bytes([b]) for b in range(256)]
    for a, b in merges:
        tokens.append(tokens[a] + tokens[b])
    return {t: i for i, t in enumerate(tokens)}


def ranks_to_bytes(ranks: Mapping[bytes, int]) -> dict[int, bytes]:
    """The inverse of a rank table: id -> token bytes."""
    return {i: t for t, i in ranks.items()}


def encode_piece(piece: bytes, ranks: Mapping[bytes, int]) -> list[int]:
    """Encodes one pretoken by tiktoken's rule: start from single bytes and repeatedly join the
    adjacent pair whose joined bytes have the lowest rank (leftmost on a tie), until no
    adjacent pair joins into a token.

    >>> ranks = vocab_from_merges([(108, 111), (256, 119)])
    >>> encode_piece(b"lowly", ranks)
    [257, 108, 121]
    """
    parts = [bytes([b]) for b in piece]
    while len(parts) > 1:
        best = None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            break
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return [ranks[p] for p in parts]


def encode(text: str, ranks: Mapping[bytes, int], pretokenizer: str = "cl100k") -> list[int]:
    """Pretokenizes ``text`` and encodes each piece with :func:`encode_piece`.

    >>> encode("low lowly", vocab_from_merges([(108, 111), (256, 119)]), "whitespace")
    [257, 32, 257, 108, 121]
    """
    ids: list[int] = []
    for piece in pretokenize(text, pretokenizer):
        ids.extend(encode_piece(piece.encode("utf-8"), ranks))
    return ids


def render(token: bytes) -> str:
    """A token as a person reads it in a trace: plain text as is, anything else (spaces,
    control characters, partial UTF-8, commas and brackets) as a Python literal.

    >>> render(b"lo"), render(b" the"), render(b"\\xe4\\xb8")
    ('lo', "' the'", "b'\\\\xe4\\\\xb8'")
    """
    try:
        text = token.decode("utf-8")
    except UnicodeDecodeError:
        return repr(token)
    if text and text.isprintable() and not any(c in _WHITE_SPACE or c in "(),'\"" for c in text):
        return text
    return repr(text)


def trace(merges: Sequence[tuple[Pair, int]]) -> list[str]:
    """The merges as a textbook prints them, one line each.

    >>> trace([((108, 111), 4), ((256, 32), 1)])
    ["merge 1: (l, o) -> 'lo'  count 4", "merge 2: (lo, ' ') -> 'lo '  count 1"]
    """
    tokens = [bytes([b]) for b in range(256)]
    lines = []
    for k, ((a, b), n) in enumerate(merges, start=1):
        new = tokens[a] + tokens[b]
        tokens.append(new)
        left, right = render(tokens[a]), render(tokens[b])
        lines.append(f"merge {k}: ({left}, {right}) -> {new_repr(new)}  count {n}")
    return lines


def new_repr(token: bytes) -> str:
    """The merged token in a trace: always quoted (``'lo'``), bytes when not UTF-8."""
    try:
        return repr(token.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(token)
