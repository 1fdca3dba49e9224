"""A trained model's file: weights, config, and the tokenizer it was trained with.

The file is the ``.npz`` of :func:`tokforge.nn.save_npz` (flattened params and ``__config__``)
plus two entries: ``__tokenizer__``, the tokenizer's own serialisation as raw bytes (tokforge
JSON, from ``Tokenizer.to_json_bytes``), and ``__info__``, a JSON object of free-form facts
(what the tokenizer was called, how long training ran, the final losses). Entries whose name
starts with ``__`` are metadata, never weights, so :func:`tokforge.nn.load_npz` reads these files
too, and :func:`load_trained` reads plain ``save_npz`` files (with no tokenizer).

This module only moves bytes: turning ``__tokenizer__`` back into a tokenizer is the caller's
job (``tokforge.Tokenizer.from_json_bytes``), so :mod:`tokforge.nn` still needs only NumPy.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import TokforgeError
from ..files import write_atomic
from .config import Config, Params
from .weights import _json, _open_npz, check_params, flatten_params, unflatten_params

__all__ = ["TrainedFile", "load_trained", "save_trained"]

_CONFIG, _TOKENIZER, _INFO = "__config__", "__tokenizer__", "__info__"


@dataclass
class TrainedFile:
    """What :func:`load_trained` read."""

    params: Params
    config: Config
    tokenizer_json: bytes | None = None  # None: the file does not record its tokenizer
    info: dict[str, Any] = field(default_factory=dict)


def save_trained(
    path: str | os.PathLike[str],
    params: Params,
    config: Config,
    tokenizer_json: bytes | None = None,
    info: Mapping[str, Any] | None = None,
) -> None:
    """Write weights, config, tokenizer bytes and ``info`` to ``path``, atomically: the file is
    written under a temporary name in the same folder and renamed over ``path``, so a reader
    never sees half a file and a failed write leaves the old file in place. ``path`` is used as
    given (no ``.npz`` is appended)."""
    target = os.fspath(path)
    entries: dict[str, np.ndarray] = {
        _CONFIG: np.array(json.dumps(config.to_dict())),
        _INFO: np.array(json.dumps(dict(info or {}), sort_keys=True)),
    }
    if tokenizer_json is not None:
        entries[_TOKENIZER] = np.frombuffer(bytes(tokenizer_json), dtype=np.uint8)
    for name, value in flatten_params(params).items():
        entries[name] = np.asarray(value)
    buf = io.BytesIO()
    np.savez(buf, **entries)  # type: ignore[arg-type]
    write_atomic(target, buf.getvalue())


def load_trained(path: str | os.PathLike[str]) -> TrainedFile:
    """Read a file written by :func:`save_trained` or :func:`tokforge.nn.save_npz` (no pickles
    are loaded). Raises :class:`~tokforge.errors.TokforgeError` (a ``ValueError``) for a file
    that is not a tokforge.nn model, :class:`~tokforge.errors.TokforgeIOError` for one that
    cannot be read."""
    name = os.fspath(path)
    with _open_npz(name) as data:
        if _CONFIG not in data.files:
            raise TokforgeError(f"{name}: not a tokforge.nn model (no {_CONFIG} entry)")
        config = Config.from_dict(_json(str(data[_CONFIG]), f"{name}: config"))
        tok = bytes(data[_TOKENIZER].tobytes()) if _TOKENIZER in data.files else None
        info = _json(str(data[_INFO]), f"{name}: info") if _INFO in data.files else {}
        params = unflatten_params({k: data[k] for k in data.files if not k.startswith("__")})
    check_params(params, config)
    return TrainedFile(params, config, tok, info if isinstance(info, dict) else {})
