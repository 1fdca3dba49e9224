"""How a text is split: one :class:`TokenInfo` per token (id, bytes, printable form, character
span) in an :class:`Explanation` that renders as text, a table, JSON or HTML."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..protocol import TokenizerLike as Tokenizer
from . import viz

if TYPE_CHECKING:
    from collections.abc import Set as AbstractSet


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
    def special_ids(self) -> set[int]:
        """The ids of the special tokens in the text."""
        return {t.id for t in self.tokens if t.kind == "special"}

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
            f"{self.tokenizer_name or 'tokenizer'}: {viz.plural(len(self.tokens), 'token')}, "
            f"{viz.plural(len(self.text), 'character')}, {viz.plural(self.n_bytes, 'byte')} "
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
        choices = viz.colour_choices(self.ids, self.special_ids, terminal=True)
        return "".join(
            viz.ansi_token(
                viz.printable(t.bytes, newline="\n"),
                t.id,
                special=t.kind == "special",
                choice=choice,
            ).replace("\n\x1b[0m", "\x1b[0m\n")
            for t, choice in zip(self.tokens, choices, strict=True)
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
        body = explanation_html(self)
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


def token_spans_html(explanation: Explanation, differs: frozenset[int] = frozenset()) -> str:
    """One ``<span class="tok">`` per token, each on its id's colour unless the token before
    it is drawn in that colour (then on the alternate: see :func:`tokforge.inspect.viz.
    colour_choices`), so that neighbours never look like one token."""
    parts = []
    choices = viz.colour_choices(explanation.ids, explanation.special_ids)
    for t, choice in zip(explanation.tokens, choices, strict=True):
        classes = ["tok"]
        if t.kind == "special":
            classes.append("special")
            style = f' style="background:{viz.SPECIAL_CSS[choice]}"'
        else:
            style = f' style="background:{viz.token_css(t.id, choice)}"'
        if t.partial:
            classes.append("partial")
        if t.index in differs:
            classes.append("differs")
        hexbytes = " ".join(f"{b:02x}" for b in t.bytes)
        shown = html.escape(viz.printable(t.bytes, newline=chr(10)))
        tip = f"id {t.id} · bytes {hexbytes} · chars {t.start}:{t.end}"
        parts.append(
            f'<span class="{" ".join(classes)}"{style} data-id="{t.id}" '
            f'data-bytes="{hexbytes}" data-tip="{html.escape(tip)}" '
            f'title="{html.escape(tip)}">{shown}</span>'
        )
    return "".join(parts)


def explanation_html(
    explanation: Explanation, *, ids: bool = True, head: bool = True, css: bool = True
) -> str:
    """The HTML fragment of one explained text: a header (tokenizer, counts), one ``<span
    class="tok">`` per token coloured by id (hovering shows id, bytes and character span),
    and the id list. Styles are scoped under ``.tokforge-view`` and included (unless
    ``css=False``, for a page that carries them once), so the fragment can be dropped into a
    notebook cell or a page. ``ids=False`` leaves out the id list and legend, ``head=False``
    the header."""
    e = explanation
    head_html = (
        f'<div class="tf-head"><b>{html.escape(e.tokenizer_name or "tokenizer")}</b> · '
        f"{viz.plural(len(e.tokens), 'token')} · {viz.plural(len(e.text), 'character')} · "
        f"{viz.plural(e.n_bytes, 'byte')}</div>"
        if head
        else ""
    )
    id_line = f'<div class="tf-ids">{e.ids}</div>' if ids else ""
    legend = (
        '<div class="tf-legend">Hover a token for its id, bytes and characters. '
        "Glyphs: · space, → tab, ↵ newline. Dashed outline: part of a character, "
        "shown as its bytes &lt;0xNN&gt;.</div>"
        if ids
        else ""
    )
    style = f"<style>{viz.CSS}</style>" if css else ""
    return (
        f'<div class="tokforge-view">{style}{head_html}'
        f'<div class="tf-text">{token_spans_html(e)}</div>{id_line}{legend}</div>'
    )
