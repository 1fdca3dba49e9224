"""The known encodings, in one place: the pretokenizer presets and the OpenAI encodings (name,
preset, special tokens, published SHA-256), and where their rank files are found locally.
:func:`tokforge.get_encoding` (in :mod:`tokforge.encodings`) builds tokenizers from them.

Nothing here downloads: rank files are found, in order, at an explicit path, under
``$TOKFORGE_SHARED/vocabs``, under ``./shared/vocabs`` or ``../shared/vocabs`` from the
current directory, in ``$TOKFORGE_VOCAB_DIR``, or in tiktoken's cache (``$TIKTOKEN_CACHE_DIR``,
``$DATA_GYM_CACHE_DIR`` or the temp dir's ``data-gym-cache``, where tiktoken stores a file
under the SHA-1 of its URL). Every candidate is checked against the published SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import _core
from .errors import TokforgeError, TokforgeIOError
from .files import read_bytes

__all__ = [
    "ALIASES",
    "ENCODINGS",
    "PRESETS",
    "EncodingSpec",
    "encoding_core",
    "find_rank_file",
    "known_rank_file",
    "list_encoding_names",
]

#: The built-in pretokenizers, by name: the three OpenAI regexes (run by exact scanners), the
#: ``White_Space`` splitter, and none at all.
PRESETS = ("cl100k", "o200k", "gpt2", "whitespace", "none")


@dataclass(frozen=True)
class EncodingSpec:
    """Where an OpenAI encoding's rank file comes from and what goes with it."""

    name: str
    preset: str
    special_tokens: dict[str, int]
    sha256: str
    url: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.tiktoken"


ENCODINGS: dict[str, EncodingSpec] = {
    "cl100k_base": EncodingSpec(
        name="cl100k_base",
        preset="cl100k",
        special_tokens={
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        url="https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    ),
    "o200k_base": EncodingSpec(
        name="o200k_base",
        preset="o200k",
        special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        url="https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    ),
}

#: Short names accepted wherever an encoding name is.
ALIASES = {"cl100k": "cl100k_base", "o200k": "o200k_base"}


def list_encoding_names() -> list[str]:
    """The encodings :func:`get_encoding` knows."""
    return sorted(ENCODINGS)


def _candidates(spec: EncodingSpec) -> list[Path]:
    out: list[Path] = []
    shared = os.environ.get("TOKFORGE_SHARED")
    if shared:
        out.append(Path(shared) / "vocabs" / spec.file_name)
    for base in (Path.cwd() / "shared", Path.cwd().parent / "shared"):
        out.append(base / "vocabs" / spec.file_name)
    vocab_dir = os.environ.get("TOKFORGE_VOCAB_DIR")
    if vocab_dir:
        out.append(Path(vocab_dir) / spec.file_name)
    key = hashlib.sha1(spec.url.encode()).hexdigest()
    for env in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if os.environ.get(env):
            out.append(Path(os.environ[env]) / key)
    out.append(Path(tempfile.gettempdir()) / "data-gym-cache" / key)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_rank_file(name: str) -> Path:
    """The local rank file of encoding ``name``; raises :class:`TokforgeIOError` listing where
    it looked when there is none with the right hash."""
    spec = ENCODINGS[ALIASES.get(name, name)]
    looked = []
    for p in _candidates(spec):
        looked.append(str(p))
        if p.is_file() and _sha256(p) == spec.sha256:
            return p
    raise TokforgeIOError(
        f"no local rank file for {spec.name} (tokforge never downloads). Looked in: "
        + ", ".join(looked)
        + ". Set TOKFORGE_SHARED to the folder holding vocabs/, or pass a path."
    )


def known_rank_file(data: bytes) -> tuple[str, str, dict[str, int]] | None:
    """``(name, preset, special_tokens)`` when ``data`` is a known encoding's rank file."""
    digest = hashlib.sha256(data).hexdigest()
    for spec in ENCODINGS.values():
        if spec.sha256 == digest:
            return spec.name, spec.preset, dict(spec.special_tokens)
    return None


def encoding_core(name: str, path: str) -> _core.CoreBPE:
    """The core of encoding ``name`` (a key of :data:`ENCODINGS`) from the rank file at
    ``path``, refused when the file's SHA-256 is not the published one."""
    spec = ENCODINGS[name]
    data = read_bytes(path)
    if hashlib.sha256(data).hexdigest() != spec.sha256:
        raise TokforgeError(f"{path}: not the {name} rank file (SHA-256 differs)")
    return _core.CoreBPE.from_tiktoken_bytes(
        data, list(spec.special_tokens.items()), path=path, preset=spec.preset, name=name
    )
