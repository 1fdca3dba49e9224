"""The tokenizer inside a GGUF model file (llama.cpp), read from its metadata alone.

A GGUF file is a header (magic ``GGUF``, version, tensor count, key/value count), the key/value
metadata, the tensor infos, then the tensors. Only the header and the metadata are read (the
file is memory-mapped, so a 10 GB model costs what its vocabulary costs); parsing stops before
the tensor infos. The ``tokenizer.ggml.*`` keys become a ``tokenizer.json`` document:

- ``model`` ``gpt2``: byte-level BPE from ``tokens`` and ``merges``; the split is the one
  llama.cpp applies for the ``pre`` type (:data:`PRE_SPLITS`, its ``llama-vocab.cpp`` regexes,
  applied one after the other as a sequence of isolating splits); an unknown ``pre`` type is
  refused by name. CONTROL and USER_DEFINED tokens become added tokens.
- ``model`` ``llama``: a SentencePiece BPE model from ``tokens``, ``scores`` and
  ``token_type``, as :mod:`tokforge.interop.sentencepiece` converts a ``.model`` file.
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path
from typing import Any

from ..errors import TokforgeError, VocabFileError
from ..files import check_input
from . import sentencepiece as spm
from .hf_json import BYTE_LEVEL_DECODER, added_token

__all__ = ["PRE_SPLITS", "read_metadata", "to_hf_dict"]

MAGIC = b"GGUF"

# GGUF value types.
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9

# Token types (llama.cpp's ``llama_token_type``).
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

_GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"
_C = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
_LLAMA3 = (
    _C + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2 = _C + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_UPPER = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]"
_LOWER = r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
_GPT4O = (
    rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+{_C}?|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*{_C}?"
    r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_TEKKEN = (
    rf"[^\r\n\p{{L}}\p{{N}}]?{_UPPER}*{_LOWER}+|[^\r\n\p{{L}}\p{{N}}]?{_UPPER}+{_LOWER}*"
    r"|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_DEEPSEEK_CODER = (r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", "[一-龥ࠀ-一가-퟿]+", r"\p{N}")
_BLOOM = r" ?[^(\s|.,!?…。，、।۔،)]+"
_SEED_CODER = (
    _C + r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_BAILING = (
    r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"
)

_GROUPS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("default",), (r"[\p{P}\$\+<=>\^~\|]+", _GPT2, r"\p{N}+", "[0-9][0-9][0-9]")),
    (
        (
            "llama3",
            "llama-v3",
            "llama-bpe",
            "falcon3",
            "falcon-h1",
            "pixtral",
            "midm-2.0",
            "lfm2",
            "dbrx",
            "smaug-bpe",
            "glm4",
            "chatglm-bpe",
        ),
        (_LLAMA3,),
    ),
    (("deepseek-coder",), _DEEPSEEK_CODER),
    (("falcon",), (r"[\p{P}\$\+<=>\^~\|`]+", _GPT2, "[0-9][0-9][0-9]")),
    (
        ("starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"),
        (r"\p{N}", _GPT2),
    ),
    (
        (
            "gpt-2",
            "phi-2",
            "jina-es",
            "jina-de",
            "gigachat",
            "jina-v2-es",
            "jina-v2-de",
            "a.x-4.0",
            "mellum",
            "jina-v1-en",
            "jina-v2-code",
            "roberta-bpe",
            "exaone4",
            "mpt",
            "olmo",
            "jais",
            "trillion",
            "granite-docling",
        ),
        (_GPT2,),
    ),
    (("qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2", "hunyuan", "grok-2"), (_QWEN2,)),
    (("poro-chat", "bloom", "gpt3-finnish"), (_BLOOM,)),
    (("viking",), (_BLOOM, r"\p{N}")),
    (("tekken",), (_TEKKEN,)),
    (("gpt-4o", "llama4", "minimax-m2"), (_GPT4O,)),
    (("seed-coder",), (_SEED_CODER,)),
    (("bailingmoe", "bailingmoe2", "llada-moe"), (_BAILING,)),
)

#: The split of each ``tokenizer.ggml.pre`` name llama.cpp knows for ``gpt2`` models: the regexes
#: its ``llm_tokenizer_bpe`` applies in turn (each splits the pieces of the one before, keeping
#: the matches and the text between them). Where llama.cpp rewrote a tokenizer.json regex for
#: its own engine (``(?i:...)`` contractions spelled out, Unicode classes in place of
#: lookaheads) this table keeps the original's meaning. Names that need llama.cpp's custom
#: splitters (``kimi-k2``, ``afmoe``, ``superbpe``) are not in it and are refused.
PRE_SPLITS: dict[str, tuple[str, ...]] = {
    name: regexes for names, regexes in _GROUPS for name in names
}

#: ``pre`` types whose llama.cpp loader sets ``ignore_merges`` (a piece that is a token is that
#: token, whatever the merges say).
IGNORE_MERGES = {
    "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
    "tekken",
}  # fmt: skip


class _Reader:
    def __init__(self, buf: mmap.mmap | bytes, path: str) -> None:
        self.buf, self.pos, self.path = buf, 0, path

    def fail(self, why: str) -> VocabFileError:
        return VocabFileError(f"{self.path}: not a valid GGUF file: {why} (at byte {self.pos})")

    def take(self, n: int) -> int:
        at = self.pos
        if n < 0 or at + n > len(self.buf):
            raise self.fail(f"{n} bytes needed past the end of the file")
        self.pos = at + n
        return at

    def scalar(self, fmt: str) -> Any:
        return struct.unpack_from(fmt, self.buf, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.scalar("<Q")
        at = self.take(n)
        raw = bytes(self.buf[at : at + n])
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"a string that is not UTF-8: {raw[:40]!r}") from None

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item = self.scalar("<I")
            n = self.scalar("<Q")
            if item in _SCALARS:
                size = struct.calcsize(_SCALARS[item])
                at = self.take(n * size)
                return list(struct.unpack_from(f"<{n}{_SCALARS[item][1]}", self.buf, at))
            if item == _STRING:
                # Each string needs at least its 8-byte length: a count past that is a lie.
                if n * 8 > len(self.buf) - self.pos:
                    raise self.fail(f"an array of {n} strings longer than the file")
                return [self.string() for _ in range(n)]
            if item == _ARRAY:
                return [self.value(_ARRAY) for _ in range(n)]
            raise self.fail(f"unknown array item type {item}")
        raise self.fail(f"unknown value type {kind}")


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The key/value metadata of a GGUF file (versions 2 and 3), without reading its tensors."""
    p = Path(path)
    check_input(p)  # a FIFO or a device would block or never end
    try:
        with open(p, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 24:
                raise VocabFileError(f"{p}: not a GGUF file: only {size} bytes")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                return _parse(mm, str(p))
    except OSError as e:
        raise VocabFileError(f"{p}: {e.strerror or e}") from e


def _parse(mm: mmap.mmap | bytes, path: str) -> dict[str, Any]:
    r = _Reader(mm, path)
    if bytes(mm[:4]) != MAGIC:
        raise r.fail("it does not start with GGUF")
    r.take(4)
    version = r.scalar("<I")
    if version not in (2, 3):
        raise r.fail(f"GGUF version {version} (versions 2 and 3 are read)")
    r.scalar("<Q")  # the tensor count: the tensors are never read
    n_kv = r.scalar("<Q")
    if n_kv * 12 > len(mm):
        raise r.fail(f"{n_kv} metadata keys in a file of {len(mm)} bytes")
    meta: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.scalar("<I"))
    return meta


