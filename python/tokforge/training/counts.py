"""Pretoken counts files: count shards anywhere, add the counts, train on one machine.

Training depends only on how often each distinct pretoken occurs, so counting a corpus in
pieces (one file, one machine each), adding the counts, and training on the sum gives exactly
the merges that training on all of it at once gives, whatever the sharding. Counting is the
part that grows with the corpus; the sum grows only with the number of distinct pretokens.

A counts file (``.counts``, format described in ``rust/src/io/counts.rs``) is binary and compact:
a magic, a version, a JSON header recording the pretokenizer (as the tokforge JSON records it),
the special tokens and the corpus totals, then the pretokens sorted by bytes with their ``u64``
counts (prefix-compressed), and a CRC-32. Counts made with different pretokenizers or special
tokens are refused when merged.

>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "a.txt").write_text("low lower lowest\\n"), (d / "b.txt").write_text("lowly low\\n")
>>> for f in ("a", "b"):
...     _ = count([d / f"{f}.txt"], d / f"{f}.counts", pretokenizer="whitespace")
>>> total = merge([d / "a.counts", d / "b.counts"], d / "all.counts")
>>> dict(total.counts())[b"low"], info(d / "all.counts")["stats"]["bytes"]
(2, 27)
>>> train_from_counts(d / "all.counts", 259, progress=False).encode("lowest")
[258, 115, 116]

Pruning (``min_pretoken_count``) drops pretokens counted fewer times, to bound memory on huge
corpora. It is off by default and approximate: the dropped pretokens' pairs no longer count, and
pruning shards separately also drops pretokens that are rare in each shard but not in total.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Union, overload

from .. import _core
from ..errors import TokforgeError
from ..files import check_input
from ..registry import PRESETS
from ..tokenizer import Tokenizer
from .trainer import TrainResult, _check_limits, _check_vocab_size, _ProgressBar, result_of

__all__ = [
    "MAGIC",
    "count",
    "info",
    "load",
    "merge",
    "train_from_counts",
    "train_merges_from_counts",
]

log = logging.getLogger("tokforge.train")

#: The first 8 bytes of every counts file.
MAGIC = b"TFCOUNT\0"


#: Counts files (paths), or counts already loaded.
Counts = Union[
    str, "os.PathLike[str]", Iterable[Union[str, "os.PathLike[str]"]], _core.PretokenCounter
]


def _paths(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    out = [Path(p) for p in paths]
    if not out:
        raise TokforgeError("no counts files given")
    return out


def _pretok_args(pattern: str | None, pretokenizer: str | None) -> dict[str, str | None]:
    if pattern is not None and pretokenizer is not None:
        raise TypeError("give either pattern (a regex) or pretokenizer (a preset name), not both")
    if pretokenizer is not None:
        return {"preset": pretokenizer}
    if pattern is not None and (pattern in PRESETS or pattern.endswith("_base")):
        return {"preset": pattern}
    return {"pattern": pattern}


def _checked(path: str | os.PathLike[str]) -> str:
    check_input(path)  # a FIFO or /dev/zero would never end
    return str(path)


def count(
    files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    *,
    pattern: str | None = None,
    pretokenizer: str | None = None,
    special_tokens: Sequence[str] = (),
    num_threads: int | None = None,
    text_field: str = "text",
    errors: str = "strict",
    min_pretoken_count: int = 1,
    progress: bool | Callable[[str, int, int | None], None] = False,
) -> _core.PretokenCounter:
    """Counts the pretokens of ``files`` (text or JSON lines, gzip too, as :func:`tokforge.train`
    reads them) and, when ``out`` is given, writes a counts file there (atomically). Returns the
    counter. ``min_pretoken_count`` > 1 drops rarer pretokens from the file (approximate)."""
    if isinstance(special_tokens, str):
        raise TypeError("special_tokens must be a list of str, not a str")
    counter = _core.PretokenCounter(
        **_pretok_args(pattern, pretokenizer),
        special_tokens=list(special_tokens),
        num_threads=num_threads or 0,
    )
    callback = _progress(progress)
    try:
        counter.add_files(
            [_checked(f) for f in _paths(files)],
            text_field=text_field,
            errors=errors,
            progress=callback,
        )
    finally:
        _close(callback)
    if out is not None:
        counter.save_counts(out, min_count=_check_min(min_pretoken_count))
    return counter


def _check_min(min_pretoken_count: int) -> int:
    if isinstance(min_pretoken_count, bool) or not isinstance(min_pretoken_count, int):
        raise TypeError("min_pretoken_count must be an int")
    if min_pretoken_count < 1:
        raise TokforgeError(f"min_pretoken_count must be at least 1, not {min_pretoken_count}")
    return min_pretoken_count


def load(paths: Counts, *, num_threads: int | None = None) -> _core.PretokenCounter:
    """Reads counts files and adds them up (a counter is returned as it is). Files made with a
    different pretokenizer or special tokens than the first are refused."""
    if isinstance(paths, _core.PretokenCounter):
        return paths
    try:
        return _core.PretokenCounter.load_counts(
            [str(p) for p in _paths(paths)], num_threads=num_threads or 0
        )
    except TokforgeError as e:
        # The core's generic prefix says nothing here ("cannot mix counts ..." is the message).
        msg = str(e)
        if type(e) is TokforgeError and msg.startswith("invalid argument: "):
            raise TokforgeError(msg.removeprefix("invalid argument: ")) from None
        raise


def merge(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    min_pretoken_count: int = 1,
) -> _core.PretokenCounter:
    """Adds counts files up and writes the sum to ``out`` (atomically; ``out`` may be one of the
    inputs). Returns the summed counter."""
    counter = load(_paths(paths))
    counter.save_counts(out, min_count=_check_min(min_pretoken_count))
    return counter


def info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of a counts file (pretokenizer, special tokens, stats, distinct pretokens,
    pruning), read without loading the records."""
    with open(path, "rb") as f:
        head = f.read(16)
        if len(head) < 16 or head[:8] != MAGIC:
            raise TokforgeError(f"{path}: not a tokforge counts file (no TFCOUNT magic)")
        _version, length = struct.unpack("<II", head[8:16])
        raw = f.read(length)
    if len(raw) != length:
        raise TokforgeError(f"{path}: truncated counts file (header cut at byte {16 + len(raw)})")
    value: dict[str, Any] = json.loads(raw)
    return value


