"""The classic tokenization surprises, shown for any tokenizer with a one-line explanation each:
why letter counting fails (``strawberry``), how numbers are chunked, acronyms, case and leading
spaces, trailing whitespace, code indentation, and what other languages cost.

>>> from tokforge import Tokenizer
>>> toy = Tokenizer.from_merges([(114, 114), (256, 121)], pretokenizer="gpt2", name="toy")
>>> report = artifacts([toy], only=["strawberry"])
>>> report.results[0].rows[0].note
"r's: [r]×1 [rry]×2"
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard, cast

from ..encodings import get_encoding, resolve_tokenizer
from ..errors import TokforgeError
from ..protocol import TokenizerLike as Tokenizer
from . import viz
from .explanation import Explanation, explain, explanation_html

__all__ = ["ARTIFACTS", "Artifact", "ArtifactResult", "ArtifactRow", "ArtifactsReport", "artifacts"]

#: A remark on one tokenization: ``(explanation, baseline)`` -> text, where ``baseline`` is the
#: same tokenizer's explanation of the artifact's first text.
Note = Callable[[Explanation, Explanation], str]


@dataclass(frozen=True)
class Artifact:
    """One surprise: texts to split, the general reason in one line, and a note computed from
    each tokenizer's split."""

    key: str
    title: str
    why: str
    #: ``(label, text)``; the label names the row (``""``: the text itself).
    texts: tuple[tuple[str, str], ...]
    note: Note


def _brackets(e: Explanation, indices: Iterable[int]) -> str:
    return "".join(f"[{e.tokens[i].text}]" for i in indices)


def _overlapping(e: Explanation, start: int, end: int) -> list[int]:
    """Positions of the tokens holding characters of ``e.text[start:end]``."""
    return [t.index for t in e.tokens if t.start < end and t.end > start]


def _note_letters(word: str, letter: str) -> Note:
    def note(e: Explanation, _: Explanation) -> str:
        at = e.text.find(word)
        if at < 0:
            return ""
        parts = []
        for i in _overlapping(e, at, at + len(word)):
            t = e.tokens[i]
            lo, hi = max(t.start, at), min(t.end, at + len(word))
            n = e.text[lo:hi].count(letter)
            if n:
                parts.append(f"[{t.text}]×{n}")
        return f"{letter}'s: " + " ".join(parts)

    return note


def _note_digits(e: Explanation, _: Explanation) -> str:
    runs = []
    for m in re.finditer(r"\d+", e.text):
        pieces = []
        for i in _overlapping(e, m.start(), m.end()):
            t = e.tokens[i]
            pieces.append(str(min(t.end, m.end()) - max(t.start, m.start())))
        if len(m.group()) > 1:
            runs.append(f"{m.group()}: {'+'.join(pieces)}")
    return "digits per token: " + ", ".join(runs) if runs else ""


def _note_acronyms(e: Explanation, _: Explanation) -> str:
    out = []
    for m in re.finditer(r"\b[A-Z]{2,}s?\b", e.text):
        idx = _overlapping(e, m.start(), m.end())
        out.append(f"{m.group()} {len(idx)}")
    return "tokens per acronym: " + ", ".join(out) if out else ""


def _note_ids(e: Explanation, _: Explanation) -> str:
    return "ids " + " ".join(str(i) for i in e.ids)


def _note_trailing(e: Explanation, _: Explanation) -> str:
    if not e.tokens:
        return ""
    last = e.tokens[-1]
    return f"ends with [{last.text}] (id {last.id})"


def _note_indent(e: Explanation, _: Explanation) -> str:
    out = []
    for m in re.finditer(r"(?m)^[ \t]+(?=\S)", e.text):
        idx = _overlapping(e, m.start(), m.end())
        out.append(_brackets(e, idx))
    return "indentation in: " + ", ".join(out) if out else ""


def _note_cost(e: Explanation, baseline: Explanation) -> str:
    per_char = len(e.tokens) / max(1, len(e.text))
    if e.text == baseline.text:
        return f"{per_char:.2f} tokens/char (the reference)"
    ratio = len(e.tokens) / max(1, len(baseline.tokens))
    return f"{per_char:.2f} tokens/char, {ratio:.2f}× the tokens of English"


def _note_plain(e: Explanation, _: Explanation) -> str:
    per = len(e.text) / max(1, len(e.tokens))
    return f"{len(e.text)} chars, {e.n_bytes} bytes, {per:.2f} chars/token"


