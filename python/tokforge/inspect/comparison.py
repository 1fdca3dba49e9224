"""Several tokenizers' splits of one text, side by side (:func:`compare`)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import TokforgeError
from ..protocol import TokenizerLike as Tokenizer
from . import viz

if TYPE_CHECKING:
    pass

import html

from .explanation import Explanation, explain, token_spans_html


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
        body = comparison_html(self)
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


def comparison_html(comparison: Comparison) -> str:
    """One row per tokenizer, tokens whose span is not shared by every tokenizer underlined."""
    rows = []
    for e, differs in zip(comparison.explanations, comparison.differing(), strict=True):
        rows.append(
            f'<div class="tf-row"><div class="tf-head"><b>{html.escape(e.tokenizer_name)}</b>'
            f" · {len(e.tokens)} tokens</div>"
            f'<div class="tf-text">{token_spans_html(e, frozenset(differs))}</div></div>'
        )
    return f'<div class="tokforge-view"><style>{viz.CSS}</style>{"".join(rows)}</div>'
