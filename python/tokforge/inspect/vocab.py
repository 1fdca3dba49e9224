"""What a vocabulary holds: tokens by substring or regex, the longest ones, tokens by script,
tokens no merge reaches, the rarest merges, and a readable dump."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import TokforgeError
from ..protocol import TokenizerLike as Tokenizer
from . import viz
from .merge_tree import PartsFinder

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class VocabEntry:
    """A token of the vocabulary."""

    id: int
    bytes: bytes

    @property
    def text(self) -> str:
        """The printable form (see :func:`tokforge.viz.printable`)."""
        return viz.printable(self.bytes)

    @property
    def n_chars(self) -> int:
        return len(self.bytes.decode("utf-8", errors="replace"))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "hex": self.bytes.hex(), "text": self.text}


def _ordinary(tok: Tokenizer) -> list[tuple[int, bytes]]:
    """``(id, bytes)`` of every ordinary token, by id."""
    return sorted((i, b) for b, i in tok._mergeable_ranks.items())


def find_tokens(
    tok: Tokenizer,
    query: str | bytes,
    *,
    regex: bool = False,
    ignore_case: bool = False,
    limit: int | None = None,
) -> list[VocabEntry]:
    """Ordinary tokens containing ``query`` (a substring, or with ``regex=True`` a Python
    regular expression searched anywhere in the token), by id. A ``str`` query is matched
    against each token's text (bytes that are not whole characters read as U+FFFD); a ``bytes``
    query against its bytes.

    >>> from tokforge import Tokenizer
    >>> tok = Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="whitespace")
    >>> [e.text for e in find_tokens(tok, "ow")]
    ['low']
    >>> [e.id for e in find_tokens(tok, "^lo", regex=True)]
    [256, 257]
    """
    flags = re.IGNORECASE if ignore_case else 0
    as_bytes = isinstance(query, (bytes, bytearray))
    source: str | bytes
    if isinstance(query, (bytes, bytearray)):
        source = bytes(query) if regex else re.escape(bytes(query))
    else:
        source = query if regex else re.escape(query)
    try:
        pat: Any = re.compile(source, flags)
    except re.error as e:
        raise TokforgeError(f"bad regular expression {query!r}: {e}") from None
    out = []
    for i, data in _ordinary(tok):
        subject: Any = data if as_bytes else data.decode("utf-8", errors="replace")
        if pat.search(subject):
            out.append(VocabEntry(i, data))
            if limit is not None and len(out) >= limit:
                break
    return out


def longest_tokens(
    tok: Tokenizer, n: int = 20, *, by: Literal["bytes", "chars"] = "bytes"
) -> list[VocabEntry]:
    """The ``n`` longest ordinary tokens, in bytes or in characters (ties: lower id first)."""
    if by not in ("bytes", "chars"):
        raise TokforgeError(f"by must be 'bytes' or 'chars', not {by!r}")
    entries = [VocabEntry(i, b) for i, b in _ordinary(tok)]
    key = (lambda e: len(e.bytes)) if by == "bytes" else (lambda e: e.n_chars)
    entries.sort(key=lambda e: (-key(e), e.id))
    return entries[:n]


#: Scripts recognised from the first word of a character's Unicode name (its script in almost
#: every case); other letters count as "Other".
_SCRIPT_WORDS = {
    w: w.title()
    for w in (
        "LATIN GREEK COPTIC CYRILLIC ARMENIAN HEBREW ARABIC SYRIAC THAANA NKO DEVANAGARI BENGALI "
        "GURMUKHI GUJARATI ORIYA TAMIL TELUGU KANNADA MALAYALAM SINHALA THAI LAO TIBETAN MYANMAR "
        "GEORGIAN ETHIOPIC CHEROKEE KHMER MONGOLIAN HIRAGANA KATAKANA BOPOMOFO HANGUL TIFINAGH "
        "JAVANESE BALINESE SUNDANESE TAGALOG YI VAI LISU"
    ).split()
}
_SCRIPT_WORDS.update({"CJK": "Han", "KANGXI": "Han", "NKO": "NKo"})


def _letter_script(ch: str) -> str:
    words = unicodedata.name(ch, "").replace("-", " ").split()
    while words and words[0] in ("FULLWIDTH", "HALFWIDTH"):
        words = words[1:]
    return _SCRIPT_WORDS.get(words[0], "Other") if words else "Other"


def script_of(data: bytes) -> str:
    """The writing system of a token: the script of its letters (``Latin``, ``Cyrillic``,
    ``Han``, ...; ``Mixed`` when they belong to several), else ``Digits``, ``Whitespace`` or
    ``Punctuation/symbols``; ``Partial UTF-8`` when the bytes are not whole characters.
    The script comes from the first word of each letter's Unicode name (Python has no script
    property), which matches the Unicode Script property for letters of the listed scripts.

    >>> [script_of(s.encode()) for s in (" hello", "привет", "日本", "12", " \\n", "a日")]
    ['Latin', 'Cyrillic', 'Han', 'Digits', 'Whitespace', 'Mixed']
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "Partial UTF-8"
    scripts = set()
    digits = False
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] == "L":
            scripts.add(_letter_script(ch))
        elif cat == "Nd":
            digits = True
    if len(scripts) == 1:
        return scripts.pop()
    if scripts:
        return "Mixed"
    if digits:
        return "Digits"
    if text and text.isspace():
        return "Whitespace"
    return "Punctuation/symbols"


