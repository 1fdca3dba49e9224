"""The known encodings, in one place: the pretokenizer presets and the OpenAI encodings (name,
preset, special tokens, published SHA-256), and where their rank files are found locally.
:func:`tokforge.get_encoding` (in :mod:`tokforge.encodings`) builds tokenizers from them.

Nothing here downloads: both rank files ship inside the package, gzip-compressed
(``tokforge/data/<name>.tiktoken.gz``). A local copy overrides them; the order is an explicit
path, ``$TOKFORGE_SHARED/vocabs``, ``$TOKFORGE_VOCAB_DIR``, tiktoken's cache
(``$TIKTOKEN_CACHE_DIR``, ``$DATA_GYM_CACHE_DIR`` or the temp dir's ``data-gym-cache``, where
tiktoken stores a file under the SHA-1 of its URL), then the bundled file. Every candidate, the
bundled one included, is checked against the published SHA-256 of the uncompressed file when it
is read; a local copy with another hash is passed over.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from . import _core
from .errors import TokforgeIOError
from .files import read_bytes

__all__ = [
    "ALIASES",
    "ENCODINGS",
    "PRESETS",
    "EncodingSpec",
    "bundled_rank_file",
    "encoding_core",
    "find_rank_file",
    "known_rank_file",
    "list_encoding_names",
    "read_rank_file",
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


def bundled_rank_file(name: str) -> Path:
    """The gzip-compressed rank file of encoding ``name`` that ships inside the package."""
    spec = ENCODINGS[ALIASES.get(name, name)]
    return Path(__file__).resolve().parent / "data" / f"{spec.file_name}.gz"


def _overrides(spec: EncodingSpec) -> list[Path]:
    """Local copies that take precedence over the bundled file, in order."""
    out: list[Path] = []
    shared = os.environ.get("TOKFORGE_SHARED")
    if shared:
        out.append(Path(shared) / "vocabs" / spec.file_name)
    vocab_dir = os.environ.get("TOKFORGE_VOCAB_DIR")
    if vocab_dir:
        out.append(Path(vocab_dir) / spec.file_name)
    key = hashlib.sha1(spec.url.encode()).hexdigest()
    for env in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if os.environ.get(env):
            out.append(Path(os.environ[env]) / key)
    out.append(Path(tempfile.gettempdir()) / "data-gym-cache" / key)
    return out


def _read(path: Path) -> bytes:
    """The file's bytes, gunzipped when its name ends in ``.gz``."""
    data = read_bytes(path)
    if path.name.endswith(".gz"):
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise TokforgeIOError(f"{path}: not a readable gzip file ({e})") from e
    return data


def find_rank_file(name: str) -> Path:
    """Where encoding ``name``'s rank file is read from: the first local copy (see
    :func:`_overrides`) whose SHA-256 is the published one, else the bundled ``.gz`` file (whose
    hash :func:`read_rank_file` checks when it reads it). Raises :class:`TokforgeIOError` when
    there is neither."""
    spec = ENCODINGS[ALIASES.get(name, name)]
    for p in _overrides(spec):
        if p.is_file():
            try:
                if hashlib.sha256(_read(p)).hexdigest() == spec.sha256:
                    return p
            except OSError:
                continue
    bundled = bundled_rank_file(spec.name)
    if not bundled.is_file():
        looked = ", ".join(str(o) for o in _overrides(spec))
        raise TokforgeIOError(
            f"no local rank file for {spec.name}: the copy bundled with tokforge ({bundled}) is "
            f"missing, and none was found in {looked}. tokforge never downloads: reinstall it, "
            "set TOKFORGE_SHARED to a folder holding vocabs/, or pass a path."
        )
    return bundled


def read_rank_file(name: str, path: str | os.PathLike[str] | None = None) -> tuple[bytes, Path]:
    """The bytes of encoding ``name``'s rank file and where they came from: ``path`` when given
    (a ``.tiktoken`` file, or a gzip-compressed one ending in ``.gz``), else
    :func:`find_rank_file`'s. Raises :class:`TokforgeIOError` when the file cannot be read or is
    not the published file (SHA-256 of the uncompressed bytes)."""
    spec = ENCODINGS[ALIASES.get(name, name)]
    p = Path(path) if path is not None else find_rank_file(spec.name)
    try:
        data = _read(p)
    except TokforgeIOError:
        raise
    except OSError as e:
        raise TokforgeIOError(f"{p}: cannot read the {spec.name} rank file: {e}") from e
    if hashlib.sha256(data).hexdigest() != spec.sha256:
        raise TokforgeIOError(
            f"{p}: not the {spec.name} rank file (its SHA-256 is not the published "
            f"{spec.sha256[:12]}...)"
        )
    return data, p


def known_rank_file(data: bytes) -> tuple[str, str, dict[str, int]] | None:
    """``(name, preset, special_tokens)`` when ``data`` is a known encoding's rank file."""
    digest = hashlib.sha256(data).hexdigest()
    for spec in ENCODINGS.values():
        if spec.sha256 == digest:
            return spec.name, spec.preset, dict(spec.special_tokens)
    return None


def encoding_core(name: str, path: str | os.PathLike[str] | None = None) -> _core.CoreBPE:
    """The core of encoding ``name`` (a key of :data:`ENCODINGS` or :data:`ALIASES`) from the
    rank file :func:`read_rank_file` picks, refused when its SHA-256 is not the published one."""
    spec = ENCODINGS[ALIASES.get(name, name)]
    data, p = read_rank_file(spec.name, path)
    return _core.CoreBPE.from_tiktoken_bytes(
        data, list(spec.special_tokens.items()), path=str(p), preset=spec.preset, name=spec.name
    )
