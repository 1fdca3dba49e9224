"""Mistral's Tekken files (``tekken.json``): a tiktoken-style vocabulary in JSON.

The file holds ``config`` (``pattern``, ``default_vocab_size``, ``default_num_special_tokens``,
``version``), ``vocab`` (``{"rank", "token_bytes" (base64), "token_str"}`` in rank order) and,
from version 7 on, ``special_tokens`` (``{"rank", "token_str", "is_control"}``). Special tokens
take ids ``0 .. num_special - 1`` (the ones the file does not declare are ``<SPECIAL_{id}>``, as
mistral-common fills them); ordinary token ``rank`` has id ``num_special + rank``, and only the
first ``default_vocab_size - num_special`` ranks are used. Files without ``special_tokens``
(versions before 7) get mistral-common's fixed list.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from ..errors import VocabFileError

__all__ = ["TekkenFile", "parse_tekken"]

#: The special tokens of Tekken files that do not list theirs (mistral-common's
#: ``Tekkenizer.DEPRECATED_SPECIAL_TOKENS``), ids 0..19.
LEGACY_SPECIALS = (
    "<unk>",
    "<s>",
    "</s>",
    "[INST]",
    "[/INST]",
    "[AVAILABLE_TOOLS]",
    "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]",
    "[TOOL_CALLS]",
    "[IMG]",
    "<pad>",
    "[IMG_BREAK]",
    "[IMG_END]",
    "[PREFIX]",
    "[MIDDLE]",
    "[SUFFIX]",
    "[SYSTEM_PROMPT]",
    "[/SYSTEM_PROMPT]",
    "[TOOL_CONTENT]",
)


class TekkenFile(NamedTuple):
    """What a Tekken file says, ready for the rank engine."""

    #: a ``.tiktoken`` rank file's text: ``base64 id`` per line, ids offset by the specials
    rank_text: bytes
    #: every special token with its id, as the file declares it (and the fillers)
    specials: dict[str, int]
    pattern: str
    num_special: int
    version: str


def _bad(path: str, why: str) -> VocabFileError:
    return VocabFileError(f"{path}: not a valid Tekken file: {why}")


def parse_tekken(data: bytes, path: str) -> TekkenFile:
    """Reads a Tekken file's content (``path`` names it in errors)."""
    try:
        doc: Any = json.loads(data)
    except ValueError as e:
        raise _bad(path, f"not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise _bad(path, "not a JSON object")
    config = doc.get("config")
    vocab = doc.get("vocab")
    if not isinstance(config, dict) or not isinstance(vocab, list):
        raise _bad(path, 'it needs a "config" object and a "vocab" list')
    pattern = config.get("pattern")
    n_special = config.get("default_num_special_tokens")
    vocab_size = config.get("default_vocab_size")
    if not isinstance(pattern, str):
        raise _bad(path, 'config has no "pattern" string')
    for key, value in (
        ("default_num_special_tokens", n_special),
        ("default_vocab_size", vocab_size),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _bad(path, f"config {key!r} must be a non-negative integer, not {value!r}")
    assert isinstance(n_special, int) and isinstance(vocab_size, int)
    n_inner = vocab_size - n_special
    if n_inner <= 0 or n_inner > len(vocab):
        raise _bad(
            path,
            f"default_vocab_size {vocab_size} minus {n_special} special tokens must be between "
            f"1 and the {len(vocab)} tokens of the vocab",
        )
    declared = doc.get("special_tokens")
    specials: dict[str, int] = {}
    if declared is None:
        names = list(LEGACY_SPECIALS[:n_special])
    elif isinstance(declared, list):
        names = []
        for i, t in enumerate(declared):
            if not isinstance(t, dict) or not isinstance(t.get("token_str"), str):
                raise _bad(path, f"special_tokens[{i}] has no token_str")
            if t.get("rank") != i:
                raise _bad(path, f"special_tokens[{i}] has rank {t.get('rank')!r}, not {i}")
            names.append(t["token_str"])
    else:
        raise _bad(path, '"special_tokens" must be a list')
    if len(names) > n_special:
        raise _bad(path, f"{len(names)} special tokens for {n_special} special ids")
    names += [f"<SPECIAL_{i}>" for i in range(len(names), n_special)]
    for i, name in enumerate(names):
        if name in specials:
            raise _bad(path, f"special token {name!r} appears twice")
        specials[name] = i
    lines = []
    for i, t in enumerate(vocab[:n_inner]):
        if not isinstance(t, dict) or t.get("rank") != i:
            raise _bad(path, f"vocab[{i}] must be an object with rank {i}")
        b64 = t.get("token_bytes")
        if not isinstance(b64, str) or not b64:
            raise _bad(path, f"vocab[{i}] has no token_bytes")
        lines.append(f"{b64} {i + n_special}\n")
    version = config.get("version")
    return TekkenFile(
        "".join(lines).encode("ascii", "replace"),
        specials,
        pattern,
        n_special,
        version if isinstance(version, str) else "",
    )