def _split(regex: str) -> dict[str, Any]:
    return {
        "type": "Split",
        "pattern": {"Regex": regex},
        "behavior": "Isolated",
        "invert": False,
    }


def to_hf_dict(meta: dict[str, Any], path: str) -> dict[str, Any]:
    """The ``tokenizer.json`` document for the tokenizer a GGUF file's metadata describes."""
    model = meta.get("tokenizer.ggml.model")
    tokens = meta.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not tokens:
        raise VocabFileError(f"{path}: the GGUF file has no tokenizer.ggml.tokens")
    types = meta.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens)
    if len(types) != len(tokens):
        raise VocabFileError(
            f"{path}: {len(types)} token types for {len(tokens)} tokens in the GGUF file"
        )
    if model == "gpt2":
        return _gpt2(meta, tokens, types, path)
    if model == "llama":
        return _llama(meta, tokens, types, path)
    raise TokforgeError(
        f"{path}: GGUF tokenizer model {model!r} is not supported (gpt2 and llama are)"
    )


def _gpt2(meta: dict[str, Any], tokens: list[str], types: list[int], path: str) -> dict[str, Any]:
    pre = meta.get("tokenizer.ggml.pre", "default")
    if pre not in PRE_SPLITS:
        raise TokforgeError(
            f"{path}: GGUF pre-tokenizer type {pre!r} is not supported "
            f"(supported: {', '.join(sorted(PRE_SPLITS))})"
        )
    merges = meta.get("tokenizer.ggml.merges")
    if not isinstance(merges, list):
        raise VocabFileError(f"{path}: a gpt2 GGUF tokenizer without tokenizer.ggml.merges")
    vocab: dict[str, int] = {}
    added: list[dict[str, Any]] = []
    for i, (tok, kind) in enumerate(zip(tokens, types, strict=True)):
        if kind in (CONTROL, USER_DEFINED):
            added.append(added_token(tok, i, special=kind == CONTROL))
        elif tok in vocab:
            raise VocabFileError(f"{path}: token {tok!r} appears twice (ids {vocab[tok]}, {i})")
        else:
            vocab[tok] = i
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [_split(r) for r in PRE_SPLITS[pre]]
            + [
                {
                    "type": "ByteLevel",
                    "add_prefix_space": False,
                    "trim_offsets": True,
                    "use_regex": False,
                }
            ],
        },
        "post_processor": None,
        "decoder": dict(BYTE_LEVEL_DECODER),
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": pre in IGNORE_MERGES,
            "vocab": vocab,
            "merges": merges,
        },
    }


