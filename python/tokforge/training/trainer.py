"""Training BPE vocabularies: :func:`train` (texts or files -> :class:`Tokenizer`) and
:func:`train_merges` (the merges with their counts, for traces and several sizes at once).

Two kinds: byte-level (the default; ids 0..255 are the bytes) and, with ``byte_fallback=True``,
character-level with byte fallback as SentencePiece and Llama 2 have it: the base alphabet is the
characters covering ``character_coverage`` of the corpus's character occurrences (most frequent
first), rarer characters are encoded as the ``<0xNN>`` tokens of their UTF-8 bytes, which never
merge. Such a tokenizer is a Hugging Face ``tokenizer.json`` (see :func:`hf_dict`), so
``tok.to_hf(path)`` gives a file ``tokenizers`` encodes identically.

The rule (``tokforge.reference`` spells it out in plain Python): pretokenize, count each distinct
pretoken, then repeatedly merge the adjacent pair with the highest total count, ties to the
smallest ``(left id, right id)``, until the vocabulary is full or the best pair occurs fewer than
``min_frequency`` times. The result does not depend on thread count, input order or hash seeds.

>>> from tokforge import train
>>> tok = train(["low lower lowest lowly"], 300, pretokenizer="whitespace", progress=False)
>>> [tok.decode_single_token_bytes(t) for t in tok.encode("lowest")]
[b'lowe', b's', b't']
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict, Union, overload

from .. import _core
from ..errors import PretokenizerError, TokforgeError, VocabError
from ..files import check_input
from ..interop.formats import preset_of
from ..interop.hf_export import WHITESPACE_PATTERN, to_oniguruma
from ..interop.hf_json import add_specials, added_token, bpe_model, document
from ..reference import new_repr as _new_repr
from ..reference import render as _render
from ..reference import trace as _trace_lines
from ..registry import PRESETS
from ..tokenizer import Tokenizer

if TYPE_CHECKING:  # Unpack is in typing from Python 3.11; only the type checker reads it here
    from typing_extensions import Unpack

__all__ = [
    "TrainResult",
    "coverage_alphabet",
    "hf_dict",
    "train",
    "train_merges",
    "train_merges_from_counter",
]

log = logging.getLogger("tokforge.train")

#: What :func:`train` accepts: an iterable of ``str`` texts, an iterable of ``pathlib.Path``
#: files, or one path (``str`` or ``Path``).
Corpus = Union[str, "os.PathLike[str]", Iterable[str], Iterable["os.PathLike[str]"]]


#: The default ``character_coverage`` of byte-fallback training (SentencePiece's default).
DEFAULT_CHARACTER_COVERAGE = 0.9995

#: The byte-fallback tokens ``<0x00>``..``<0xFF>``, ids 0..255 of a byte-fallback vocabulary.
BYTE_TOKENS = [f"<0x{b:02X}>" for b in range(256)]


@dataclass(frozen=True)
class TrainResult:
    """The outcome of one training run: enough to build a tokenizer of any size up to
    ``256 + len(alphabet or ()) + len(merges) + len(special_tokens)``, since the merges of a
    smaller vocabulary are a prefix of those of a larger one."""

    #: The merged pairs, in order; merge ``k`` made id ``256 + k`` (byte-level), or
    #: ``256 + len(alphabet) + k`` (byte fallback).
    merges: list[tuple[int, int]]
    #: Each merge's total count when it was chosen.
    counts: list[int]
    #: ``"done"``, ``"min_frequency"`` (the best pair was rarer) or ``"no_pairs"``.
    stop_reason: str
    #: The pretokenizer: a preset name, or ``None`` when :attr:`pattern` is a custom regex.
    pretokenizer: str | None
    #: The regex (``None`` for ``whitespace`` and ``none``).
    pattern: str | None
    #: Special tokens: a list (ids follow the merges) or a dict of fixed ids.
    special_tokens: list[str] | dict[str, int] = field(default_factory=list)
    #: Corpus totals: ``bytes``, ``pretokens``, ``distinct_pretokens``, ``documents``, and the
    #: options used; recorded in each tokenizer's metadata.
    stats: dict[str, Any] = field(default_factory=dict)
    #: Byte fallback: the base characters (ids ``256..``, most frequent first), after the 256
    #: ``<0xNN>`` tokens. ``None`` for a byte-level vocabulary.
    alphabet: list[str] | None = None

    @property
    def byte_fallback(self) -> bool:
        """Whether this is a character-level vocabulary with byte fallback."""
        return self.alphabet is not None

    def _first_merge_id(self) -> int:
        return 256 + len(self.alphabet or ())

    def token_strings(self, num_merges: int | None = None) -> list[str]:
        """Byte fallback: each id's token text, ids ``0..`` up to the last merge (the special
        tokens are not included)."""
        if self.alphabet is None:
            raise TokforgeError("token_strings is for byte-fallback training results")
        strings = BYTE_TOKENS + list(self.alphabet)
        k = len(self.merges) if num_merges is None else num_merges
        for a, b in self.merges[:k]:
            strings.append(strings[a] + strings[b])
        return strings

    def trace(self, n: int | None = None) -> list[str]:
        """The first ``n`` merges as a textbook prints them:
        ``merge 1: (l, o) -> 'lo'  count 4``."""
        k = len(self.merges) if n is None else n
        if self.alphabet is None:
            return _trace_lines(list(zip(self.merges[:k], self.counts[:k], strict=True)))
        strings = self.token_strings(k)
        first = self._first_merge_id()
        return [
            f"merge {i + 1}: ({_render(strings[a].encode())}, {_render(strings[b].encode())}) "
            f"-> {_new_repr(strings[first + i].encode())}  count {n}"
            for i, ((a, b), n) in enumerate(zip(self.merges[:k], self.counts[:k], strict=True))
        ]

    def special_ids(self, num_merges: int) -> dict[str, int]:
        """The special tokens' ids for a vocabulary with ``num_merges`` merges."""
        if isinstance(self.special_tokens, Mapping):
            return dict(self.special_tokens)
        first = self._first_merge_id()
        return {s: first + num_merges + i for i, s in enumerate(self.special_tokens)}

    def tokenizer(self, vocab_size: int | None = None, *, name: str = "") -> Tokenizer:
        """A tokenizer with ``vocab_size`` ids (the 256 bytes, the base characters with byte
        fallback, the merges, the special tokens); all learned merges when ``None``. Fewer
        merges are used when training stopped early. With byte fallback it is the tokenizer of
        :meth:`hf_dict`."""
        n_special = len(self.special_tokens)
        first = self._first_merge_id()
        if vocab_size is None:
            num_merges = len(self.merges)
        else:
            _check_vocab_size(vocab_size, n_special)
            if vocab_size < first + n_special:
                raise TokforgeError(_too_small(vocab_size, len(self.alphabet or ()), n_special))
            num_merges = min(vocab_size - first - n_special, len(self.merges))
        specials = self.special_ids(num_merges)
        for tok, i in specials.items():
            if i < first + num_merges:
                raise TokforgeError(
                    f"special token {tok!r} has id {i}, which is an ordinary token's id "
                    f"(0..{first - 1 + num_merges}); fix its id at {first + num_merges} or above"
                )
        if self.alphabet is not None:
            return Tokenizer.from_hf_dict(self.hf_dict(num_merges), name=name)
        size = vocab_size if vocab_size is not None else 256 + num_merges + n_special
        metadata = {
            "training": {
                **self.stats,
                "vocab_size": size,
                "merges": num_merges,
                "stop_reason": self.stop_reason if num_merges == len(self.merges) else "done",
            }
        }
        pre: dict[str, Any] = (
            {"pretokenizer": self.pretokenizer}
            if self.pretokenizer is not None
            else {"pattern": self.pattern}
        )
        return Tokenizer.from_merges(
            self.merges[:num_merges],
            special_tokens=specials,
            name=name,
            metadata=metadata,
            **pre,
        )

    def hf_dict(self, num_merges: int | None = None) -> dict[str, Any]:
        """Byte fallback: the vocabulary with ``num_merges`` merges (all when ``None``) as a
        Hugging Face ``tokenizer.json`` dict; see the module function :func:`hf_dict`."""
        if self.alphabet is None:
            raise TokforgeError(
                "hf_dict is for byte-fallback training results; a byte-level tokenizer "
                "converts with tokenizer().to_hf_dict()"
            )
        k = len(self.merges) if num_merges is None else num_merges
        return hf_dict(
            self.alphabet,
            self.merges[:k],
            self.special_ids(k),
            pretokenizer=self.pretokenizer,
            pattern=self.pattern,
        )


