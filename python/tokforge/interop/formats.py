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
from ..files import check_input, read_bytes
from ..registry import ALIASES, ENCODINGS, PRESETS, known_rank_file
from . import gguf, gpt2, sentencepiece, tekken

__all__ = [
    "Loaded",
    "PretokenizerLike",
    "detect_format",
    "from_gguf",
    "from_gpt2",
    "from_hf_bytes",
    "from_hf_dict",
    "from_merges",
    "from_sentencepiece",
    "from_tekken",
    "from_tiktoken",
    "hf_name",
    "load",
    "preset_of",
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
    ``"gpt2"`` (a vocab.json), ``"sentencepiece"`` (a ``.model``), ``"tekken"`` (Mistral's
    tekken.json), ``"gguf"`` (a GGUF model file), ``"tiktoken"`` (a rank file, anything that is
    not JSON), or ``"unknown_json"``.

    A SentencePiece ModelProto starts with field 1 (a piece, a length-delimited message) whose
    own first field is 1 (the piece text). JSON formats are told by their top-level keys: tokforge
    files say ``"format": "tokforge"`` first; a GPT-2 vocab.json maps token strings to numbers
    (a token may be spelled ``model``, but its value is a number, not an object); a
    tokenizer.json has a ``"model"`` object. The rules live in the core (``io::detect_format``),
    the one detector the Rust loaders use too."""
    return _core.detect_format(data)


def read_file(path: Path) -> bytes:
    """The bytes of a regular file (a FIFO or a device such as ``/dev/zero`` is refused: it
    would block or never end)."""
    return read_bytes(path)


def _check_encoding(p: Path, data: bytes) -> None:
    """Tokenizer files are UTF-8 without a byte order mark (or binary SentencePiece models)."""
    if data.startswith(b"\xef\xbb\xbf"):
        raise VocabFileError(
            f"{p}: starts with a UTF-8 byte order mark (BOM); tokenizer files are UTF-8 "
            "without one: remove its first 3 bytes"
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise VocabFileError(f"{p}: UTF-16 text (it starts with a UTF-16 BOM); save it as UTF-8")


def _check_rank_file(p: Path, data: bytes) -> None:
    """A ``.tiktoken`` rank file is lines of ``base64 rank``: anything else is not a
    tokenizer file in any format tokforge reads, said so rather than asking for a pattern (the
    rank file parser, given a pattern, names a bad line itself)."""
    first = data.lstrip(b"\r\n").split(b"\n", 1)[0].rstrip(b"\r")
    token, _, rank = first.partition(b" ")
    b64 = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    if token and set(token) <= b64 and rank[:1].isdigit():
        return
    raise VocabFileError(
        f"{p}: not a tokenizer file: neither JSON (tokforge, tokenizer.json, vocab.json), "
        "a SentencePiece model nor a .tiktoken rank file (its first line is not 'base64 rank')"
    )


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


def preset_of(pattern: str) -> str | None:
    """The preset a pattern argument names (``"cl100k"``, ``"cl100k_base"``, ...), or ``None``
    for a regex. Taken literally, ``"cl100k"`` would be a regex matching only that word, and
    every other text would be dropped.

    >>> preset_of("cl100k_base"), preset_of("gpt2"), preset_of(r"\\w+")
    ('cl100k', 'gpt2', None)
    """
    if pattern in PRESETS:
        return pattern
    spec = ENCODINGS.get(ALIASES.get(pattern, pattern))
    return spec.preset if spec is not None else None


def pretokenizer_args(pat_str: str | None, pretokenizer: PretokenizerLike | None) -> dict[str, Any]:
    """The core constructors' pretokenizer keyword: ``pattern``, ``preset`` or ``callable``."""
    if pat_str is not None and pretokenizer is not None:
        raise TypeError("give either pat_str (a regex) or pretokenizer, not both")
    if pat_str is not None:
        if not isinstance(pat_str, str):
            raise TypeError(f"pat_str must be a str, not {type(pat_str).__name__}")
        preset = preset_of(pat_str)
        return {"preset": preset} if preset is not None else {"pattern": pat_str}
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


def from_tekken(path: str | os.PathLike[str]) -> Loaded:
    """Mistral's Tekken file (``tekken.json``) on the rank engine: its pattern, its ranks after
    the special ids, its special tokens as the file declares them."""
    p = Path(path)
    t = tekken.parse_tekken(read_file(p), str(p))
    core = _core.CoreBPE.from_tiktoken_bytes(
        t.rank_text,
        list(t.specials.items()),
        path=str(p),
        name=p.stem,
        pattern=t.pattern,
    )
    return Loaded(core)


def from_gguf(path: str | os.PathLike[str]) -> Loaded:
    """The tokenizer in a GGUF model file's ``tokenizer.ggml.*`` metadata (the tensors are
    never read); see :mod:`tokforge.interop.gguf`."""
    p = Path(path)
    meta = gguf.read_metadata(p)
    doc = gguf.to_hf_dict(meta, str(p))
    data = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    spm = meta.get("tokenizer.ggml.model") == "llama"
    name = meta.get("general.name")
    return from_hf_bytes(
        data, path=str(p), name=name if isinstance(name, str) else p.stem, sentencepiece=spm
    )


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
        for candidate in ("tokenizer.json", "tokenizer.model", "tekken.json", "vocab.json"):
            if (p / candidate).is_file():
                return load(p / candidate)
        raise TokforgeIOError(
            f"{p}: a directory without tokenizer.json, tokenizer.model, tekken.json or vocab.json"
        )
    # A GGUF model file may be gigabytes: tell the format from its head before reading it all
    # (a FIFO or a device is refused first: opening one could block or never end).
    check_input(p)
    try:
        with open(p, "rb") as f:
            head = f.read(1 << 16)
    except OSError as e:
        raise TokforgeIOError(f"{p}: {e.strerror or e}") from e
    if detect_format(head) == "gguf":
        return from_gguf(p)
    data = read_file(p)
    if not data.strip():
        raise VocabFileError(f"{p}: the file is empty: no tokens")
    _check_encoding(p, data)
    kind = detect_format(data)
    if kind == "sentencepiece":
        return from_sentencepiece(p)
    if kind == "tekken":
        return from_tekken(p)
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
            what = "is not a regular file" if merges.exists() else "is missing"
            raise VocabFileError(
                f"{p}: a GPT-2 vocab.json needs merges.txt beside it ({merges} {what})"
            )
        return from_gpt2(p, merges)
    if kind == "unknown_json":
        try:
            json.loads(data)
        except RecursionError:
            raise VocabFileError(f"{p}: JSON nested too deeply") from None
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
        _check_rank_file(p, data)
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
