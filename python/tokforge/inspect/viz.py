"""The drawing primitives of :mod:`tokforge.inspect`: printable token text, a colour per token
id (the same in the terminal and in HTML), plain-text tables, and the HTML page and styles.

Nothing here tokenizes and nothing here knows the views: each view module (explanation,
comparison, stats) draws itself with these. This module imports nothing from tokforge.
"""

from __future__ import annotations

import codecs
import colorsys
import html
import os
import sys
import unicodedata
from collections.abc import Callable, Container, Iterable, Sequence
from typing import IO, Any

__all__ = [
    "CSS",
    "GLYPHS",
    "SPECIAL_CSS",
    "alternate_rgb",
    "ansi_dim",
    "ansi_mark",
    "ansi_token",
    "colour_choices",
    "display_width",
    "html_page",
    "pad",
    "plural",
    "printable",
    "table",
    "token_css",
    "token_rgb",
    "token_rgb_choice",
    "use_color",
    "wrap_pieces",
    "xterm256",
]

#: How invisible characters are drawn inside a token. A space is a middle dot (as in editors
#: that show whitespace), a tab an arrow, a newline a return sign; other C0 controls and DEL use
#: the Unicode "control pictures" block. Bytes that are not whole UTF-8 characters are drawn as
#: ``<0xE2>`` (the convention SentencePiece uses for byte tokens).
GLYPHS: dict[str, str] = {
    " ": "·",
    "\t": "→",
    "\n": "↵",
    "\r": "␍",
    "\x7f": "␡",
    **{chr(c): chr(0x2400 + c) for c in range(0x20) if chr(c) not in "\t\n\r"},
}
_GLYPH_TABLE = str.maketrans(GLYPHS)


def _hex_bytes(err: UnicodeError) -> tuple[str, int]:
    if not isinstance(err, UnicodeDecodeError):
        raise err
    bad = err.object[err.start : err.end]
    return "".join(f"<0x{b:02X}>" for b in bad), err.end


codecs.register_error("tokforge.hexbytes", _hex_bytes)


def printable(data: bytes, *, newline: str = "") -> str:
    """A token's bytes as something a person can read: UTF-8 text with :data:`GLYPHS` for
    whitespace and controls, and ``<0xNN>`` for each byte of an incomplete character.
    ``newline`` is appended after each newline glyph (``"\\n"`` keeps line breaks visible).

    >>> printable(b" hello\\tworld")
    '·hello→world'
    >>> printable(b"\\xe2\\x82")  # the first two bytes of the euro sign
    '<0xE2><0x82>'
    >>> printable(b" \\xc3\\xa9")
    '·é'
    """
    text = data.decode("utf-8", errors="tokforge.hexbytes").translate(_GLYPH_TABLE)
    if newline:
        text = text.replace(GLYPHS["\n"], GLYPHS["\n"] + newline)
    return text


# ------------------------------------------------------------------------------------ colours


def _mix32(x: int) -> int:
    """A 32-bit integer hash (the finaliser of MurmurHash3): nearby ids get unrelated values,
    and the result never depends on the Python process (unlike ``hash`` of a ``str``)."""
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & 0xFFFFFFFF
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def token_rgb(token_id: int) -> tuple[int, int, int]:
    """The pastel background colour of a token id, as 0-255 RGB: the hue comes from a hash of
    the id, so a token has the same colour in every text, terminal and page. Light enough that
    black text on it stays readable.

    >>> token_rgb(73700) == token_rgb(73700)
    True
    """
    h = _mix32(token_id)
    hue = (h & 0xFFFF) / 0x10000
    light = 0.78 + ((h >> 16) & 0xFF) / 0xFF * 0.10  # 0.78 .. 0.88
    sat = 0.55 + ((h >> 24) & 0xFF) / 0xFF * 0.30  # 0.55 .. 0.85
    r, g, b = colorsys.hls_to_rgb(hue, light, sat)
    return round(r * 255), round(g * 255), round(b * 255)