#: The showcase, in display order. The texts are written for tokforge; the translations of the
#: sentence are plain everyday phrasing.
ARTIFACTS: tuple[Artifact, ...] = (
    Artifact(
        "strawberry",
        "Letter counting: how many r's in strawberry?",
        "A model reads token ids, not letters: the r's sit inside multi-letter tokens, so counting "
        "them means remembering how each token is spelled.",
        (("", "strawberry"), ("", " strawberry"), ("", "How many r's are in strawberry?")),
        _note_letters("strawberry", "r"),
    ),
    Artifact(
        "numbers",
        "Numbers and arithmetic: digit grouping",
        "Numbers are cut into chunks (up to three digits from the left in cl100k and o200k), so "
        "the digits of two numbers rarely line up by place value as column arithmetic needs.",
        (
            ("", "123 + 456 = 579"),
            ("", "1234 + 5678 = 6912"),
            ("", "1234567890"),
            ("", "3.14159265"),
            ("", "2024-11-24"),
        ),
        _note_digits,
    ),
    Artifact(
        "acronyms",
        "Acronyms and capitals",
        "All-caps words are rarer than their lower-case forms, so many split into fragments "
        "that the model must learn to read as one name.",
        (("", "GPT-4"), ("", "RLHF for LLMs"), ("", "Ask the WHO, NASA or UNESCO")),
        _note_acronyms,
    ),
    Artifact(
        "case",
        "Same word, different ids: case and leading space",
        "A leading space and each capitalisation give a different token id; the model learns "
        "every variant separately and sees no shared spelling.",
        (
            ("", "hello"),
            ("", " hello"),
            ("", "Hello"),
            ("", " Hello"),
            ("", "HELLO"),
            ("", " HELLO"),
        ),
        _note_ids,
    ),
    Artifact(
        "trailing",
        "Trailing whitespace",
        "Words carry their leading space, so a prompt that ends in a space ends in a lone "
        "space token that training text rarely has there, and completions get worse.",
        (
            ("", "The answer is"),
            ("", "The answer is "),
            ("", "The answer is\n"),
        ),
        _note_trailing,
    ),
    Artifact(
        "indentation",
        "Code indentation",
        "Indentation runs become whitespace tokens whose grouping depends on depth and on "
        "tabs versus spaces (the last space often joins the keyword), and every level costs.",
        (
            ("", "def f(x):\n    return x"),
            ("", "def f(x):\n\treturn x"),
            ("", "for a in b:\n    if a:\n        yield a"),
        ),
        _note_indent,
    ),
    Artifact(
        "languages",
        "The cost of non-English text",
        "Vocabularies learned mostly from English hold long English tokens; the same sentence in "
        "another script takes more tokens, so it costs more and fills the context sooner.",
        (
            ("English", "The weather is nice today, so we are going for a walk in the park."),
            ("German", "Das Wetter ist heute schön, deshalb gehen wir im Park spazieren."),
            ("French", "Il fait beau aujourd'hui, alors nous allons nous promener dans le parc."),
            ("Spanish", "Hoy hace buen tiempo, así que vamos a dar un paseo por el parque."),
            ("Russian", "Сегодня хорошая погода, поэтому мы идём гулять в парк."),
            ("Greek", "Ο καιρός είναι ωραίος σήμερα, οπότε πάμε για βόλτα στο πάρκο."),
            ("Hindi", "आज मौसम अच्छा है, इसलिए हम पार्क में टहलने जा रहे हैं।"),
            ("Arabic", "الطقس جميل اليوم، لذلك سنذهب للتنزه في الحديقة."),
            ("Chinese", "今天天气很好，所以我们去公园散步。"),
            ("Japanese", "今日は天気がいいので、公園を散歩します。"),
            ("Korean", "오늘은 날씨가 좋아서 공원에 산책하러 갑니다."),
        ),
        _note_cost,
    ),
)

_TITLE = "Tokenization artifacts"

_EXTRA = Artifact(
    "yours",
    "Your strings",
    "Your own text, split by each tokenizer.",
    (),
    _note_plain,
)


@dataclass(frozen=True)
class ArtifactRow:
    """One text split by one tokenizer."""

    tokenizer: str
    label: str
    explanation: Explanation
    note: str

    @property
    def text(self) -> str:
        return self.explanation.text


@dataclass(frozen=True)
class ArtifactResult:
    """An :class:`Artifact` with its rows, text by text, tokenizer by tokenizer."""

    artifact: Artifact
    rows: list[ArtifactRow]


