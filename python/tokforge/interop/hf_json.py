"""The parts every ``tokenizer.json`` tokforge writes has in common: one place for the HF
document's skeleton, its added tokens and its BPE model, so the exporters and the byte-fallback
trainer cannot drift apart.

>>> doc = document(
...     added=[added_token("<s>", 3)],
...     model=bpe_model({"a": 0, "b": 1, "ab": 2, "<s>": 3}, [["a", "b"]]),
... )
>>> doc["model"]["merges"], doc["added_tokens"][0]["special"]
([['a', 'b']], True)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import VocabError

BYTE_LEVEL_DECODER: dict[str, Any] = {
    "type": "ByteLevel",
    "add_prefix_space": False,
    "trim_offsets": True,
    "use_regex": False,
}


def added_token(content: str, id_: int, *, special: bool = True) -> dict[str, Any]:
    """An ``added_tokens`` entry, matched on the raw text (``normalized`` false) with no
    stripping: what tokforge reads as a special token."""
    return {
        "id": id_,
        "content": content,
        "single_word": False,
        "lstrip": False,
        "rstrip": False,
        "normalized": False,
        "special": special,
    }


def add_specials(vocab: dict[str, int], specials: Mapping[str, int], where: str) -> None:
    """Puts the special tokens into the model's vocabulary too, with their ids: HF ignores the
    ids in ``added_tokens`` for a token the vocabulary lacks and numbers it after the
    vocabulary instead. A special spelled like an ordinary token cannot be held."""
    for text, id_ in specials.items():
        if vocab.setdefault(text, id_) != id_:
            raise VocabError(
                f"the special token {text!r} is spelled like ordinary token {vocab[text]}{where}: "
                "one tokenizer.json vocabulary cannot hold both"
            )


def bpe_model(
    vocab: Mapping[str, int],
    merges: list[list[str]],
    *,
    byte_fallback: bool = False,
    ignore_merges: bool = False,
    unk_token: str | None = None,
    fuse_unk: bool = False,
) -> dict[str, Any]:
    """The ``model`` object of a BPE tokenizer.json (vocabulary in id order)."""
    return {
        "type": "BPE",
        "dropout": None,
        "unk_token": unk_token,
        "continuing_subword_prefix": None,
        "end_of_word_suffix": None,
        "fuse_unk": fuse_unk,
        "byte_fallback": byte_fallback,
        "ignore_merges": ignore_merges,
        "vocab": dict(sorted(vocab.items(), key=lambda kv: kv[1])),
        "merges": merges,
    }


def document(
    *,
    model: dict[str, Any],
    added: list[dict[str, Any]] | None = None,
    normalizer: dict[str, Any] | None = None,
    pre_tokenizer: dict[str, Any] | None = None,
    decoder: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole tokenizer.json document (no truncation, padding or post-processor: tokforge
    never adds tokens of its own)."""
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": sorted(added or [], key=lambda t: t["id"]),
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": None,
        "decoder": decoder,
        "model": model,
    }
