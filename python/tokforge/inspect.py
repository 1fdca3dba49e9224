"""See inside a tokenizer: how a text is split (:func:`explain`), how a token was built from
bytes (:func:`lineage`), what the vocabulary holds (:func:`find_tokens`, :func:`longest_tokens`,
:func:`tokens_by_script`, :func:`unreachable_tokens`, :func:`rarest_merges`), a readable dump of
the vocabulary (:func:`vocab_dump`), and several tokenizers side by side (:func:`compare`).

Everything works for any :class:`~tokforge.Tokenizer`: the OpenAI rank files (whose merges are
not published: they are recovered from the ranks with :meth:`Tokenizer.merge_parts`), trained
vocabularies, and hand-built ones. The views render as plain text, coloured terminal text,
tables, JSON and HTML (:mod:`tokforge.viz`); in a notebook they display themselves.

>>> from tokforge import Tokenizer
>>> tok = Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="gpt2", name="toy")
>>> e = explain(tok, "low lo")
>>> e.to_text()
'[low][·][lo]'
>>> [(t.id, t.start, t.end) for t in e]
[(257, 0, 3), (32, 3, 4), (256, 4, 6)]
>>> print(lineage(tok, "low").to_text())
[l][o] -> [lo] 256
[lo][w] -> [low] 257
"""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from . import viz
from .errors import TokforgeError, UnknownTokenError

if TYPE_CHECKING:
    from collections.abc import Set as AbstractSet

    from .tokenizer import Tokenizer

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


# ================================================================================== explain


@dataclass(frozen=True)
class TokenInfo:
    """One token of an explained text."""

    #: Position in the token sequence.
    index: int
    #: The token id.
    id: int
    #: The token's bytes.
    bytes: bytes
    #: Character span ``text[start:end]`` of the characters this token holds bytes of. Tokens
    #: that split one character between them share that character in their spans.
    start: int
    end: int
    #: ``"ordinary"``, ``"special"``, ``"byte_fallback"`` or ``"unused"``.
    kind: str = "ordinary"

    @property
    def text(self) -> str:
        """The printable form: whitespace as glyphs (``·`` ``→`` ``↵``), partial UTF-8 as
        ``<0xE2>``; see :func:`tokforge.viz.printable`."""
        return viz.printable(self.bytes)

    @property
    def partial(self) -> bool:
        """Whether the bytes are not whole UTF-8 characters (a character split across
        tokens)."""
        try:
            self.bytes.decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``id``, ``hex`` (the bytes), ``text`` (printable), ``start``,
        ``end``, ``kind``, ``partial``."""
        return {
            "id": self.id,
            "hex": self.bytes.hex(),
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "kind": self.kind,
            "partial": self.partial,
        }


class Explanation(Sequence[TokenInfo]):
    """A text and its tokens, with views: :meth:`to_text`, :meth:`to_terminal`,
    :meth:`to_table`, :meth:`to_json`, :meth:`to_html`, and ``_repr_html_`` for notebooks.
    It is a sequence of :class:`TokenInfo`."""

    def __init__(self, text: str, tokens: list[TokenInfo], tokenizer_name: str = "") -> None:
        self.text = text
        self.tokens = tokens
        self.tokenizer_name = tokenizer_name

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: Any) -> Any:
        return self.tokens[i]

    def __iter__(self) -> Iterator[TokenInfo]:
        return iter(self.tokens)

    @property
    def ids(self) -> list[int]:
        """The token ids."""
        return [t.id for t in self.tokens]

    @property
    def pieces(self) -> list[str]:
        """Each token's printable form."""
        return [t.text for t in self.tokens]

    @property
    def n_bytes(self) -> int:
        """The UTF-8 length of the text."""
        return sum(len(t.bytes) for t in self.tokens)

    def summary(self) -> str:
        """``cl100k_base: 3 tokens, 10 characters, 10 bytes (3.33 characters per token)``."""
        per = len(self.text) / len(self.tokens) if self.tokens else 0.0
        return (
            f"{self.tokenizer_name or 'tokenizer'}: {len(self.tokens)} tokens, "
            f"{len(self.text)} characters, {self.n_bytes} bytes "
            f"({per:.2f} characters per token)"
        )

    def to_text(self) -> str:
        """Each token in brackets, ``[str][aw][berry]``; a line break follows each newline
        glyph so that multi-line text keeps its shape."""
        return "".join(f"[{viz.printable(t.bytes, newline=chr(10))}]" for t in self.tokens)

    def to_terminal(self, color: bool | str | None = None) -> str:
        """Tokens on coloured backgrounds (a colour per id, the same everywhere) for a
        256-colour terminal; ``color=None`` decides as :func:`tokforge.viz.use_color` does and
        falls back to :meth:`to_text`."""
        if not viz.use_color(color):
            return self.to_text()
        return "".join(
            viz.ansi_token(
                viz.printable(t.bytes, newline="\n"), t.id, special=t.kind == "special"
            ).replace("\n\x1b[0m", "\x1b[0m\n")
            for t in self.tokens
        )

    def to_table(self) -> str:
        """One row per token: position, id, printable form, bytes in hex, character span."""
        rows = [
            [t.index, t.id, t.text, t.bytes.hex(" "), f"{t.start}:{t.end}"]
            + ([t.kind] if t.kind != "ordinary" else [""])
            for t in self.tokens
        ]
        return viz.table(["#", "id", "token", "bytes", "chars", "kind"], rows, align=">><<<<")

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokenizer": self.tokenizer_name,
            "text": self.text,
            "n_tokens": len(self.tokens),
            "n_chars": len(self.text),
            "n_bytes": self.n_bytes,
            "tokens": [t.to_dict() for t in self.tokens],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The :meth:`to_dict` form as JSON (non-ASCII kept as is)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_html(self, *, full_page: bool = True) -> str:
        """A self-contained HTML page (or, with ``full_page=False``, a fragment): one
        ``<span class="tok">`` per token, coloured by id; hovering shows id, bytes and span."""
        body = viz.explanation_html(self)
        if not full_page:
            return body
        return viz.html_page(f"tokforge: {self.tokenizer_name} explains a text", body)

    def _repr_html_(self) -> str:
        return self.to_html(full_page=False)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        shown = "".join(f"[{p}]" for p in self.pieces[:12])
        more = "..." if len(self.tokens) > 12 else ""
        return f"<Explanation {self.tokenizer_name!r} {len(self.tokens)} tokens: {shown}{more}>"


