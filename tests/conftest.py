"""Shared fixtures: where ../shared is, the corpora, and tokforge/tiktoken encodings built from
the same rank files. Tests that need ../shared skip with a reason when it is absent, and fail
instead when TOKFORGE_REQUIRE_SHARED=1 (CI), so CI can never pass by skipping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPORA = ["en_docs", "code_py", "man_de", "man_ja", "man_ru", "man_zh_CN"]
ENCODING_NAMES = ["cl100k_base", "o200k_base"]


def shared_path() -> Path:
    return Path(os.environ.get("TOKFORGE_SHARED") or REPO.parent / "shared")


def require_shared(*parts: str) -> Path:
    """The path under ../shared, or skip (fail under TOKFORGE_REQUIRE_SHARED=1) if missing."""
    p = shared_path().joinpath(*parts)
    if not p.exists():
        msg = f"{p} is missing: set TOKFORGE_SHARED to the shared data folder"
        if os.environ.get("TOKFORGE_REQUIRE_SHARED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return p


_TEXT_CACHE: dict[str, str] = {}


def corpus_text(name: str) -> str:
    if name not in _TEXT_CACHE:
        _TEXT_CACHE[name] = require_shared("corpora", f"{name}.txt").read_text(encoding="utf-8")
    return _TEXT_CACHE[name]


def documents(text: str, size: int = 4096) -> list[str]:
    """Cuts text into ~size-byte documents at character boundaries (the benchmark's unit: the
    same function the benchmarks use)."""
    from tokforge.bench.harness import documents as cut

    return cut(text, size)


@pytest.fixture(scope="session")
def shared() -> Path:
    return require_shared()


_ENC_CACHE: dict[str, object] = {}


def tokforge_encoding(name: str):
    import tokforge

    key = "tf:" + name
    if key not in _ENC_CACHE:
        path = require_shared("vocabs", f"{name}.tiktoken")
        _ENC_CACHE[key] = tokforge.get_encoding(name, path)
    return _ENC_CACHE[key]


def tiktoken_encoding(name: str):
    """tiktoken.Encoding from the same rank file, pattern and specials (no download)."""
    pytest.importorskip("tiktoken")
    import tiktoken
    import tiktoken.load
    from tokforge import _core
    from tokforge.registry import ENCODINGS

    key = "tt:" + name
    if key not in _ENC_CACHE:
        spec = ENCODINGS[name]
        path = require_shared("vocabs", f"{name}.tiktoken")
        _ENC_CACHE[key] = tiktoken.Encoding(
            name,
            pat_str=_core.preset_pattern(spec.preset),
            mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(path)),
            special_tokens=spec.special_tokens,
        )
    return _ENC_CACHE[key]


@pytest.fixture(scope="session", params=ENCODING_NAMES)
def encoding_pair(request):
    """(tokforge Tokenizer, tiktoken Encoding) for the same encoding."""
    return tokforge_encoding(request.param), tiktoken_encoding(request.param)


@pytest.fixture(scope="session")
def cl100k():
    return tokforge_encoding("cl100k_base")
