"""Several tokenizers' splits of one text, side by side (:func:`compare`): each row draws its
own tokens whole, and the rows line up where every tokenizer has a boundary.

>>> from tokforge import Tokenizer
>>> a = Tokenizer.from_merges([(97, 98)], pretokenizer="none", name="a")
>>> b = Tokenizer.from_merges([(98, 99)], pretokenizer="none", name="b")
>>> print(compare([a, b], "abcd").to_text())
a          3  |ab|c|d|
               ^^ ^
b          3  |a|bc|d|
               ^ ^^
"""

from __future__ import annotations

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
        """One row per tokenizer, each token drawn whole between ``|`` marks. The rows line
        up at the boundaries every tokenizer shares: between two of them each row's tokens
        are padded to the same width. Without colour a ``^`` line under a row marks its
        differing tokens; with colour tokens are coloured by id (neighbours never alike) and
        the differing ones underlined."""
        colored = viz.use_color(color)
        n_bytes = len(self.text.encode("utf-8"))
        shared = set.intersection(*({a for a, _ in s} | {n_bytes} for s in self._spans))
        shared.add(0)
        # each row's tokens grouped into segments between shared boundaries
        segments: list[list[list[int]]] = []
        for spans in self._spans:
            row: list[list[int]] = []
            for i, (a, _) in enumerate(spans):
                if a in shared or not row:
                    row.append([])
                row[-1].append(i)
            segments.append(row)
        texts = [[t.text for t in e.tokens] for e in self.explanations]
        n_segments = len(segments[0]) if segments else 0
        seg_w = [
            max(
                sum(viz.display_width(texts[k][i]) for i in segments[k][j])
                + len(segments[k][j])
                - 1
                for k in range(len(segments))
            )
            for j in range(n_segments)
        ]
        differing = self.differing()
        names = [e.tokenizer_name for e in self.explanations]
        name_w = max([viz.display_width(n) for n in names] + [9])
        count_w = max(len(str(c)) for c in self.counts) if self.counts else 1
        out = []
        for k, e in enumerate(self.explanations):
            diff = set(differing[k])
            choices = viz.colour_choices(e.ids, e.special_ids, terminal=True)
            prefix = f"{viz.pad(e.tokenizer_name, name_w)}  {len(e.tokens):>{count_w}}  "
            row_parts = ["|"]
            marks = [" "]
            for j, seg in enumerate(segments[k]):
                used = 0
                for n, i in enumerate(seg):
                    if n:
                        row_parts.append("|")
                        marks.append(" ")
                    shown = texts[k][i]
                    w = viz.display_width(shown)
                    used += w + (1 if n else 0)
                    marks.append(("^" if i in diff else " ") * w)
                    if colored:
                        t = e.tokens[i]
                        shown = viz.ansi_token(
                            shown, t.id, special=t.kind == "special", choice=choices[i]
                        )
                        if i in diff:
                            shown = viz.ansi_mark(shown)
                    row_parts.append(shown)
                row_parts.append(" " * (seg_w[j] - used) + "|")
                marks.append(" " * (seg_w[j] - used + 1))
            out.append(prefix + "".join(row_parts))
            if diff and not colored:
                out.append(" " * len(prefix) + "".join(marks).rstrip())
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
            f" · {viz.plural(len(e.tokens), 'token')}</div>"
            f'<div class="tf-text">{token_spans_html(e, frozenset(differs))}</div></div>'
        )
    return f'<div class="tokforge-view"><style>{viz.CSS}</style>{"".join(rows)}</div>'