def _char_spans(pieces: list[bytes]) -> list[tuple[int, int]]:
    """The character span of each token, from the UTF-8 of the whole text: every byte that is
    not a continuation byte (``10xxxxxx``) starts a new character.

    >>> _char_spans([b"a", b"\\xe2\\x82", b"\\xac", b"b"])
    [(0, 1), (1, 2), (1, 2), (2, 3)]
    """
    spans = []
    char = -1
    for piece in pieces:
        start = None
        for b in piece:
            if b & 0xC0 != 0x80:
                char += 1
            if start is None:
                start = max(char, 0)
        spans.append((start if start is not None else char + 1, char + 1))
    return spans


def explain(
    tok: Tokenizer,
    text: str,
    *,
    allowed_special: Literal["all"] | AbstractSet[str] = "all",
) -> Explanation:
    """Each token of ``text`` under ``tok``: id, bytes, printable form and character span.

    Special tokens in the text are shown as such (``allowed_special="all"``, unlike
    :meth:`Tokenizer.encode`, which refuses them by default); pass ``allowed_special=set()``
    to see them as ordinary text.

    >>> from tokforge import Tokenizer
    >>> tok = Tokenizer.from_merges([(104, 105)], pretokenizer="gpt2", name="hi")
    >>> explain(tok, "hi\\thi").to_text()
    '[hi][→][hi]'
    """
    ids = tok.encode(text, allowed_special=allowed_special, disallowed_special=())
    pieces = tok.decode_tokens_bytes(ids)
    spans = _char_spans(pieces)
    special = tok.special_tokens
    special_ids = set(special.values())
    tokens = [
        TokenInfo(
            index=i,
            id=t,
            bytes=b,
            start=s,
            end=e,
            kind="special" if t in special_ids else tok.token_kind(t),
        )
        for i, (t, b, (s, e)) in enumerate(zip(ids, pieces, spans, strict=True))
    ]
    decoded = b"".join(pieces).decode("utf-8", errors="replace")
    return Explanation(decoded, tokens, tok.name)


# ================================================================================== lineage


