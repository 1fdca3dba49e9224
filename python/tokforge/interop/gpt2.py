"""Read GPT-2 style ``vocab.json`` + ``merges.txt`` (byte-level BPE) into an HF dict.

The result is shaped like an HF ``tokenizer.json``: a ByteLevel pre-tokenizer (no prefix
space, GPT-2 regex), a ByteLevel decoder and a BPE model with the merges in file order.
Malformed files raise :class:`~tokforge.errors.VocabFileError` naming the file and line.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import VocabFileError
from ..files import read_bytes
from .hf_json import BYTE_LEVEL_DECODER, added_token, bpe_model, document

__all__ = ["ENDOFTEXT", "read_gpt2"]

ENDOFTEXT = "<|endoftext|>"


def _read_text(path: str) -> str:
    data = read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise VocabFileError(f"{path}: line {line}: invalid UTF-8") from None


def _read_vocab(path: str) -> dict[str, int]:
    text = _read_text(path)
    try:
        vocab = json.loads(text)
    except json.JSONDecodeError as e:
        raise VocabFileError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from None
    if not isinstance(vocab, dict):
        raise VocabFileError(
            f"{path}: line 1: expected a JSON object of token -> id, got {type(vocab).__name__}"
        )
    if not vocab:
        raise VocabFileError(f"{path}: line 1: the vocabulary is empty")
    seen: dict[int, str] = {}
    for token, i in vocab.items():
        if not token:
            raise VocabFileError(f"{path}: the empty string is not a token")
        if type(i) is not int or i < 0:
            raise VocabFileError(f"{path}: token {token!r}: id {i!r} is not an integer >= 0")
        if i in seen:
            raise VocabFileError(f"{path}: tokens {seen[i]!r} and {token!r} share id {i}")
        seen[i] = token
    return vocab


def _read_merges(path: str, vocab: dict[str, int]) -> list[list[str]]:
    merges: list[list[str]] = []
    seen: dict[tuple[str, str], int] = {}
    for n, raw in enumerate(_read_text(path).split("\n"), start=1):
        line = raw.removesuffix("\r")
        if n == 1 and line.startswith("#version"):
            continue
        if not line:
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise VocabFileError(
                f"{path}: line {n}: expected two tokens separated by one space, got {line!r}"
            )
        a, b = parts
        for what, tok in (("left part", a), ("right part", b), ("result", a + b)):
            if tok not in vocab:
                raise VocabFileError(
                    f"{path}: line {n}: merge {a!r} {b!r}: the {what} {tok!r} is not in the "
                    "vocabulary"
                )
        if (a, b) in seen:
            raise VocabFileError(f"{path}: line {n}: merge {a!r} {b!r} repeats line {seen[a, b]}")
        seen[a, b] = n
        merges.append([a, b])
    return merges


def read_gpt2(
    vocab_json_path: str | os.PathLike[str], merges_txt_path: str | os.PathLike[str]
) -> dict[str, Any]:
    """The HF ``tokenizer.json`` dict of a GPT-2 style byte-level BPE.

    ``<|endoftext|>`` becomes a special added token when it is in the vocabulary."""
    vocab_path = os.fspath(vocab_json_path)
    merges_path = os.fspath(merges_txt_path)
    vocab = _read_vocab(vocab_path)
    merges = _read_merges(merges_path, vocab)
    added = [added_token(ENDOFTEXT, vocab[ENDOFTEXT])] if ENDOFTEXT in vocab else []
    return document(
        added=added,
        pre_tokenizer={
            "type": "ByteLevel",
            "add_prefix_space": False,
            "trim_offsets": True,
            "use_regex": True,
        },
        decoder={**BYTE_LEVEL_DECODER, "add_prefix_space": True, "use_regex": True},
        model=bpe_model(vocab, merges),
    )
