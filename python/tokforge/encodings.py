"""Tokenizers by name: :func:`get_encoding` (the OpenAI encodings from the rank files bundled with
the package or a local copy, never downloaded) and :func:`resolve_tokenizer` (what ``--tokenizer``
accepts: a name or a file)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import TokforgeError, TokforgeIOError
from .files import check_input
from .registry import ALIASES, ENCODINGS, find_rank_file, list_encoding_names
from .tokenizer import Tokenizer, _registered

__all__ = ["get_encoding", "list_encoding_names", "resolve_tokenizer"]


def _load_encoding(name: str, path: str) -> Tokenizer:
    # cached there, so that an unpickled encoding is the same object
    return _registered(name, path)


def get_encoding(name: str, path: str | os.PathLike[str] | None = None) -> Tokenizer:
    """``cl100k_base`` or ``o200k_base`` (``cl100k``/``o200k`` also accepted) as a
    :class:`Tokenizer`; the same object is returned for the same name and path. Pattern and
    special tokens are tiktoken's. Without ``path`` the rank file is a local copy when there is
    one (``$TOKFORGE_SHARED/vocabs``, ``$TOKFORGE_VOCAB_DIR``, tiktoken's cache), else the one
    bundled with the package; ``path`` may be a ``.tiktoken`` file or a gzip-compressed one
    (``.gz``). Every file is checked against the published SHA-256; nothing is downloaded."""
    key = ALIASES.get(name, name)
    if key not in ENCODINGS:
        raise TokforgeError(f"unknown encoding {name!r}; known: {', '.join(list_encoding_names())}")
    if path is None:
        # a local copy is hashed here (milliseconds); the bundled file when it is first read
        return _load_encoding(key, str(find_rank_file(key)))
    p = Path(path)
    check_input(p)
    return _load_encoding(key, str(p.resolve()))


def resolve_tokenizer(spec: str | os.PathLike[str]) -> Tokenizer:
    """What ``--tokenizer`` accepts: an encoding name (``cl100k``, ``cl100k_base``, ``o200k``,
    ``o200k_base``) or the path of a tokenizer file or folder in any format
    :meth:`Tokenizer.load` recognises (tokforge JSON, ``.tiktoken``, HF ``tokenizer.json``,
    SentencePiece ``.model``, GPT-2 ``vocab.json``)."""
    s = os.fspath(spec)
    if ALIASES.get(s, s) in ENCODINGS and not Path(s).is_file():
        return get_encoding(s)
    p = Path(s)
    if not p.exists():
        raise TokforgeIOError(
            f"{s}: neither a known encoding ({', '.join(sorted([*ENCODINGS, *ALIASES]))}) "
            "nor an existing file"
        )
    return Tokenizer.load(p)