def _too_small(vocab_size: int, n_chars: int, n_special: int) -> str:
    return (
        f"vocab_size {vocab_size} is too small: a byte-fallback vocabulary needs 256 ids for the "
        f"<0xNN> byte tokens, {n_chars} for the base characters (the character coverage's "
        f"alphabet) and {n_special} for the special tokens, so at least "
        f"{256 + n_chars + n_special} (or lower character_coverage)"
    )


def _hf_pre_tokenizer(pretokenizer: str | None, pattern: str | None) -> dict[str, Any] | None:
    """HF's ``Split`` (``Isolated``) for the training pretokenizer, with the regex rewritten for
    Oniguruma (as :mod:`tokforge.interop.hf_export` does); ``None`` for ``none``."""
    if pattern is not None:
        regex = to_oniguruma(pattern)
    elif pretokenizer == "whitespace":
        regex = WHITESPACE_PATTERN
    elif pretokenizer == "none":
        return None
    else:
        raise TokforgeError(f"cannot write the pretokenizer {pretokenizer!r} as a HF regex")
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


def hf_dict(
    alphabet: Sequence[str],
    merges: Sequence[tuple[int, int]],
    special_tokens: Mapping[str, int],
    *,
    pretokenizer: str | None = None,
    pattern: str | None = None,
) -> dict[str, Any]:
    """A character-level BPE vocabulary with byte fallback as a Hugging Face ``tokenizer.json``
    dict: ids 0..255 are ``<0x00>``..``<0xFF>``, then the ``alphabet`` characters, then one id
    per merge (``merges`` holds ids), then ``special_tokens`` (also in the model's vocabulary,
    which ``tokenizers`` needs to keep their ids). The pretokenizer is a ``Split`` regex (none
    for ``pretokenizer="none"``), the decoder ``ByteFallback`` + ``Fuse``.

    >>> doc = hf_dict(["a", "b"], [(256, 257)], {"<s>": 259}, pretokenizer="none")
    >>> [k for k, v in doc["model"]["vocab"].items() if v >= 256], doc["model"]["merges"]
    (['a', 'b', 'ab', '<s>'], [['a', 'b']])
    """
    strings = BYTE_TOKENS + list(alphabet)
    vocab = {s: i for i, s in enumerate(strings)}
    if len(vocab) != len(strings) or any(len(c) != 1 for c in alphabet):
        raise VocabError("the alphabet must be distinct single characters")
    pairs: list[list[str]] = []
    for a, b in merges:
        new = strings[a] + strings[b]
        if vocab.setdefault(new, len(strings)) != len(strings):
            raise VocabError(f"merge ({a}, {b}) spells {new!r}, already token {vocab[new]}")
        strings.append(new)
        pairs.append([strings[a], strings[b]])
    add_specials(vocab, special_tokens, "")
    return document(
        added=[added_token(text, id_) for text, id_ in special_tokens.items()],
        pre_tokenizer=_hf_pre_tokenizer(pretokenizer, pattern),
        decoder={"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]},
        model=bpe_model(vocab, pairs, byte_fallback=True),
    )


def coverage_alphabet(char_counts: Sequence[tuple[str, int]], coverage: float) -> list[str]:
    """The base characters for ``character_coverage`` (SentencePiece's meaning): the fewest of
    ``char_counts`` (most frequent first, ties by code point) whose occurrences make up at least
    ``coverage`` of all; a character is taken while those before it cover less.

    >>> coverage_alphabet([("a", 90), ("b", 9), ("c", 1)], 0.95)
    ['a', 'b']
    """
    total = sum(n for _, n in char_counts)
    want = coverage * total
    out: list[str] = []
    acc = 0
    for ch, n in char_counts:
        if acc >= want:
            break
        acc += n
        out.append(ch)
    return out


def _check_coverage(coverage: object) -> float:
    if isinstance(coverage, bool) or not isinstance(coverage, (int, float)):
        raise TypeError(f"character_coverage must be a number, not {type(coverage).__name__}")
    c = float(coverage)
    if not 0.0 < c <= 1.0:  # NaN fails too
        raise TokforgeError(
            f"character_coverage must be in (0, 1], not {coverage!r} (the share of character "
            "occurrences the base alphabet covers, e.g. 0.9995)"
        )
    return c


def _check_limits(min_frequency: int, max_token_bytes: int | None) -> None:
    if min_frequency < 1:
        raise TokforgeError(f"min_frequency must be at least 1, not {min_frequency}")
    if max_token_bytes is not None and max_token_bytes < 2:
        raise TokforgeError(f"max_token_bytes must be at least 2, not {max_token_bytes}")


def result_of(
    counter: _core.PretokenCounter,
    trained: tuple[Sequence[tuple[int, int]], Sequence[int], str],
    specials: list[str] | dict[str, int],
    *,
    min_frequency: int,
    max_token_bytes: int | None,
    alphabet: list[str] | None = None,
    coverage: float | None = None,
    extra_stats: Mapping[str, Any] | None = None,
) -> TrainResult:
    """The :class:`TrainResult` of ``counter.train`` (``trained``: merges, their counts, the
    stop reason), with the corpus statistics every trainer reports."""
    merges, counts, stop = trained
    stats: dict[str, Any] = {
        "bytes": counter.num_bytes,
        "pretokens": counter.num_pretokens,
        "distinct_pretokens": counter.num_distinct,
        "documents": counter.num_documents,
        "min_frequency": min_frequency,
        "max_token_bytes": max_token_bytes,
    }
    if alphabet is not None:
        stats["character_coverage"] = coverage
        stats["alphabet_size"] = len(alphabet)
    stats.update(extra_stats or {})
    return TrainResult(
        merges=[(int(a), int(b)) for a, b in merges],
        counts=list(counts),
        stop_reason=stop,
        pretokenizer=counter.preset,
        pattern=counter.pattern,
        special_tokens=specials,
        stats=stats,
        alphabet=alphabet,
    )


def _check_vocab_size(vocab_size: int, n_special: int) -> None:
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"vocab_size must be an int, not {type(vocab_size).__name__}")
    if vocab_size < 256 + n_special:
        raise TokforgeError(
            f"vocab_size {vocab_size} is too small: a byte-level vocabulary needs 256 ids for the "
            f"bytes plus {n_special} for the special tokens, so at least {256 + n_special}"
        )


