"""cl100k_base and o200k_base ship inside the package: `get_encoding`, `encode` and the demo work
from an empty folder, offline, with no shared data, and every copy (bundled or an override) is
checked against the published SHA-256 when it is read."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ENCODING_NAMES, REPO, require_shared, tiktoken_encoding
from tokforge import encodings, registry
from tokforge.errors import TokforgeIOError

DATA = REPO / "python" / "tokforge" / "data"


def _published_sums() -> dict[str, str]:
    """The shared SHA256SUMS: written apart from the package, so not the code under test."""
    text = require_shared("vocabs", "SHA256SUMS").read_text(encoding="utf-8")
    return {name: digest for digest, name in (line.split() for line in text.splitlines())}


@pytest.mark.parametrize("name", ENCODING_NAMES)
def test_bundled_file_is_the_published_file(name):
    bundled = registry.bundled_rank_file(name)
    # the installed package's copy is the repository's
    assert bundled.name == f"{name}.tiktoken.gz" and bundled.parent.name == "data"
    assert bundled.read_bytes() == (DATA / bundled.name).read_bytes()
    raw = gzip.decompress(bundled.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == _published_sums()[f"{name}.tiktoken"]
    assert raw == require_shared("vocabs", f"{name}.tiktoken").read_bytes()
    # compressed: under half the plain file
    assert bundled.stat().st_size < len(raw) / 2


def _isolated_env(tmp_path: Path) -> dict[str, str]:
    """No shared data, no tiktoken cache, HOME and TMPDIR empty folders."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {"TOKFORGE_SHARED", "TOKFORGE_VOCAB_DIR", "TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"}
    }
    for d in ("home", "tmp", "cwd"):
        (tmp_path / d).mkdir()
    env.update(HOME=str(tmp_path / "home"), TMPDIR=str(tmp_path / "tmp"))
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(Path(encodings.__file__).parents[1]), env.get("PYTHONPATH", "")] if p
    )
    return env


# Run in a child: sockets refused (so any network use fails loudly), an audit hook records every
# file opened, and the journey goes get_encoding -> encode/decode -> the demo.
JOURNEY = textwrap.dedent(
    """
    import json, socket, sys

    def no_network(*a, **k):
        raise RuntimeError("network used")

    socket.socket.connect = no_network
    socket.create_connection = no_network
    opened = []
    sys.addaudithook(lambda ev, args: ev == "open" and opened.append(str(args[0])))

    import tokforge
    after_import = [p for p in opened if ".tiktoken" in p]
    out = {"after_import": after_import, "ids": {}, "round_trip": {}}
    for name in ("cl100k_base", "o200k_base"):
        enc = tokforge.get_encoding(name)
        ids = enc.encode(sys.argv[1])
        out["ids"][name] = ids
        out["round_trip"][name] = enc.decode(ids) == sys.argv[1]
    out["rank_files"] = sorted({p for p in opened if ".tiktoken" in p})
    from tokforge.cli import main
    out["demo_exit"] = main(["demo", "--vocab-size", "300"])
    print("JOURNEY " + json.dumps(out))
    """
)