def tokens_by_script(tok: Tokenizer) -> dict[str, list[int]]:
    """The ordinary tokens grouped by :func:`script_of`, largest group first."""
    groups: dict[str, list[int]] = {}
    for i, data in _ordinary(tok):
        groups.setdefault(script_of(data), []).append(i)
    return dict(sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])))


@dataclass(frozen=True)
class UnreachableToken:
    """A token no merge builds: BPE on its bytes, with only the merges ranked below it, stops
    at ``parts`` (three or more tokens), and no merge joins three tokens."""

    id: int
    bytes: bytes
    parts: list[int]
    #: Whether the token's text, alone, is one piece of the pretokenizer. tokforge (like
    #: tiktoken) looks a whole piece up in the vocabulary before merging, so such a token still
    #: appears when a piece is exactly its bytes; when false it is effectively dead.
    whole_piece: bool

    @property
    def text(self) -> str:
        return viz.printable(self.bytes)


def unreachable_tokens(tok: Tokenizer) -> list[UnreachableToken]:
    """Ordinary tokens that BPE merges can never produce (see :class:`UnreachableToken`).

    A token ``t`` of rank ``r`` is made by merges exactly when BPE on its own bytes, using only
    merges of rank below ``r``, ends in two parts (which rank ``r`` then joins): merges act
    within a piece independently of its surroundings, so if ``t`` is ever built in a text, it
    is built from its bytes alone. This holds for rank files (cl100k, o200k) and trained
    vocabularies alike; it is checked with :meth:`Tokenizer.merge_parts`.

    >>> from tokforge import Tokenizer
    >>> # ab, bc, bcd, then "abcd" = a + bcd; but BPE on "abcd" makes [ab][c][d] and stops
    >>> tok = Tokenizer.from_merges([(97, 98), (98, 99), (257, 100), (97, 258)],
    ...                             pretokenizer="whitespace")
    >>> [(u.id, u.text, u.parts) for u in unreachable_tokens(tok)]
    [(259, 'abcd', [256, 99, 100])]
    """
    out = []
    for i, data in _ordinary(tok):
        if len(data) < 2:
            continue
        parts = tok.merge_parts(i)
        if len(parts) > 2:
            try:
                whole = tok.split(data.decode("utf-8")) == [data.decode("utf-8")]
            except UnicodeDecodeError:
                whole = False
            out.append(UnreachableToken(i, data, parts, whole))
    return out


@dataclass(frozen=True)
class RareToken:
    """A merged token that training saw rarely or that text rarely produces."""

    id: int
    bytes: bytes
    #: How often the pair occurred when training merged it (from the tokenizer's metadata),
    #: or ``None`` when the tokenizer does not record it.
    merge_count: int | None
    #: How often the token appears when the given corpus is encoded, or ``None`` without one.
    usage: int | None

    @property
    def text(self) -> str:
        return viz.printable(self.bytes)