@dataclass(frozen=True)
class LineageNode:
    """A token in a lineage tree: a leaf (a single byte, a base character, a special token),
    a merge of two ``parts``, or, when ``merged`` is false, a token that no merge builds:
    ``parts`` are where BPE on its bytes stops."""

    id: int
    bytes: bytes
    parts: tuple[LineageNode, ...] = ()
    merged: bool = True

    @property
    def is_leaf(self) -> bool:
        return not self.parts

    @property
    def label(self) -> str:
        """``[low]``: the printable form in brackets."""
        return f"[{viz.printable(self.bytes)}]"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "hex": self.bytes.hex(), "text": self.label[1:-1]}
        if self.parts:
            out["parts"] = [p.to_dict() for p in self.parts]
            if not self.merged:
                out["merged"] = False
        return out


@dataclass(frozen=True)
class Merge:
    """One step of a lineage: ``left`` and ``right`` joined into ``result``."""

    left: LineageNode
    right: LineageNode
    result: LineageNode

    def __str__(self) -> str:
        return f"{self.left.label}{self.right.label} -> {self.result.label} {self.result.id}"


class Lineage:
    """How a token was built from bytes: a tree of :class:`LineageNode` and the merges in the
    order they happen (:meth:`steps`), as text (``[lo][w] -> [low] 257``) or a tree."""

    def __init__(
        self, root: LineageNode, tokenizer_name: str = "", source: str = "", kind: str = ""
    ) -> None:
        self.root = root
        self.tokenizer_name = tokenizer_name
        #: The token's kind (:meth:`Tokenizer.token_kind`).
        self.kind = kind or "ordinary"
        #: ``"merges"`` (the tokenizer's recorded merges) or ``"ranks"`` (recovered with
        #: :meth:`Tokenizer.merge_parts`).
        self.source = source

    def _nodes(self) -> Iterator[LineageNode]:
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.parts))

    def steps(self) -> list[Merge]:
        """The merges, each once, in the order BPE makes them (by id: a merge's result always
        has a larger id than its parts)."""
        seen: dict[int, Merge] = {}
        for node in self._nodes():
            if node.merged and len(node.parts) == 2 and node.id not in seen:
                seen[node.id] = Merge(node.parts[0], node.parts[1], node)
        return [seen[k] for k in sorted(seen)]

    def leaves(self) -> list[LineageNode]:
        """The leaves left to right: single bytes (or base characters); their bytes concatenate
        to the token's."""
        return [n for n in self._nodes() if n.is_leaf]

    @property
    def depth(self) -> int:
        """Merges on the longest path from a leaf to the token."""

        def d(n: LineageNode) -> int:
            return 0 if n.is_leaf else 1 + max(d(p) for p in n.parts)

        return d(self.root)

    def to_text(self) -> str:
        """One line per merge, ``[lo][w] -> [low] 257``, in merge order; a token that no merge
        builds ends with ``[ab][c][d] -/-> [abcd] 259 (unreachable by merges)``."""
        lines = [str(m) for m in self.steps()]
        for node in self._nodes():
            if not node.merged:
                joined = "".join(p.label for p in node.parts)
                lines.append(f"{joined} -/-> {node.label} {node.id} (unreachable by merges)")
        if not lines:
            what = "a single byte" if len(self.root.bytes) == 1 else f"a {self.kind} token"
            lines.append(f"{self.root.label} {self.root.id} (no merges: {what})")
        return "\n".join(lines)

    def to_tree(self) -> str:
        """The tree: the token at the top, each merge's two parts below it, single bytes at
        the leaves (an example is in :func:`lineage`)."""
        lines: list[str] = []

        def walk(node: LineageNode, prefix: str, last: bool, top: bool) -> None:
            note = "  (no merge joins these parts)" if not node.merged else ""
            head = "" if top else prefix + ("└── " if last else "├── ")
            lines.append(f"{head}{node.label} {node.id}{note}")
            child_prefix = "" if top else prefix + ("    " if last else "│   ")
            for i, part in enumerate(node.parts):
                walk(part, child_prefix, i == len(node.parts) - 1, False)

        walk(self.root, "", True, True)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokenizer": self.tokenizer_name,
            "source": self.source,
            "token": self.root.id,
            "steps": [[m.left.id, m.right.id, m.result.id] for m in self.steps()],
            "tree": self.root.to_dict(),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def _repr_html_(self) -> str:
        import html

        return (
            '<pre style="font-family: ui-monospace, monospace; line-height: 1.3">'
            f"{html.escape(self.to_tree())}</pre>"
        )

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return f"<Lineage of {self.root.label} {self.root.id}: {len(self.steps())} merges>"