@contextlib.contextmanager
def _progress_callback(
    progress: bool | Callable[[str, int, int | None], None],
) -> Iterator[Callable[[str, int, int | None], None] | None]:
    """The callback for ``progress``: a bar on stderr for ``True`` (closed on the way out), the
    caller's callable, or ``None``."""
    if progress is True:
        bar = _ProgressBar()
        try:
            yield bar
        finally:
            bar.close()
    else:
        yield progress if callable(progress) else None


class _ProgressBar:
    """A one-line progress bar on stderr for the counting (bytes) and merging (merges) phases.
    On a terminal it redraws in place; otherwise it prints one summary line per phase."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.phase: str | None = None
        self.start = 0.0
        self.last = ""

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        now = time.perf_counter()
        if phase != self.phase:
            self.close()
            self.phase, self.start = phase, now
        elapsed = now - self.start
        if phase == "count":
            amount = f"{done / 1e6:8.1f}" + (f"/{total / 1e6:.1f} MB" if total else " MB")
            rate = f"{done / 1e6 / elapsed:6.1f} MB/s" if elapsed > 0.05 else " " * 11
            label = "counting"
        else:
            amount = f"{done:8d}" + (f"/{total} merges" if total else " merges")
            rate = f"{done / elapsed:6.0f} merges/s" if elapsed > 0.05 else " " * 15
            label = "merging "
        bar = ""
        if total:
            width = 24
            filled = min(width, int(width * done / total))
            bar = "[" + "#" * filled + "-" * (width - filled) + "] "
        self.last = f"{label} {bar}{amount}  {rate}  {elapsed:5.1f} s"
        if self.tty:
            self.stream.write("\r" + self.last + "\x1b[K")
            self.stream.flush()

    def close(self) -> None:
        if self.phase is not None and self.last:
            self.stream.write(("\r" + self.last + "\x1b[K\n") if self.tty else self.last + "\n")
            self.stream.flush()
        self.phase, self.last = None, ""


def _looks_like_path(text: str) -> bool:
    return len(text) < 4096 and "\n" not in text and os.path.isfile(text)


def _split_corpus(corpus: Corpus) -> tuple[list[Path], Iterator[str] | None]:
    """Files (as paths) or a stream of texts. One ``str`` or ``Path`` argument is a file; in an
    iterable, ``Path`` objects are files and ``str`` items are texts (no mixing)."""
    if isinstance(corpus, (str, os.PathLike)):
        return [Path(corpus)], None
    if isinstance(corpus, (bytes, bytearray)):
        raise TypeError("texts must be str, not bytes: decode them first")
    it: Iterator[Any] = iter(corpus)
    first = next(it, None)
    if first is None:
        return [], None
    if isinstance(first, os.PathLike):
        files = [Path(first)]
        for p in it:
            if not isinstance(p, (os.PathLike, str)):
                raise TypeError(f"files must be paths, got {type(p).__name__}")
            files.append(Path(p))
        return files, None
    if isinstance(first, str) and _looks_like_path(first):
        log.warning(
            "the first text, %r, is the name of a file; str items are trained on as text. "
            "Pass pathlib.Path objects to read files.",
            first,
        )

    def texts() -> Iterator[str]:
        yield first
        yield from it

    return [], texts()


class MergeOptions(TypedDict, total=False):
    """The keyword arguments of :func:`train_merges` (see :func:`train` for each)."""

    pattern: str | None
    pretokenizer: str | None
    special_tokens: Sequence[str] | Mapping[str, int] | None
    min_frequency: int
    max_token_bytes: int | None
    num_threads: int | None
    progress: bool | Callable[[str, int, int | None], None]
    text_field: str
    errors: str
    byte_fallback: bool
    character_coverage: float | None


class TrainOptions(MergeOptions, total=False):
    """The keyword arguments of :func:`train`, for its two typed call forms."""

    trace: int
    name: str


def train_merges(
    texts_or_files: Corpus, num_merges: int, **options: Unpack[MergeOptions]
) -> TrainResult:
    """Counts the corpus and learns up to ``num_merges`` merges; see :func:`train` for the
    keyword arguments (all but ``trace`` and ``name``). Returns the merges with their counts."""
    return _train_merges(texts_or_files, num_merges, None, **options)


def _train_merges(
    texts_or_files: Corpus,
    num_merges: int | None,
    vocab_size: int | None,
    *,
    pattern: str | None = None,
    pretokenizer: str | None = None,
    special_tokens: Sequence[str] | Mapping[str, int] | None = None,
    min_frequency: int = 2,
    max_token_bytes: int | None = None,
    num_threads: int | None = None,
    progress: bool | Callable[[str, int, int | None], None] = True,
    text_field: str = "text",
    errors: str = "strict",
    byte_fallback: bool = False,
    character_coverage: float | None = None,
) -> TrainResult:
    """:func:`train_merges`, given either ``num_merges`` or (byte fallback, where the base
    alphabet's size is known only after counting) the ``vocab_size`` to fill."""
    coverage = _check_byte_fallback(byte_fallback, character_coverage)
    if pattern is not None and pretokenizer is not None:
        raise TypeError("give either pattern (a regex) or pretokenizer (a preset name), not both")
    named = preset_of(pattern) if isinstance(pattern, str) else None
    if named is not None:
        pattern, pretokenizer = None, named
    if pretokenizer is not None and not isinstance(pretokenizer, str):
        raise PretokenizerError(
            "training counts pretokens in the core: pretokenizer must be a preset name "
            f"({', '.join(PRESETS)}) or pass a regex as pattern=, "
            f"not {type(pretokenizer).__name__}"
        )
    if (
        pretokenizer is not None
        and pretokenizer not in PRESETS
        and not pretokenizer.endswith("_base")
    ):
        raise TokforgeError(
            f"unknown pretokenizer {pretokenizer!r} (known: {', '.join(PRESETS)}); "
            "pass a regex as pattern="
        )
    if errors not in ("strict", "replace"):
        raise TokforgeError(f'errors must be "strict" or "replace", not {errors!r}')
    _check_limits(min_frequency, max_token_bytes)
    if num_threads is not None and num_threads < 1:
        raise TokforgeError(f"num_threads must be at least 1, not {num_threads}")
    if isinstance(special_tokens, str):
        raise TypeError("special_tokens must be a list of str or a dict {str: id}, not a str")
    specials: list[str] | dict[str, int]
    if special_tokens is None:
        specials = []
    elif isinstance(special_tokens, Mapping):
        specials = {str(k): int(v) for k, v in special_tokens.items()}
    else:
        specials = [str(s) for s in special_tokens]
        if len(set(specials)) != len(specials):
            raise TokforgeError("special_tokens holds the same token twice")

    files, texts = _split_corpus(texts_or_files)
    for f in files:
        check_input(f)  # a FIFO or /dev/zero would never end
    counter = _core.PretokenCounter(
        pattern=pattern,
        preset=pretokenizer if pattern is None else None,
        special_tokens=list(specials),
        num_threads=num_threads or 0,
    )
    if coverage is not None:
        # Fail before counting when the regex cannot be written for HF.
        _hf_pre_tokenizer(counter.preset, counter.pattern)
    start = time.perf_counter()
    with _progress_callback(progress) as callback:
        if files:
            counter.add_files(
                [str(f) for f in files], text_field=text_field, errors=errors, progress=callback
            )
        elif texts is not None:
            counter.add_texts(texts, errors=errors, progress=callback)
        count_seconds = time.perf_counter() - start
        if counter.num_bytes == 0:
            where = f"{len(files)} file(s)" if files else "the texts"
            raise TokforgeError(f"the corpus is empty: {where} hold no text to train on")
        result, num_merges = _train_counter(
            counter,
            specials,
            coverage,
            _Budget(num_merges, vocab_size, min_frequency, max_token_bytes),
            callback,
        )
    merges, stop = result.merges, result.stop_reason
    if stop == "min_frequency":
        log.warning(
            "stopped after %d of %d merges: every pair left occurs fewer than min_frequency=%d "
            "times",
            len(merges),
            num_merges,
            min_frequency,
        )
    elif stop == "no_pairs":
        log.warning("stopped after %d of %d merges: no pair left to merge", len(merges), num_merges)
    log.info(
        "trained %d merges on %.1f MB (%d distinct pretokens) in %.2f s (counting %.2f s)",
        len(merges),
        counter.num_bytes / 1e6,
        counter.num_distinct,
        time.perf_counter() - start,
        count_seconds,
    )
    return result


class _Budget(NamedTuple):
    """How far training goes: a number of merges or (byte fallback) a vocabulary size to fill,
    and the two limits on a merge."""

    num_merges: int | None
    vocab_size: int | None
    min_frequency: int
    max_token_bytes: int | None


def _train_counter(
    counter: _core.PretokenCounter,
    specials: list[str] | dict[str, int],
    coverage: float | None,
    budget: _Budget,
    progress: Callable[[str, int, int | None], None] | None,
) -> tuple[TrainResult, int]:
    """The merges learned from ``counter``: byte-level (``coverage`` None), or over the
    characters covering ``coverage`` with byte fallback (then ``num_merges`` may be left to
    ``vocab_size``). Returns the result and the number of merges asked for."""
    num_merges, vocab_size, min_frequency, max_token_bytes = budget
    alphabet: list[str] | None = None
    if coverage is None:
        assert num_merges is not None
        trained = counter.train(
            num_merges,
            min_frequency=min_frequency,
            max_token_bytes=max_token_bytes,
            progress=progress,
        )
    else:
        alphabet, num_merges, trained = _train_chars(
            counter,
            coverage,
            num_merges,
            vocab_size,
            specials,
            min_frequency=min_frequency,
            max_token_bytes=max_token_bytes,
            progress=progress,
        )
    result = result_of(
        counter,
        trained,
        specials,
        min_frequency=min_frequency,
        max_token_bytes=max_token_bytes,
        alphabet=alphabet,
        coverage=coverage,
    )
    return result, num_merges


def _check_byte_fallback(byte_fallback: bool, character_coverage: float | None) -> float | None:
    """The coverage to train with (``None``: byte-level)."""
    if not byte_fallback:
        if character_coverage is not None:
            raise TokforgeError("character_coverage applies only with byte_fallback=True")
        return None
    return _check_coverage(
        DEFAULT_CHARACTER_COVERAGE if character_coverage is None else character_coverage
    )


def _train_chars(
    counter: _core.PretokenCounter,
    coverage: float,
    num_merges: int | None,
    vocab_size: int | None,
    specials: Sequence[str] | Mapping[str, int],
    *,
    min_frequency: int,
    max_token_bytes: int | None,
    progress: Callable[[str, int, int | None], None] | None,
) -> tuple[list[str], int, tuple[list[tuple[int, int]], list[int], str]]:
    """Byte fallback: chooses the alphabet and learns the merges (ids as in the vocabulary:
    the alphabet from 256, merges after it). Returns ``(alphabet, num_merges, trained)``."""
    alphabet = coverage_alphabet(counter.char_counts(), coverage)
    if num_merges is None:
        assert vocab_size is not None
        num_merges = vocab_size - 256 - len(alphabet) - len(specials)
        if num_merges < 0:
            raise TokforgeError(_too_small(vocab_size, len(alphabet), len(specials)))
    log.info(
        "byte fallback: %d base characters cover %.4f%% of the character occurrences",
        len(alphabet),
        100 * coverage,
    )
    reserved = [t.encode() for t in BYTE_TOKENS] + [str(t).encode() for t in specials]
    merges, counts, stop = counter.train_chars(
        alphabet,
        num_merges,
        reserved=reserved,
        min_frequency=min_frequency,
        max_token_bytes=max_token_bytes,
        progress=progress,
    )
    return alphabet, num_merges, ([(a + 256, b + 256) for a, b in merges], counts, stop)


def train_merges_from_counter(
    counter: _core.PretokenCounter,
    num_merges: int | None = None,
    *,
    vocab_size: int | None = None,
    special_tokens: Sequence[str] | None = None,
    min_frequency: int = 2,
    max_token_bytes: int | None = None,
    character_coverage: float | None = None,
    progress: bool | Callable[[str, int, int | None], None] = True,
) -> TrainResult:
    """Byte-fallback training on pretoken counts already made (a counter, or counts files read
    with :func:`tokforge.counts.load`): ``num_merges`` merges, or as many as fill
    ``vocab_size``. The special tokens are the ones the counter records."""
    coverage = _check_byte_fallback(True, character_coverage)
    assert coverage is not None
    if (num_merges is None) == (vocab_size is None):
        raise TypeError("give either num_merges or vocab_size")
    _check_limits(min_frequency, max_token_bytes)
    specials = list(counter.special_tokens if special_tokens is None else special_tokens)
    _hf_pre_tokenizer(counter.preset, counter.pattern)
    with _progress_callback(progress) as callback:
        result, _ = _train_counter(
            counter,
            specials,
            coverage,
            _Budget(num_merges, vocab_size, min_frequency, max_token_bytes),
            callback,
        )
    return result


@overload
def train(
    texts_or_files: Corpus, vocab_size: int, **options: Unpack[TrainOptions]
) -> Tokenizer: ...


@overload
def train(
    texts_or_files: Corpus, vocab_size: Sequence[int], **options: Unpack[TrainOptions]
) -> list[Tokenizer]: ...


def train(
    texts_or_files: Corpus,
    vocab_size: int | Sequence[int],
    *,
    pattern: str | None = None,
    pretokenizer: str | None = None,
    special_tokens: Sequence[str] | Mapping[str, int] | None = None,
    min_frequency: int = 2,
    max_token_bytes: int | None = None,
    num_threads: int | None = None,
    progress: bool | Callable[[str, int, int | None], None] = True,
    text_field: str = "text",
    errors: str = "strict",
    trace: int = 0,
    name: str = "",
    byte_fallback: bool = False,
    character_coverage: float | None = None,
) -> Tokenizer | list[Tokenizer]:
    """Trains a byte-level BPE tokenizer, or with ``byte_fallback=True`` a character-level one
    with byte fallback.

    Args:
        texts_or_files: an iterable of ``str`` texts (each pretokenized on its own; a generator
            is fine, it is consumed in batches), an iterable of ``pathlib.Path`` files, or one
            file path. Files are plain UTF-8 text, or JSON lines (``.jsonl``, ``.ndjson``) whose
            ``text_field`` holds the text; gzip is recognised by content. They are read as a
            stream: memory grows with the number of distinct pretokens, not the corpus size.
        vocab_size: the number of ids: 256 bytes, the merges, the special tokens (with byte
            fallback: 256 ``<0xNN>`` tokens, the base characters, the merges, the special
            tokens). A list of sizes trains once and returns one tokenizer per size (a smaller
            vocabulary's merges are a prefix of a larger one's).
        pattern: a pretokenizer regex (``regex``/fancy-regex syntax).
        pretokenizer: a preset: ``cl100k`` (the default), ``o200k``, ``gpt2``, ``whitespace``
            or ``none``.
        special_tokens: a list (their ids follow the merges) or a dict of fixed ids. Their text
            is cut out of the corpus and never takes part in merges.
        min_frequency: stop when the best pair occurs fewer times than this.
        max_token_bytes: never make a token longer than this many bytes.
        num_threads: threads for counting (default: all cores).
        progress: a progress bar on stderr (``True``), none (``False``), or a callable
            ``(phase, done, total)`` with phase ``"count"`` (bytes) or ``"merge"`` (merges).
        text_field: the JSON key holding the text in ``.jsonl`` files.
        errors: ``"strict"`` (invalid UTF-8 is an error naming file, byte and line) or
            ``"replace"`` (U+FFFD).
        trace: print the first ``trace`` merges to stdout as a textbook would.
        name: the tokenizer's name.
        byte_fallback: train a character-level vocabulary with byte fallback (SentencePiece /
            Llama 2 style) instead of a byte-level one. Ids 0..255 are ``<0x00>``..``<0xFF>``,
            then the base characters (most frequent first), then one id per merge, then the
            special tokens. Characters outside the base alphabet split the pretoken (they encode
            as their UTF-8 bytes' ``<0xNN>`` tokens, which never merge); the merge rule is the
            byte-level one over characters. The tokenizer is a Hugging Face ``tokenizer.json``
            (``Split`` pretokenizer, BPE model with ``byte_fallback``, ``ByteFallback`` +
            ``Fuse`` decoder): ``tok.to_hf(path)`` writes it, and ``tokenizers`` encodes the
            same ids. Raises :class:`~tokforge.errors.TokforgeError` when ``vocab_size`` cannot
            hold the base alphabet.
        character_coverage: with byte fallback, the share of the corpus's character
            occurrences the base alphabet covers, in (0, 1] (default 0.9995, as SentencePiece):
            the most frequent characters are taken, ties by code point, until their
            occurrences reach that share.

    Returns:
        A :class:`~tokforge.Tokenizer`, or a list of them when ``vocab_size`` is a list.

    >>> tok = train(["low lower lowest lowly"], 300, pretokenizer="whitespace", trace=3,
    ...             progress=False)
    merge 1: (l, o) -> 'lo'  count 4
    merge 2: (lo, w) -> 'low'  count 4
    merge 3: (low, e) -> 'lowe'  count 2
    >>> tok.n_vocab, tok.encode("lowly")
    (259, [257, 108, 121])
    """
    if isinstance(vocab_size, int) and not isinstance(vocab_size, bool):
        sizes = [vocab_size]
    elif isinstance(vocab_size, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in vocab_size
    ):
        sizes = list(vocab_size)
    else:
        raise TypeError(
            "vocab_size must be a whole number or a list of them, "
            f"not {type(vocab_size).__name__} {vocab_size!r}"
        )
    if not sizes:
        raise TokforgeError("vocab_size is an empty list")
    n_special = 0 if special_tokens is None else len(special_tokens)
    for s in sizes:
        _check_vocab_size(s, n_special)
    result = _train_merges(
        texts_or_files,
        None if byte_fallback else max(sizes) - 256 - n_special,
        max(sizes) if byte_fallback else None,
        pattern=pattern,
        pretokenizer=pretokenizer,
        special_tokens=special_tokens,
        min_frequency=min_frequency,
        max_token_bytes=max_token_bytes,
        num_threads=num_threads,
        progress=progress,
        text_field=text_field,
        errors=errors,
        byte_fallback=byte_fallback,
        character_coverage=character_coverage,
    )
    for line in result.trace(trace) if trace > 0 else []:
        print(line)
    tokenizers = [result.tokenizer(s, name=name) for s in sizes]
    return tokenizers[0] if isinstance(vocab_size, int) else tokenizers