def _merge_counts(tok: Tokenizer) -> list[int] | None:
    """The per-merge counts a trained tokenizer records in its metadata, when present: a list
    of integers, one per merge, under ``merge_counts`` or ``counts``, at the top level or in
    ``training``."""
    merges = tok.merges
    if not merges:
        return None
    meta = tok.metadata
    for holder in (meta, meta.get("training")):
        if not isinstance(holder, dict):
            continue
        for key in ("merge_counts", "counts"):
            value = holder.get(key)
            if (
                isinstance(value, list)
                and len(value) >= len(merges)
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            ):
                return value[: len(merges)]
    return None


def rarest_merges(
    tok: Tokenizer, n: int = 20, *, corpus: Iterable[str] | None = None
) -> list[RareToken]:
    """The ``n`` merged tokens most likely to be under-trained ("glitch token" candidates).

    With a ``corpus`` (texts), each token's usage is counted by encoding it, and the least
    used come first (zero means the vocabulary holds a token this text never produces; large
    tokens absorbed into larger ones end up here, which is how glitch tokens arise). Without
    one, a trained tokenizer's recorded merge counts are used (how often the pair occurred when
    it was merged; the lowest first). Ties go to the later merge. A rank file records no
    counts, so it needs a corpus."""
    counts = _merge_counts(tok)
    usage = None
    if corpus is not None:
        import numpy as np

        texts = [corpus] if isinstance(corpus, str) else list(corpus)
        ids, _ = tok.encode_batch_to_numpy(texts, disallowed_special=())
        usage = np.bincount(ids.astype(np.int64), minlength=tok.n_vocab)
    elif counts is None:
        raise TokforgeError(
            f"{tok.name or 'this tokenizer'} records no merge counts; give a corpus to count "
            "how often each token is used"
        )
    rows = []
    for i, data in _ordinary(tok):
        if len(data) < 2 and (tok.merges is not None or i < 256):
            continue
        mc = counts[i - 256] if counts is not None and 256 <= i < 256 + len(counts) else None
        use = int(usage[i]) if usage is not None else None
        rows.append(RareToken(i, data, mc, use))
    if usage is not None:
        rows.sort(key=lambda r: (r.usage, r.merge_count if r.merge_count is not None else 0, -r.id))
    else:
        rows.sort(key=lambda r: (r.merge_count, -r.id))
    return rows[:n]


def vocab_dump(tok: Tokenizer) -> Iterator[str]:
    """The vocabulary, one line per id in merge order, for people to read: a base token as
    ``[a] 97``, a merge as ``[lo][w] -> [low] 257`` (the recorded merges of a trained vocabulary;
    for a rank file, the parts recovered from the ranks), a token no merge builds as
    ``[ab][c][d] -/-> [abcd] 259 (unreachable by merges)``, and special, byte-fallback and
    unused ids with their kind.

    >>> from tokforge import Tokenizer
    >>> tok = Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="whitespace",
    ...                             special_tokens={"<|end|>": 258})
    >>> list(vocab_dump(tok))[-3:]
    ['[l][o] -> [lo] 256', '[lo][w] -> [low] 257', '[<|end|>] 258 special']
    """
    finder = PartsFinder(tok)
    labels: dict[int, str] = {}

    def label(t: int) -> str:
        if t not in labels:
            labels[t] = f"[{viz.printable(tok.decode_single_token_bytes(t))}]"
        return labels[t]

    for t in range(tok.n_vocab):
        kind = tok.token_kind(t)
        if kind == "unused":
            yield f"{t} unused"
            continue
        if kind != "ordinary":
            yield f"{label(t)} {t} {kind}"
            continue
        parts = finder.parts(t)
        if parts == [t]:
            yield f"{label(t)} {t}"
        elif len(parts) == 2:
            yield f"{label(parts[0])}{label(parts[1])} -> {label(t)} {t}"
        else:
            joined = "".join(label(p) for p in parts)
            yield f"{joined} -/-> {label(t)} {t} (unreachable by merges)"