def _resolve_token(tok: Tokenizer, token: int | bytes | str) -> int:
    if isinstance(token, bool):
        raise TypeError("a token is an id (int), bytes or str, not bool")
    if isinstance(token, int):
        tok.decode_single_token_bytes(token)  # raises UnknownTokenError for a bad id
        return token
    if isinstance(token, (bytes, bytearray, str)):
        try:
            return tok.encode_single_token(token)
        except KeyError:
            data = token.encode("utf-8") if isinstance(token, str) else bytes(token)
            ids = tok.encode(data.decode("utf-8", errors="replace"), disallowed_special=())
            raise UnknownTokenError(
                f"{token!r} is not a single token of {tok.name or 'this tokenizer'} "
                f"(it encodes as {ids}); give one token"
            ) from None
    raise TypeError(f"a token is an id (int), bytes or str, not {type(token).__name__}")


class _PartsFinder:
    """The parts each token was made from: the recorded merges of a trained vocabulary, else
    :meth:`Tokenizer.merge_parts` (BPE on the token's bytes with only lower-ranked merges)."""

    def __init__(self, tok: Tokenizer) -> None:
        self.tok = tok
        self.merges = tok.merges
        self.source = "merges" if self.merges else "ranks"

    def parts(self, token: int) -> list[int]:
        merges = self.merges
        if merges and 256 <= token < 256 + len(merges):
            return list(merges[token - 256])
        if merges and token < 256:
            return [token]
        if self.tok.token_kind(token) != "ordinary":
            return [token]
        return self.tok.merge_parts(token)


def lineage(tok: Tokenizer, token: int | bytes | str) -> Lineage:
    """How ``token`` (an id, its bytes, or its text) was built from bytes, merge by merge.

    For a trained vocabulary the recorded merges are followed; for a rank file (cl100k,
    o200k: no merges published) each token's two parts are recovered from the ranks
    (:meth:`Tokenizer.merge_parts`). The leaves are single bytes (or, in a vocabulary with a
    character alphabet, base characters).

    >>> from tokforge import Tokenizer
    >>> tok = Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="whitespace")
    >>> print(lineage(tok, 257).to_tree())
    [low] 257
    ├── [lo] 256
    │   ├── [l] 108
    │   └── [o] 111
    └── [w] 119
    """
    finder = _PartsFinder(tok)
    cache: dict[int, LineageNode] = {}

    def build(t: int) -> LineageNode:
        if t in cache:
            return cache[t]
        data = tok.decode_single_token_bytes(t)
        parts = finder.parts(t)
        if parts == [t]:
            node = LineageNode(t, data)
        else:
            node = LineageNode(t, data, tuple(build(p) for p in parts), merged=len(parts) == 2)
        cache[t] = node
        return node

    t = _resolve_token(tok, token)
    return Lineage(build(t), tok.name, finder.source, tok.token_kind(t))


# ================================================================================== vocabulary


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
    source: str | bytes = bytes(query) if isinstance(query, (bytes, bytearray)) else query
    if not regex:
        source = re.escape(source)  # type: ignore[type-var]
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
    finder = _PartsFinder(tok)
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


# ================================================================================== compare


def _token_of_char(starts: list[int], spans: list[tuple[int, int]]) -> list[int]:
    """For each character (given its byte offsets ``starts``, plus the end), the position of
    the token holding its first byte.

    >>> _token_of_char([0, 1, 4, 5], [(0, 2), (2, 4), (4, 5)])
    [0, 0, 2]
    """
    out = []
    t = 0
    for c in range(len(starts) - 1):
        while spans[t][1] <= starts[c]:
            t += 1
        out.append(t)
    return out