def _llama(meta: dict[str, Any], tokens: list[str], types: list[int], path: str) -> dict[str, Any]:
    scores = meta.get("tokenizer.ggml.scores") or [0.0] * len(tokens)
    if len(scores) != len(tokens):
        raise VocabFileError(f"{path}: {len(scores)} scores for {len(tokens)} tokens")
    kinds = {NORMAL: spm.NORMAL, UNKNOWN: spm.UNKNOWN, CONTROL: spm.CONTROL}
    kinds |= {USER_DEFINED: spm.USER_DEFINED, UNUSED: spm.UNUSED, BYTE: spm.BYTE}
    pieces = tuple(
        spm.Piece(t, float(s), kinds.get(k, spm.NORMAL))
        for t, s, k in zip(tokens, scores, types, strict=True)
    )

    def special(key: str, default: int) -> int:
        v = meta.get(f"tokenizer.ggml.{key}_token_id", default)
        return int(v) if isinstance(v, int) else default

    trainer = spm.TrainerSpec(
        model_type=spm.BPE,
        vocab_size=len(pieces),
        byte_fallback=any(p.type == spm.BYTE for p in pieces),
        unk_id=special("unknown", 0),
        bos_id=special("bos", 1),
        eos_id=special("eos", 2),
        pad_id=special("padding", -1),
    )
    normalizer = spm.NormalizerSpec(
        name="identity",
        add_dummy_prefix=bool(meta.get("tokenizer.ggml.add_space_prefix", True)),
        remove_extra_whitespaces=bool(meta.get("tokenizer.ggml.remove_extra_whitespaces", False)),
        escape_whitespaces=True,
    )
    model = spm.SentencePieceModel(
        pieces=pieces, trainer_spec=trainer, normalizer_spec=normalizer, source=path
    )
    return spm.to_hf_dict(model)