class _Bar:
    def __init__(self) -> None:
        self.bar = _ProgressBar()

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        self.bar(phase, done, total)


def _progress(
    progress: bool | Callable[[str, int, int | None], None],
) -> Callable[[str, int, int | None], None] | None:
    if progress is True:
        return _Bar()
    if callable(progress):
        return progress
    return None


def _close(callback: object) -> None:
    if isinstance(callback, _Bar):
        callback.bar.close()


def train_merges_from_counts(
    counts: Counts,
    num_merges: int,
    *,
    special_tokens: Sequence[str] | Mapping[str, int] | None = None,
    min_frequency: int = 2,
    max_token_bytes: int | None = None,
    min_pretoken_count: int = 1,
    progress: bool | Callable[[str, int, int | None], None] = True,
) -> TrainResult:
    """Learns up to ``num_merges`` merges from counts files (added up) or a counter.

    The pretokenizer is the one the counts record. ``special_tokens`` defaults to the ones they
    record; a list or a dict of fixed ids may be given, naming the same tokens (their text was
    cut out when counting, so other tokens could not be made to agree with the counts).
    ``min_pretoken_count`` > 1 prunes before training (approximate, less memory)."""
    _check_limits(min_frequency, max_token_bytes)
    start = time.perf_counter()
    counter = load(counts)
    recorded = counter.special_tokens
    specials: list[str] | dict[str, int]
    if special_tokens is None:
        specials = list(recorded)
    else:
        if isinstance(special_tokens, str):
            raise TypeError("special_tokens must be a list of str or a dict {str: id}, not a str")
        specials = (
            {str(k): int(v) for k, v in special_tokens.items()}
            if isinstance(special_tokens, Mapping)
            else [str(s) for s in special_tokens]
        )
        if sorted(specials) != sorted(recorded):
            raise TokforgeError(
                f"the counts were made with special tokens {sorted(recorded)}, not "
                f"{sorted(specials)}: count again with the same special tokens"
            )
    if _check_min(min_pretoken_count) > 1:
        dropped, _ = counter.prune(min_pretoken_count)
        log.info("pruned %d distinct pretokens seen < %d times", dropped, min_pretoken_count)
    if counter.num_distinct == 0:
        raise TokforgeError("the counts are empty: no pretokens to train on")
    bar = _progress(progress)
    try:
        merges, merge_counts, stop = counter.train(
            num_merges, min_frequency=min_frequency, max_token_bytes=max_token_bytes, progress=bar
        )
    finally:
        _close(bar)
    pruning = counter.pruning
    stats: dict[str, Any] = {"from_counts": True}
    if pruning[0] > 1:
        stats["min_pretoken_count"] = pruning[0]
        stats["pruned"] = {"distinct": pruning[1], "total": pruning[2]}
    if stop != "done":
        log.warning("stopped after %d of %d merges (%s)", len(merges), num_merges, stop)
    log.info(
        "trained %d merges from counts of %.1f MB in %.2f s",
        len(merges),
        counter.num_bytes / 1e6,
        time.perf_counter() - start,
    )
    return result_of(
        counter,
        (merges, merge_counts, stop),
        specials,
        min_frequency=min_frequency,
        max_token_bytes=max_token_bytes,
        extra_stats=stats,
    )