def test_offline_from_an_empty_folder(tmp_path):
    text = "tokforge splits strawberry: 12345 naïve ünïcödé 東京 🙂\n  x"
    env = _isolated_env(tmp_path)
    p = subprocess.run(
        [sys.executable, "-c", JOURNEY, text],
        cwd=tmp_path / "cwd",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    line = next(x for x in p.stdout.splitlines() if x.startswith("JOURNEY "))
    out = json.loads(line.removeprefix("JOURNEY "))
    assert out["after_import"] == []  # loaded lazily: importing reads no rank file
    assert out["rank_files"] == [str(registry.bundled_rank_file(n)) for n in ENCODING_NAMES]
    for name in ENCODING_NAMES:
        # the reference: tiktoken on the shared plain file (conftest), not on what tokforge read
        assert out["ids"][name] == tiktoken_encoding(name).encode_ordinary(text)
        assert out["round_trip"][name]
    assert out["demo_exit"] == 0
    assert "cl100k_base" in p.stdout and "o200k_base" in p.stdout
    assert "skipped" not in p.stdout
    # nothing written to HOME or TMPDIR by the library or the demo
    assert list((tmp_path / "home").iterdir()) == []
    assert list((tmp_path / "tmp").iterdir()) == []


def _clean_overrides(monkeypatch, tmp_path: Path) -> None:
    for k in ("TOKFORGE_SHARED", "TOKFORGE_VOCAB_DIR", "TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(registry.tempfile, "gettempdir", lambda: str(tmp_path / "no-tmp"))


def test_overrides_in_order(monkeypatch, tmp_path):
    _clean_overrides(monkeypatch, tmp_path)
    plain = require_shared("vocabs", "cl100k_base.tiktoken").read_bytes()
    assert registry.find_rank_file("cl100k") == registry.bundled_rank_file("cl100k_base")
    # tiktoken's cache: the file named by the SHA-1 of its URL
    cache = tmp_path / "tt-cache"
    cache.mkdir()
    key = hashlib.sha1(registry.ENCODINGS["cl100k_base"].url.encode()).hexdigest()
    (cache / key).write_bytes(plain)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    assert registry.find_rank_file("cl100k_base") == cache / key
    # TOKFORGE_VOCAB_DIR comes before it, TOKFORGE_SHARED before both
    vocab_dir = tmp_path / "vocab-dir"
    vocab_dir.mkdir()
    (vocab_dir / "cl100k_base.tiktoken").write_bytes(plain)
    monkeypatch.setenv("TOKFORGE_VOCAB_DIR", str(vocab_dir))
    assert registry.find_rank_file("cl100k_base") == vocab_dir / "cl100k_base.tiktoken"
    shared = tmp_path / "shared"
    (shared / "vocabs").mkdir(parents=True)
    (shared / "vocabs" / "cl100k_base.tiktoken").write_bytes(plain)
    monkeypatch.setenv("TOKFORGE_SHARED", str(shared))
    assert registry.find_rank_file("cl100k_base") == shared / "vocabs" / "cl100k_base.tiktoken"
    tok = encodings.get_encoding("cl100k_base")
    assert tok.encode("hello world") == [15339, 1917]  # tiktoken's documented example


def test_a_local_copy_with_another_hash_is_passed_over(monkeypatch, tmp_path):
    _clean_overrides(monkeypatch, tmp_path)
    shared = tmp_path / "shared"
    (shared / "vocabs").mkdir(parents=True)
    plain = require_shared("vocabs", "o200k_base.tiktoken").read_bytes()
    (shared / "vocabs" / "o200k_base.tiktoken").write_bytes(plain[:-20])  # truncated
    monkeypatch.setenv("TOKFORGE_SHARED", str(shared))
    assert registry.find_rank_file("o200k") == registry.bundled_rank_file("o200k_base")


def test_explicit_paths_plain_gzip_and_wrong(tmp_path):
    plain = require_shared("vocabs", "cl100k_base.tiktoken")
    gz = tmp_path / "cl.tiktoken.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, gz):
        assert encodings.get_encoding("cl100k_base", path).encode("hello world") == [15339, 1917]
    wrong = tmp_path / "o200k.tiktoken"
    wrong.write_bytes(require_shared("vocabs", "o200k_base.tiktoken").read_bytes())
    with pytest.raises(TokforgeIOError, match=r"o200k\.tiktoken: not the cl100k_base rank file"):
        encodings.get_encoding("cl100k_base", wrong)
    broken = tmp_path / "broken.tiktoken.gz"
    broken.write_bytes(b"\x1f\x8b\x08\x00not gzip")
    with pytest.raises(TokforgeIOError, match=r"broken\.tiktoken\.gz: not a readable gzip file"):
        encodings.get_encoding("cl100k_base", broken)


def test_a_damaged_bundled_copy_is_refused(monkeypatch, tmp_path):
    _clean_overrides(monkeypatch, tmp_path)
    raw = gzip.decompress(registry.bundled_rank_file("cl100k_base").read_bytes())
    damaged = tmp_path / "cl100k_base.tiktoken.gz"
    damaged.write_bytes(gzip.compress(raw.replace(b"IQ== 0", b"Ig== 0", 1)))
    monkeypatch.setattr(registry, "bundled_rank_file", lambda name: damaged)
    with pytest.raises(TokforgeIOError, match="not the cl100k_base rank file"):
        registry.encoding_core("cl100k_base")
    monkeypatch.setattr(registry, "bundled_rank_file", lambda name: tmp_path / "gone.gz")
    with pytest.raises(TokforgeIOError, match=r"bundled with tokforge.*never downloads"):
        encodings.get_encoding("cl100k_base")