class ArtifactsReport:
    """The showcase for some tokenizers: :meth:`to_text` (coloured or not), :meth:`to_json`,
    :meth:`to_html`; displays itself in a notebook."""

    def __init__(self, results: list[ArtifactResult], tokenizer_names: list[str]) -> None:
        self.results = results
        self.tokenizer_names = tokenizer_names

    def __getitem__(self, key: str) -> ArtifactResult:
        for r in self.results:
            if r.artifact.key == key:
                return r
        raise KeyError(key)

    def to_text(self, color: bool | str | None = False, width: int = 100) -> str:
        """Each artifact: its title and reason, then per text one row per tokenizer with the
        token count, the split and the note. Lines stay within ``width`` columns: the notes
        of an artifact go on their own lines when its rows would pass it, a long split goes on
        on indented lines (never cutting a token), and a long text is shortened between words
        with an ellipsis (its split shows it whole)."""
        colored = viz.use_color(color)
        name_w = max(viz.display_width(n) for n in self.tokenizer_names)
        out: list[str] = []
        for n, res in enumerate(self.results, 1):
            a = res.artifact
            out.append(f"{n}. {a.title}")
            out.append(textwrap.fill(a.why, width, initial_indent="   ", subsequent_indent="   "))
            split_w = max(
                (viz.display_width(r.explanation.to_text().replace("\n", "")) for r in res.rows),
                default=0,
            )
            count_w = max((len(str(len(r.explanation))) for r in res.rows), default=1)
            head_w = 5 + name_w + 2 + count_w + 2
            # notes go after the splits when every row of the artifact fits, else below each
            inline = all(
                head_w + split_w + 2 + viz.display_width(r.note) <= width for r in res.rows
            )
            current = None
            for r in res.rows:
                key = (r.label, r.text)
                if key != current:
                    current = key
                    shown = f"{r.label}: {r.text!r}" if r.label else repr(r.text)
                    if viz.display_width(shown) > width - 3:
                        shown = textwrap.shorten(shown, width - 3, placeholder="…")
                    out.append("   " + shown)
                e = r.explanation
                plain = [f"[{viz.printable(t.bytes)}]" for t in e.tokens]
                pieces = plain
                if colored:
                    choices = viz.colour_choices(e.ids, e.special_ids, terminal=True)
                    pieces = [
                        viz.ansi_token(p, t.id, special=t.kind == "special", choice=c)
                        for p, t, c in zip(plain, e.tokens, choices, strict=True)
                    ]
                head = f"     {viz.pad(r.tokenizer, name_w)}  {len(e):>{count_w}}  "
                lines = viz.wrap_pieces(
                    head, pieces, width, widths=[viz.display_width(p) for p in plain]
                )
                if r.note and inline:
                    fill = " " * max(0, split_w - sum(viz.display_width(p) for p in plain))
                    lines[-1] += fill + "  " + r.note
                out += lines
                if r.note and not inline:
                    out += textwrap.wrap(
                        "-> " + r.note,
                        width,
                        initial_indent=" " * len(head),
                        subsequent_indent=" " * (len(head) + 3),
                        break_long_words=False,
                        break_on_hyphens=False,
                    )
            out.append("")
        return "\n".join(out).rstrip() + "\n"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokenizers": self.tokenizer_names,
            "artifacts": [
                {
                    "key": r.artifact.key,
                    "title": r.artifact.title,
                    "why": r.artifact.why,
                    "rows": [
                        {
                            "tokenizer": row.tokenizer,
                            "label": row.label,
                            "text": row.text,
                            "ids": row.explanation.ids,
                            "pieces": row.explanation.pieces,
                            "note": row.note,
                        }
                        for row in r.rows
                    ],
                }
                for r in self.results
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_html(self, *, full_page: bool = True) -> str:
        """A title, a table of contents, then each artifact as a section: title, reason, and
        per text one row per tokenizer (one header: tokenizer, token count, note) with the
        split coloured by id. The styles are included once."""
        import html

        toc = []
        sections = []
        for n, res in enumerate(self.results, 1):
            a = res.artifact
            anchor = f"artifact-{html.escape(a.key)}"
            toc.append(f'<li><a href="#{anchor}">{html.escape(a.title)}</a></li>')
            rows = []
            current = None
            for r in res.rows:
                key = (r.label, r.text)
                if key != current:
                    current = key
                    label = f"{html.escape(r.label)}: " if r.label else ""
                    shown = html.escape(repr(r.text))
                    rows.append(f'<div class="tf-sample">{label}<code>{shown}</code></div>')
                note = f" · {html.escape(r.note)}" if r.note else ""
                rows.append(
                    f'<div class="tf-row"><div class="tf-head"><b>{html.escape(r.tokenizer)}</b>'
                    f" · {viz.plural(len(r.explanation), 'token')}{note}</div>"
                    f"{explanation_html(r.explanation, ids=False, head=False, css=False)}</div>"
                )
            sections.append(
                f'<section id="{anchor}"><h2>{n}. {html.escape(a.title)}</h2>'
                f"<p>{html.escape(a.why)}</p>{''.join(rows)}</section>"
            )
        quoted = [html.escape(n) for n in self.tokenizer_names]
        names = " and ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
        body = (
            f'<div class="tokforge-view tf-artifacts"><style>{viz.CSS}</style>'
            f"<h1>{_TITLE}</h1><p>How {names} split texts that explain common surprises of "
            "language models. Hover a token for its id and bytes.</p>"
            f'<nav class="tf-toc"><h2>Contents</h2><ol>{"".join(toc)}</ol></nav>'
            f"{''.join(sections)}</div>"
        )
        return viz.html_page(_TITLE, body) if full_page else body

    def _repr_html_(self) -> str:
        return self.to_html(full_page=False)

    def __str__(self) -> str:
        return self.to_text(color=False)


def _default_tokenizers() -> list[Tokenizer]:
    found: list[Tokenizer] = []
    errors = []
    for name in ("cl100k_base", "o200k_base"):
        try:
            found.append(get_encoding(name))
        except TokforgeError as e:
            errors.append(str(e).splitlines()[0])
    if not found:
        raise TokforgeError(
            "no tokenizer given and no local cl100k_base/o200k_base rank file: " + errors[0]
        )
    return found


def _is_tokenizer(value: object) -> TypeGuard[Tokenizer]:
    """Whether ``value`` is a tokenizer object rather than a ``--tokenizer`` spec."""
    return not isinstance(value, (str, os.PathLike)) and hasattr(value, "decode_tokens_bytes")


def _tokenizer(spec: object) -> Tokenizer:
    """A tokenizer object as it is; a ``--tokenizer`` spec resolved."""
    if _is_tokenizer(spec):
        return spec
    if isinstance(spec, (str, os.PathLike)):
        return resolve_tokenizer(spec)
    raise TypeError(f"expected str, bytes or os.PathLike object, not {type(spec).__name__}")


def artifacts(
    tokenizers: Sequence[Tokenizer | str] | Tokenizer | str | None = None,
    extra: Iterable[str] = (),
    *,
    only: Iterable[str] | None = None,
    names: Sequence[str] | None = None,
) -> ArtifactsReport:
    """The classic tokenization surprises for ``tokenizers`` (Tokenizer objects or
    ``--tokenizer`` specs such as ``"cl100k"`` or a file; default: cl100k_base and o200k_base
    when their rank files are found), each with its one-line reason and a note computed from
    each split. ``extra`` adds your own strings as a last section; ``only`` keeps the
    artifacts with these keys (``strawberry``, ``numbers``, ``acronyms``, ``case``,
    ``trailing``, ``indentation``, ``languages``); ``names`` label the tokenizers (default:
    their names)."""
    if tokenizers is None:
        toks = _default_tokenizers()
    else:
        items: list[object] = (
            [tokenizers]
            if isinstance(tokenizers, str) or _is_tokenizer(tokenizers)
            else list(cast("Iterable[object]", tokenizers))
        )
        toks = [_tokenizer(t) for t in items]
    if not toks:
        raise TokforgeError("artifacts needs at least one tokenizer")
    if names is not None and len(names) != len(toks):
        raise TokforgeError("give one name per tokenizer")
    labels = list(names) if names is not None else [t.name for t in toks]
    labels = [n or f"tokenizer {k + 1}" for k, n in enumerate(labels)]
    chosen = list(ARTIFACTS)
    if only is not None:
        keys = list(only)
        known = {a.key for a in ARTIFACTS}
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise TokforgeError(
                f"unknown artifact {unknown[0]!r}; known: {', '.join(a.key for a in ARTIFACTS)}"
            )
        chosen = [a for a in ARTIFACTS if a.key in keys]
    extra_texts = tuple(("", s) for s in extra)
    if extra_texts:
        chosen.append(Artifact(_EXTRA.key, _EXTRA.title, _EXTRA.why, extra_texts, _EXTRA.note))
    results = []
    for a in chosen:
        rows = []
        baselines = {k: explain(t, a.texts[0][1]) for k, t in enumerate(toks)} if a.texts else {}
        for label, text in a.texts:
            for k, tok in enumerate(toks):
                e = explain(tok, text)
                e.tokenizer_name = labels[k]
                rows.append(ArtifactRow(labels[k], label, e, a.note(e, baselines[k])))
        results.append(ArtifactResult(a, rows))
    return ArtifactsReport(results, labels)
