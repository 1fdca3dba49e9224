"""Files -> cores: the one place that decides which format a tokenizer file is in
(:func:`detect_format`) and builds the Rust core for it. :meth:`tokforge.Tokenizer.load`, its
other constructors and the command line all come through here; the tokenizer module only wraps
the cores this module returns.

>>> detect_format(b'{"format": "tokforge", "version": 1}')
'tokforge'
>>> detect_format(b'{"version": "1.0", "model": {"type": "BPE"}}')
'hf'
>>> detect_format(b'{"hello": 0, "world": 1}')
'gpt2'
>>> detect_format(b"aGVsbG8= 0\\n")
'tiktoken'
>>> detect_format(b"\\n\\x05\\n\\x03abc")
'sentencepiece'
>>> detect_format(b'{"hello": {"world": 1}}')
'unknown_json'
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .. import _core
from ..errors import TokforgeError, TokforgeIOError, VocabFileError
from ..registry import PRESETS, known_rank_file
from . import gpt2, sentencepiece

__all__ = [
    "Loaded",
    "PretokenizerLike",
    "detect_format",
    "from_gpt2",
    "from_hf_bytes",
    "from_hf_dict",
    "from_merges",
    "from_sentencepiece",
    "from_tiktoken",
    "hf_name",
    "load",
    "pretokenizer_args",
    "read_file",
    "special_dict",
]

#: A pretokenizer: a preset name (``"cl100k"``, ``"o200k"``, ``"gpt2"``, ``"whitespace"``,
#: ``"none"``) or a callable ``str -> list[str]`` whose pieces concatenate to its input.
PretokenizerLike = str | Callable[[str], list[str]]


class Loaded(NamedTuple):
    """A core with what the :class:`~tokforge.Tokenizer` wrapping it keeps beside it."""

    core: _core.CoreBPE
    #: the Python pretokenizer, when it is a callable
    func: Callable[[str], list[str]] | None = None
    #: read from a SentencePiece ``.model``: its charsmap follows sentencepiece, not tokenizers
    sentencepiece: bool = False


def detect_format(data: bytes) -> str:
    """The format of a tokenizer file's content: ``"tokforge"``, ``"hf"`` (a tokenizer.json),
    ``"gpt2"`` (a vocab.json), ``"sentencepiece"`` (a ``.model``), ``"tiktoken"`` (a rank file,
    anything that is not JSON), or ``"unknown_json"``.

    A SentencePiece ModelProto starts with field 1 (a piece, a length-delimited message) whose
    own first field is 1 (the piece text). JSON formats are told from the first 64 KB: tokforge
    files say ``"format": "tokforge"`` first; a GPT-2 vocab.json maps token strings to numbers
    (a token may be spelled ``model``, but its value is a number, not an object); a
    tokenizer.json has a ``"model"`` object. The rules live in the core (``io::detect_format``),
    the one detector the Rust loaders use too."""
    return _core.detect_format(data)


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise TokforgeIOError(f"{path}: {e.strerror or e}") from e


def hf_name(p: Path) -> str:
    """A name for a tokenizer read from ``p``: its folder's name for ``tokenizer.json``."""
    return p.parent.name if p.name == "tokenizer.json" and p.parent.name else p.stem


def special_dict(special_tokens: Any) -> dict[str, int]:
    if special_tokens is None:
        return {}
    if not isinstance(special_tokens, Mapping):
        raise TypeError(
            f"special_tokens must be a dict {{text: id}}, not {type(special_tokens).__name__}"
        )
    return dict(special_tokens)


def pretokenizer_args(pat_str: str | None, pretokenizer: PretokenizerLike | None) -> dict[str, Any]:
    """The core constructors' pretokenizer keyword: ``pattern``, ``preset`` or ``callable``."""
    if pat_str is not None and pretokenizer is not None:
        raise TypeError("give either pat_str (a regex) or pretokenizer, not both")
    if pat_str is not None:
        if not isinstance(pat_str, str):
            raise TypeError(f"pat_str must be a str, not {type(pat_str).__name__}")
        return {"pattern": pat_str}
    if pretokenizer is None:
        return {"preset": "cl100k"}
    if isinstance(pretokenizer, str):
        return {"preset": pretokenizer}
    if callable(pretokenizer):
        return {"callable": pretokenizer}
    raise TypeError(
        "pretokenizer must be a preset name "
        f"({', '.join(PRESETS)}) or a callable str -> list[str], "
        f"not {type(pretokenizer).__name__}"
    )


def from_tiktoken(
    path: str | os.PathLike[str],
    *,
    pattern: str | None = None,
    pretokenizer: PretokenizerLike | None = None,
    special_tokens: Mapping[str, int] | None = None,
    name: str | None = None,
) -> Loaded:
    """A ``.tiktoken`` rank file (``base64 rank`` per line) with a pretokenizer."""
    p = Path(path)
    data = read_file(p)
    args = pretokenizer_args(pattern, pretokenizer)
    core = _core.CoreBPE.from_tiktoken_bytes(
        data,
        list(special_dict(special_tokens).items()),
        path=str(p),
        name=name if name is not None else p.name.removesuffix(".tiktoken"),
        **args,
    )
    return Loaded(core, args.get("callable"))


