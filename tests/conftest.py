"""Shared fixtures: where ../shared is, the corpora, and tokforge/tiktoken encodings built from
the same rank files. Tests that need ../shared skip with a reason when it is absent, and fail
instead when TOKFORGE_REQUIRE_SHARED=1 (CI), so CI can never pass by skipping."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from typing import Any

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


def require_chromium() -> str:
    """Debian's headless ``chromium``: a skip with the reason where it is missing, a failure
    under TOKFORGE_REQUIRE_SHARED=1 (CI), where tests/run_all.sh installs it."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "chromium is not installed (tests/run_all.sh installs Debian's chromium package)"
        if os.environ.get("TOKFORGE_REQUIRE_SHARED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def require_module(name: str, reason: str | None = None) -> Any:
    """``pytest.importorskip(name)`` for an oracle the test extras install: a skip with the
    reason on a machine without it, a failure under TOKFORGE_REQUIRE_SHARED=1 (CI), where a
    missing oracle would otherwise turn its tests into silent skips."""
    try:
        return importlib.import_module(name)
    except ImportError as e:
        msg = reason or f"{name} is not installed (pip install 'tokforge[test]')"
        if os.environ.get("TOKFORGE_REQUIRE_SHARED") == "1":
            pytest.fail(f"{msg}: {e}", pytrace=False)
        pytest.skip(msg, allow_module_level=True)


#: Oracles the test extras do not install, by decision: their tests skip with the reason even
#: in CI. torch: PyPI serves only the CUDA build for Linux (a ~800 MB wheel plus ~2 GB of
#: nvidia-* dependencies; the CPU-only wheels live on download.pytorch.org, another index, which
#: the test command does not use). Its checks (gradients, GPT-2 forward) are also made by
#: finite differences and by the safetensors/transformers-free tests in test_nn_grad.py.
OPTIONAL_ORACLES = {"torch"}


def optional_module(name: str, reason: str) -> Any:
    """``pytest.importorskip`` for a module in :data:`OPTIONAL_ORACLES`: skips in CI too."""
    assert name.split(".")[0] in OPTIONAL_ORACLES, (
        f"{name} is in the test extras: use require_module"
    )
    return pytest.importorskip(name, reason=reason)


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
    require_module("tiktoken")
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