@dataclass
class Comparison:
    """Several tokenizers' splits of one text. A token *differs* when no other tokenizer has a
    token with the same byte span."""

    text: str
    explanations: list[Explanation]
    _spans: list[list[tuple[int, int]]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        self._spans = []
        for e in self.explanations:
            pos = 0
            spans = []
            for t in e.tokens:
                spans.append((pos, pos + len(t.bytes)))
                pos += len(t.bytes)
            self._spans.append(spans)

    @property
    def counts(self) -> list[int]:
        """The number of tokens for each tokenizer."""
        return [len(e.tokens) for e in self.explanations]

    def differing(self) -> list[list[int]]:
        """For each tokenizer, the positions of its tokens whose byte span is not a token span
        in every other tokenizer."""
        sets = [set(s) for s in self._spans]
        out = []
        for k, spans in enumerate(self._spans):
            others = [s for j, s in enumerate(sets) if j != k]
            out.append([i for i, sp in enumerate(spans) if any(sp not in o for o in others)])
        return out

    def to_text(self, color: bool | str | None = False) -> str:
        """The splits on aligned rows: the characters line up across tokenizers and ``|``
        marks a token boundary (``¦`` one inside a character). Without colour a ``^`` line
        under a row marks its differing tokens; with colour tokens are coloured by id and the
        differing ones underlined."""
        colored = viz.use_color(color)
        data = self.text.encode("utf-8")
        # character start offsets in bytes
        starts = []
        pos = 0
        for ch in self.text:
            starts.append(pos)
            pos += len(ch.encode("utf-8"))
        starts.append(len(data))
        bounds = [{a for a, _ in s} | {len(data)} for s in self._spans]
        differing = self.differing()
        names = [e.tokenizer_name for e in self.explanations]
        name_w = max([viz.display_width(n) for n in names] + [9])
        count_w = max(len(str(c)) for c in self.counts) if self.counts else 1
        out = []
        for k, e in enumerate(self.explanations):
            token_at = _token_of_char(starts, self._spans[k])
            diff = set(differing[k])
            # cells: (text, token position or None for a boundary mark)
            cells: list[tuple[str, int | None]] = []
            for c, ch in enumerate(self.text):
                lo, hi = starts[c], starts[c + 1]
                t = token_at[c]
                if any(lo in bs for bs in bounds):
                    cells.append(("|", None) if lo in bounds[k] else (" ", t))
                cells.append((viz.printable(ch.encode("utf-8")), t))
                if any(lo < b < hi for bs in bounds for b in bs):
                    cells.append(("¦", None) if any(lo < b < hi for b in bounds[k]) else (" ", t))
            cells.append(("|", None))
            prefix = f"{viz.pad(e.tokenizer_name, name_w)}  {len(e.tokens):>{count_w}}  "
            if colored:
                row = []
                for t, group in itertools.groupby(cells, key=lambda cell: cell[1]):
                    text = "".join(g for g, _ in group)
                    if t is None:
                        row.append(text)
                        continue
                    info = e.tokens[t]
                    shown = viz.ansi_token(text, info.id, special=info.kind == "special")
                    row.append(viz.ansi_mark(shown) if t in diff else shown)
                out.append(prefix + "".join(row))
            else:
                out.append(prefix + "".join(g for g, _ in cells))
                if diff:
                    marks = "".join(
                        ("^" if t is not None and t in diff else " ") * viz.display_width(g)
                        for g, t in cells
                    )
                    out.append(" " * len(prefix) + marks.rstrip())
        return "\n".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tokenizers": [
                {
                    "name": e.tokenizer_name,
                    "n_tokens": len(e.tokens),
                    "tokens": [t.to_dict() for t in e.tokens],
                    "differing": d,
                }
                for e, d in zip(self.explanations, self.differing(), strict=True)
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_html(self, *, full_page: bool = True) -> str:
        body = viz.comparison_html(self)
        return viz.html_page("tokforge: compare", body) if full_page else body

    def _repr_html_(self) -> str:
        return self.to_html(full_page=False)

    def __str__(self) -> str:
        return self.to_text(color=False)


def compare(
    tokenizers: Sequence[Tokenizer],
    text: str,
    *,
    names: Sequence[str] | None = None,
) -> Comparison:
    """``text`` split by each tokenizer, for side-by-side display (see :class:`Comparison`).
    ``names`` label the rows (default: each tokenizer's name)."""
    if not tokenizers:
        raise TokforgeError("compare needs at least one tokenizer")
    if names is not None and len(names) != len(tokenizers):
        raise TokforgeError("give one name per tokenizer")
    explanations = []
    for k, tok in enumerate(tokenizers):
        e = explain(tok, text)
        if names is not None:
            e.tokenizer_name = names[k]
        elif not e.tokenizer_name:
            e.tokenizer_name = f"tokenizer {k + 1}"
        explanations.append(e)
    return Comparison(text, explanations)