def from_hf_bytes(data: bytes, *, path: str, name: str, sentencepiece: bool = False) -> Loaded:
    """A Hugging Face ``tokenizer.json``'s content."""
    return Loaded(_core.CoreBPE.from_hf_json(data, path, name, sentencepiece), None, sentencepiece)


def from_sentencepiece(model: str | os.PathLike[str] | bytes) -> Loaded:
    """A SentencePiece model of type BPE (a path or the serialized ``ModelProto``), through
    the equivalent tokenizer.json."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        where, name = "<bytes>", "sentencepiece"
    else:
        where, name = os.fspath(model), Path(model).stem
    doc = sentencepiece.to_hf_dict(sentencepiece.read_model(model), tokforge_keys=True)
    raw = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    return from_hf_bytes(raw, path=where, name=name, sentencepiece=True)


def from_hf_dict(doc: Mapping[str, Any], *, name: str = "") -> Loaded:
    """A ``tokenizer.json`` already parsed into a dict."""
    if not isinstance(doc, Mapping):
        raise TypeError(f"expected a tokenizer.json dict, not {type(doc).__name__}")
    data = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    return from_hf_bytes(data, path="<dict>", name=name)


def from_gpt2(vocab_json: str | os.PathLike[str], merges_txt: str | os.PathLike[str]) -> Loaded:
    """GPT-2's legacy ``vocab.json`` + ``merges.txt`` pair (byte-level BPE)."""
    doc = gpt2.read_gpt2(Path(vocab_json), Path(merges_txt))
    return from_hf_dict(doc, name=Path(vocab_json).parent.name)


def load(
    path: str | os.PathLike[str],
    *,
    pattern: str | None = None,
    pretokenizer: PretokenizerLike | None = None,
    special_tokens: Mapping[str, int] | None = None,
) -> Loaded:
    """A tokenizer file or folder in any format :func:`detect_format` tells; see
    :meth:`tokforge.Tokenizer.load`."""
    p = Path(path)
    if p.is_dir():
        for candidate in ("tokenizer.json", "tokenizer.model", "vocab.json"):
            if (p / candidate).is_file():
                return load(p / candidate)
        raise TokforgeIOError(
            f"{p}: a directory without tokenizer.json, tokenizer.model or vocab.json"
        )
    data = read_file(p)
    if not data.strip():
        raise VocabFileError(f"{p}: the file is empty: no tokens")
    kind = detect_format(data)
    if kind == "sentencepiece":
        return from_sentencepiece(p)
    # Each reader parses the whole file once (a 5 MB tokenizer.json parsed here too would be
    # parsed twice).
    if kind == "tokforge":
        func = pretokenizer if callable(pretokenizer) else None
        return Loaded(_core.CoreBPE.from_json_bytes(data, path=str(p), callable=func), func)
    if kind == "hf":
        return from_hf_bytes(data, path=str(p), name=hf_name(p))
    if kind == "gpt2":
        merges = p.with_name("merges.txt")
        if not merges.is_file():
            raise VocabFileError(
                f"{p}: a GPT-2 vocab.json needs merges.txt beside it ({merges} is missing)"
            )
        return from_gpt2(p, merges)
    if kind == "unknown_json":
        try:
            json.loads(data)
        except ValueError as e:
            raise VocabFileError(f"{p}: not valid JSON: {e}") from None
        raise VocabFileError(
            f"{p}: a JSON file that is neither a tokforge tokenizer, a Hugging Face "
            "tokenizer.json nor a GPT-2 vocab.json"
        )
    known = known_rank_file(data)
    if known is not None and pattern is None and pretokenizer is None:
        name, preset, specials = known
        core = _core.CoreBPE.from_tiktoken_bytes(
            data,
            list((special_tokens if special_tokens is not None else specials).items()),
            path=str(p),
            preset=preset,
            name=name,
        )
        return Loaded(core)
    if pattern is None and pretokenizer is None:
        raise TokforgeError(
            f"{p}: a rank file without a known pattern; pass pattern=... or pretokenizer=..."
        )
    return from_tiktoken(
        p, pattern=pattern, pretokenizer=pretokenizer, special_tokens=special_tokens
    )


def from_merges(
    merges: Iterable[tuple[int, int]],
    *,
    pattern: str | None = None,
    pretokenizer: PretokenizerLike | None = None,
    special_tokens: Mapping[str, int] | None = None,
    name: str = "",
    metadata: Mapping[str, Any] | None = None,
) -> Loaded:
    """A byte-level BPE from its merges (merge ``k`` makes id ``256 + k``)."""
    args = pretokenizer_args(pattern, pretokenizer)
    core = _core.CoreBPE.from_merges(
        [(int(a), int(b)) for a, b in merges],
        list(special_dict(special_tokens).items()),
        name=name,
        metadata_json=json.dumps(metadata or {}),
        **args,
    )
    return Loaded(core, args.get("callable"))