@overload
def train_from_counts(
    counts: Counts,
    vocab_size: int,
    *,
    special_tokens: Sequence[str] | Mapping[str, int] | None = ...,
    min_frequency: int = ...,
    max_token_bytes: int | None = ...,
    min_pretoken_count: int = ...,
    progress: bool | Callable[[str, int, int | None], None] = ...,
    name: str = ...,
) -> Tokenizer: ...


@overload
def train_from_counts(
    counts: Counts,
    vocab_size: Sequence[int],
    *,
    special_tokens: Sequence[str] | Mapping[str, int] | None = ...,
    min_frequency: int = ...,
    max_token_bytes: int | None = ...,
    min_pretoken_count: int = ...,
    progress: bool | Callable[[str, int, int | None], None] = ...,
    name: str = ...,
) -> list[Tokenizer]: ...


def train_from_counts(
    counts: Counts,
    vocab_size: int | Sequence[int],
    *,
    special_tokens: Sequence[str] | Mapping[str, int] | None = None,
    min_frequency: int = 2,
    max_token_bytes: int | None = None,
    min_pretoken_count: int = 1,
    progress: bool | Callable[[str, int, int | None], None] = True,
    name: str = "",
) -> Tokenizer | list[Tokenizer]:
    """:func:`tokforge.train` from counts files (or a counter): the same tokenizer that training
    on the counted files gives. A list of sizes returns one tokenizer per size."""
    sizes = [vocab_size] if isinstance(vocab_size, int) else list(vocab_size)
    if not sizes:
        raise TokforgeError("vocab_size is an empty list")
    counter = load(counts)
    n_special = len(special_tokens) if special_tokens is not None else len(counter.special_tokens)
    for s in sizes:
        _check_vocab_size(s, n_special)
    result = train_merges_from_counts(
        counter,
        max(sizes) - 256 - n_special,
        special_tokens=special_tokens,
        min_frequency=min_frequency,
        max_token_bytes=max_token_bytes,
        min_pretoken_count=min_pretoken_count,
        progress=progress,
    )
    toks = [result.tokenizer(s, name=name) for s in sizes]
    return toks[0] if isinstance(vocab_size, int) else toks