def alternate_rgb(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """The colour's opposite hue at the same lightness (saturation at least 0.5): as readable
    under black text, and never the same colour. A token takes it instead of its own colour
    when the token just before it is drawn in that colour (see :func:`colour_choices`)."""
    h, light, sat = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
    r, g, b = colorsys.hls_to_rgb((h + 0.5) % 1.0, light, max(sat, 0.5))
    return round(r * 255), round(g * 255), round(b * 255)


def _third_rgb(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    h, light, sat = colorsys.rgb_to_hls(*(c / 255 for c in rgb))
    r, g, b = colorsys.hls_to_rgb((h + 1 / 3) % 1.0, light, max(sat, 0.5))
    return round(r * 255), round(g * 255), round(b * 255)


def token_rgb_choice(token_id: int, choice: int = 0) -> tuple[int, int, int]:
    """The token's own colour (``choice`` 0, :func:`token_rgb`), its alternate (1,
    :func:`alternate_rgb`) or a third hue (2), for when both others equal the neighbour's."""
    rgb = token_rgb(token_id)
    if choice == 1:
        return alternate_rgb(rgb)
    if choice >= 2:
        return _third_rgb(rgb)
    return rgb


def _rgb_key(rgb: tuple[int, int, int]) -> object:
    return rgb


def colour_choices(
    ids: Sequence[int],
    specials: Container[int] = frozenset(),
    *,
    terminal: bool = False,
) -> list[int]:
    """Which colour each token of a sequence is drawn in, so that neighbours never share one:
    0 for the token's own colour (the same id has it everywhere), 1 for the alternate, 2 for
    a third hue, taken only when the token drawn just before has the colour that would come
    first. With ``terminal=True`` colours count as equal when they fall on the same entry of
    the 256-colour palette (:func:`xterm256`). Special tokens (``specials``) alternate between
    their two styles.

    >>> colour_choices([15717, 15717, 15717, 42])
    [0, 1, 0, 0]
    """
    key: Callable[[tuple[int, int, int]], object] = xterm256 if terminal else _rgb_key
    out: list[int] = []
    previous: object = None
    for t in ids:
        if t in specials:
            choice = 1 if previous == ("special", 0) else 0
            previous = ("special", choice)
            out.append(choice)
            continue
        for choice in (0, 1, 2):
            k = key(token_rgb_choice(t, choice))
            if k != previous:
                break
        previous = k
        out.append(choice)
    return out


def token_css(token_id: int, choice: int = 0) -> str:
    """:func:`token_rgb` (or the ``choice`` of :func:`token_rgb_choice`) as a CSS colour
    (``#rrggbb``)."""
    r, g, b = token_rgb_choice(token_id, choice)
    return f"#{r:02x}{g:02x}{b:02x}"


#: The two backgrounds of special tokens in HTML (white bold text on them).
SPECIAL_CSS = ("#24292f", "#6639ba")

_CUBE = (0, 95, 135, 175, 215, 255)  # the levels of xterm's 6x6x6 colour cube


def xterm256(rgb: tuple[int, int, int]) -> int:
    """The nearest colour of the xterm 256-colour cube (indices 16..231)."""
    r, g, b = (min(range(6), key=lambda i: abs(_CUBE[i] - v)) for v in rgb)
    return 16 + 36 * r + 6 * g + b


def ansi_token(text: str, token_id: int, *, special: bool = False, choice: int = 0) -> str:
    """``text`` on the token's background colour, in black, for a 256-colour terminal (special
    tokens are drawn reversed: white on black, bold, or on purple as ``choice`` 1).
    ``choice`` picks the colour as :func:`colour_choices` says, so that neighbours differ."""
    if special:
        return f"\x1b[1;97;{45 if choice else 40}m{text}\x1b[0m"
    return f"\x1b[48;5;{xterm256(token_rgb_choice(token_id, choice))}m\x1b[38;5;16m{text}\x1b[0m"


def ansi_mark(text: str) -> str:
    """Bold and underlined: how differences are highlighted in a terminal."""
    return f"\x1b[1;4m{text}\x1b[0m"


def ansi_dim(text: str) -> str:
    return f"\x1b[2m{text}\x1b[0m"


def use_color(color: bool | str | None = None, stream: IO[str] | None = None) -> bool:
    """Whether to emit ANSI colours: ``True``/``"always"``, ``False``/``"never"``, or
    ``None``/``"auto"``: when ``stream`` (default ``sys.stdout``) is a terminal and the
    ``NO_COLOR`` environment variable is unset (https://no-color.org)."""
    if color in (True, "always"):
        return True
    if color in (False, "never"):
        return False
    if os.environ.get("NO_COLOR"):
        return False
    out = stream if stream is not None else sys.stdout
    isatty = getattr(out, "isatty", None)
    return bool(isatty and isatty())


# ------------------------------------------------------------------------------------ tables


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: East Asian wide and fullwidth characters count two,
    combining marks zero."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``n`` and the noun, singular for one: ``1 token``, ``3 tokens``, ``0 tokens``.

    >>> plural(1, "token"), plural(2, "match", "matches")
    ('1 token', '2 matches')
    """
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


def pad(text: str, width: int, align: str = "<") -> str:
    """``text`` padded with spaces to ``width`` terminal columns (``align`` ``<`` or ``>``)."""
    fill = " " * max(0, width - display_width(text))
    return fill + text if align == ">" else text + fill


def wrap_pieces(
    head: str,
    pieces: Sequence[str],
    width: int,
    *,
    widths: Sequence[int] | None = None,
) -> list[str]:
    """``head`` then ``pieces`` (a split's ``[token]`` strings), broken onto continuation
    lines indented under the first piece when a line would pass ``width`` columns; a piece is
    never cut. ``widths`` gives each piece's columns when the pieces hold escape codes.

    >>> wrap_pieces("  a  ", ["[one]", "[two]", "[three]"], 16)
    ['  a  [one][two]', '     [three]']
    """
    indent = display_width(head)
    lines: list[str] = []
    line, used, n_on_line = head, indent, 0
    for k, piece in enumerate(pieces):
        w = widths[k] if widths is not None else display_width(piece)
        if n_on_line and used + w > width:
            lines.append(line)
            line, used, n_on_line = " " * indent, indent, 0
        line += piece
        used += w
        n_on_line += 1
    lines.append(line)
    return lines


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    align: str | None = None,
    indent: str = "",
) -> str:
    """A plain-text table: a header, a rule, then one line per row; columns are as wide as
    their widest cell (wide characters counted as two). ``align`` has one ``<`` or ``>`` per
    column (default: numbers right, the rest left).

    >>> print(table(["id", "token"], [[496, "str"], [15717, "berry"]]))
       id  token
    -----  -----
      496  str
    15717  berry
    """
    raw = [list(r) for r in rows]
    body = [["" if c is None else str(c) for c in row] for row in raw]
    if align is None:
        numeric = [
            bool(raw) and all(isinstance(r[i], (int, float)) or r[i] is None for r in raw)
            for i in range(len(headers))
        ]
        align = "".join(">" if n else "<" for n in numeric)
    widths = [display_width(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], display_width(cell))
    lines = [
        "  ".join(pad(h, w, a) for h, w, a in zip(headers, widths, align, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    for row in body:
        lines.append("  ".join(pad(c, w, a) for c, w, a in zip(row, widths, align, strict=True)))
    return "\n".join(indent + line.rstrip() for line in lines)


# ------------------------------------------------------------------------------------ HTML

CSS = """
.tokforge-view { font-family: ui-sans-serif, system-ui, sans-serif; color: #1f2328; }
.tokforge-view .tf-head { margin: 0 0 .4em; font-size: 14px; color: #57606a; }
.tokforge-view .tf-head b { color: #1f2328; }
.tokforge-view .tf-text {
  font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 17px; line-height: 2.0; white-space: pre-wrap; word-break: break-all;
  margin: 0 0 1em;
}
.tokforge-view .tok {
  position: relative; border-radius: 3px; padding: 2px 0; margin: 0 1px;
  box-shadow: inset 0 0 0 1px rgba(0, 0, 0, .12); color: #111;
}
.tokforge-view .tok.special { background: #24292f; color: #fff; font-weight: bold; }
.tokforge-view .tok.partial { outline: 1px dashed #cf222e; }
.tokforge-view .tok:hover { box-shadow: inset 0 0 0 2px #0969da; }
.tokforge-view .tok:hover::after {
  content: attr(data-tip); position: absolute; left: 0; top: 100%; z-index: 10;
  white-space: pre; font-size: 12px; line-height: 1.3; padding: 3px 6px; border-radius: 4px;
  background: #24292f; color: #fff; pointer-events: none;
}
.tokforge-view .tf-ids { font-family: ui-monospace, monospace; font-size: 13px; color: #57606a; }
.tokforge-view .tf-row { margin-bottom: .8em; }
.tokforge-view .tf-legend { font-size: 12px; color: #8c959f; margin-top: .6em; }
.tokforge-view .tf-sample { margin: .8em 0 .3em; font-size: 14px; }
.tokforge-view .tf-row .tokforge-view .tf-text { margin: 0; }
.tokforge-view h1 { font-size: 24px; }
.tokforge-view h2 { font-size: 18px; margin-top: 1.4em; }
.tokforge-view .tf-toc ol { margin: 0; line-height: 1.6; }
.tokforge-view .tok.differs { text-decoration: underline 2px #cf222e; text-underline-offset: 4px; }
"""


def html_page(title: str, body: str) -> str:
    """A self-contained HTML5 page around ``body`` (no scripts, no external resources)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        "<style>body { margin: 24px; background: #fff; }</style>"
        f"</head><body>\n{body}\n</body></html>\n"
    )
