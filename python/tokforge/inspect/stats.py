"""How a tokenizer does on a corpus: bytes, characters and words per token for each file, the
distribution of token lengths, and how much of the vocabulary the text uses.

>>> from tokforge import Tokenizer
>>> tok = Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="gpt2", name="toy")
>>> s = text_stats(tok, {"a": "low low"})
>>> f = s.files[0]
>>> (f.tokens, f.bytes, f.words, f.bytes_per_token)
(3, 7, 2, 2.3333333333333335)
>>> s.length_histogram, s.vocab_used
({1: 1, 3: 2}, 2)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TokforgeError, TokforgeIOError
from ..files import write_atomic
from ..protocol import TokenizerLike as Tokenizer
from . import viz

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from matplotlib.figure import Figure

__all__ = [
    "CorpusStats",
    "FileStats",
    "corpus_stats",
    "plot_stats",
    "stats_json",
    "stats_text",
    "text_stats",
]


@dataclass(frozen=True)
class FileStats:
    """Counts for one file. Words are runs of non-whitespace (``str.split``), so text without
    spaces between words (Chinese, Japanese) counts few, long words."""

    name: str
    bytes: int
    chars: int
    words: int
    tokens: int

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else 0.0

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens if self.tokens else 0.0

    @property
    def tokens_per_word(self) -> float:
        return self.tokens / self.words if self.words else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bytes": self.bytes,
            "chars": self.chars,
            "words": self.words,
            "tokens": self.tokens,
            "bytes_per_token": self.bytes_per_token,
            "chars_per_token": self.chars_per_token,
            "tokens_per_word": self.tokens_per_word,
        }


@dataclass
class CorpusStats:
    """One tokenizer on a set of files."""

    tokenizer_name: str
    #: The number of ordinary tokens (the vocabulary text can use).
    n_ordinary: int
    files: list[FileStats]
    #: Token length in bytes -> how many tokens of that length the corpus encodes to.
    length_histogram: dict[int, int] = field(default_factory=dict)
    #: Token id -> how often it occurs (only ids that occur).
    id_counts: dict[int, int] = field(default_factory=dict)

    @property
    def total(self) -> FileStats:
        """All files together."""
        return FileStats(
            "total",
            sum(f.bytes for f in self.files),
            sum(f.chars for f in self.files),
            sum(f.words for f in self.files),
            sum(f.tokens for f in self.files),
        )

    @property
    def vocab_used(self) -> int:
        """Distinct ids that occur."""
        return len(self.id_counts)

    @property
    def vocab_share(self) -> float:
        """:attr:`vocab_used` as a share of the ordinary tokens."""
        return self.vocab_used / self.n_ordinary if self.n_ordinary else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokenizer": self.tokenizer_name,
            "n_ordinary": self.n_ordinary,
            "files": [f.to_dict() for f in self.files],
            "total": self.total.to_dict(),
            "length_histogram": {str(k): v for k, v in sorted(self.length_histogram.items())},
            "vocab_used": self.vocab_used,
            "vocab_share": self.vocab_share,
        }


def _token_lengths(tok: Tokenizer) -> npt.NDArray[np.int64]:
    import numpy as np

    lengths = np.zeros(tok.n_vocab, dtype=np.int64)
    for data, i in tok._mergeable_ranks.items():
        lengths[i] = len(data)
    for text, i in tok.special_tokens.items():
        lengths[i] = len(text.encode("utf-8"))
    return lengths


def text_stats(tok: Tokenizer, texts: Mapping[str, str], *, name: str | None = None) -> CorpusStats:
    """:class:`CorpusStats` of ``tok`` on ``{name: text}`` (special tokens' text is encoded as
    ordinary text)."""
    import numpy as np

    lengths = _token_lengths(tok)
    counts = np.zeros(tok.n_vocab, dtype=np.int64)
    files = []
    for label, text in texts.items():
        ids = tok.encode_to_numpy(text, disallowed_special=()).astype(np.int64)
        counts += np.bincount(ids, minlength=tok.n_vocab)
        files.append(
            FileStats(label, len(text.encode("utf-8")), len(text), len(text.split()), len(ids))
        )
    used = np.flatnonzero(counts)
    hist = np.bincount(lengths[used], weights=counts[used]) if used.size else np.zeros(0)
    return CorpusStats(
        tokenizer_name=name if name is not None else tok.name,
        n_ordinary=len(tok._mergeable_ranks),
        files=files,
        length_histogram={int(k): int(v) for k, v in enumerate(hist) if v},
        id_counts={int(i): int(counts[i]) for i in used},
    )


def corpus_stats(
    tok: Tokenizer, paths: Sequence[str | os.PathLike[str]], *, name: str | None = None
) -> CorpusStats:
    """:func:`text_stats` on UTF-8 files, each labelled by its file name (by its path when
    two names clash)."""
    names = [Path(p).name for p in paths]
    texts: dict[str, str] = {}
    for p, n in zip(paths, names, strict=True):
        label = n if names.count(n) == 1 else os.fspath(p)
        try:
            texts[label] = Path(p).read_text(encoding="utf-8")
        except OSError as e:
            raise TokforgeIOError(f"{p}: {e.strerror or e}") from e
    return text_stats(tok, texts, name=name)


def stats_text(stats: Sequence[CorpusStats], *, bar_width: int = 30) -> str:
    """The statistics as plain text: per tokenizer a table by file, the vocabulary usage and a
    bar chart of token lengths."""
    out = []
    for s in stats:
        out.append(f"{s.tokenizer_name} ({s.n_ordinary:,} ordinary tokens)")
        rows = []
        for f in [*s.files, *([s.total] if len(s.files) > 1 else [])]:
            rows.append(
                [
                    f.name,
                    f"{f.bytes:,}",
                    f"{f.chars:,}",
                    f"{f.words:,}",
                    f"{f.tokens:,}",
                    f"{f.bytes_per_token:.2f}",
                    f"{f.chars_per_token:.2f}",
                    f"{f.tokens_per_word:.2f}",
                ]
            )
        out.append(
            viz.table(
                ["file", "bytes", "chars", "words", "tokens", "bytes/tok", "chars/tok", "tok/word"],
                rows,
                align="<>>>>>>>",
                indent="  ",
            )
        )
        out.append(
            f"  vocabulary used: {s.vocab_used:,} of {s.n_ordinary:,} ordinary tokens "
            f"({100 * s.vocab_share:.1f}%)"
        )
        total = sum(s.length_histogram.values())
        if total:
            out.append("  token length in bytes: share of tokens")
            cap = 16
            buckets = [0] * (cap + 1)
            for length, n in s.length_histogram.items():
                buckets[min(length, cap)] += n
            top = max(buckets)
            for length in range(1, min(cap, max(s.length_histogram)) + 1):
                n = buckets[length]
                label = f"{length}+" if length == cap else str(length)
                bar = "█" * round(bar_width * n / top)
                out.append(f"  {label:>4}  {bar:<{bar_width}} {100 * n / total:5.1f}%")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def stats_json(stats: Sequence[CorpusStats]) -> str:
    """The statistics as JSON: a list, one object per tokenizer."""
    return json.dumps([s.to_dict() for s in stats], indent=2, ensure_ascii=False)


# ------------------------------------------------------------------------------------ plots


def plot_stats(stats: Sequence[CorpusStats], path: str | os.PathLike[str] | None = None) -> Figure:
    """A figure of corpus statistics for one or more tokenizers, saved as PNG when ``path`` is
    given: bytes per token for each file (grouped bars), the distribution of token lengths in
    bytes, and how much of each vocabulary the corpus uses (cumulative share of all tokens
    covered by the most frequent ids, on a log axis). Needs matplotlib (``pip install
    tokforge[viz]``); uses its object API and Agg canvas, so no global backend is touched."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ModuleNotFoundError as e:
        raise TokforgeError(
            "plotting needs matplotlib: pip install matplotlib (or tokforge[viz])"
        ) from e

    fig = Figure(figsize=(13, 4.4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax_bpt, ax_len, ax_cov = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.15, 1, 1]})
    palette = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3"]

    # bytes per token, per file
    files = list(dict.fromkeys(f.name for s in stats for f in s.files))
    n = max(1, len(stats))
    width = 0.8 / n
    for k, s in enumerate(stats):
        by_name = {f.name: f for f in s.files}
        xs = [i + (k - (n - 1) / 2) * width for i in range(len(files))]
        ys = [by_name[f].bytes_per_token if f in by_name else 0.0 for f in files]
        bars = ax_bpt.bar(xs, ys, width, label=s.tokenizer_name, color=palette[k % len(palette)])
        ax_bpt.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    tilt = len(files) > 3
    ax_bpt.set_xticks(
        range(len(files)), files, rotation=30 if tilt else 0, ha="right" if tilt else "center"
    )
    ax_bpt.set_ylabel("bytes per token (higher = fewer tokens)")
    ax_bpt.set_title("Compression by file")
    ax_bpt.legend(fontsize=8)
    ax_bpt.grid(axis="y", alpha=0.3)

    # token length histogram
    max_len = 16
    for k, s in enumerate(stats):
        total = max(1, sum(s.length_histogram.values()))
        ys = [0.0] * (max_len + 1)
        for length, count in s.length_histogram.items():
            ys[min(length, max_len)] += 100 * count / total
        ax_len.plot(
            range(1, max_len + 1),
            ys[1:],
            marker="o",
            ms=3,
            color=palette[k % len(palette)],
            label=s.tokenizer_name,
        )
    ax_len.set_xticks(range(1, max_len + 1, 2))
    ax_len.set_xlabel(f"token length in bytes ({max_len} = {max_len} or more)")
    ax_len.set_ylabel("% of tokens")
    ax_len.set_title("Token lengths")
    ax_len.legend(fontsize=8)
    ax_len.grid(alpha=0.3)

    # vocabulary usage
    for k, s in enumerate(stats):
        counts = sorted(s.id_counts.values(), reverse=True)
        total = max(1, sum(counts))
        acc = 0
        cum = []
        for c in counts:
            acc += c
            cum.append(100 * acc / total)
        ax_cov.plot(
            range(1, len(cum) + 1),
            cum,
            color=palette[k % len(palette)],
            label=f"{s.tokenizer_name}: {s.vocab_used:,} ids used ({100 * s.vocab_share:.1f}%)",
        )
    ax_cov.set_xscale("log")
    ax_cov.set_xlabel("most frequent ids (rank, log scale)")
    ax_cov.set_ylabel("% of all tokens covered")
    ax_cov.set_title("Vocabulary usage")
    ax_cov.legend(fontsize=8, loc="lower right")
    ax_cov.grid(alpha=0.3, which="both")
    if stats:
        corpus = stats[0].total
        fig.suptitle(
            f"{len(files)} file{'s' if len(files) != 1 else ''}, {corpus.bytes / 1e6:,.2f} MB, "
            f"{corpus.chars:,} characters",
            fontsize=10,
            color="#57606a",
        )
    if path is not None:
        import io

        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        write_atomic(path, buf.getvalue())
    return fig
