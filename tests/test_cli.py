"""The command line, called as main(argv): outputs, files and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tokforge
from conftest import require_shared
from tokforge.cli import main

MERGES = [(108, 111), (256, 119)]


@pytest.fixture
def tok_file(tmp_path: Path) -> Path:
    p = tmp_path / "t.json"
    tokforge.Tokenizer.from_merges(
        MERGES, pretokenizer="gpt2", special_tokens={"<|endoftext|>": 258}, name="t"
    ).save(p)
    return p


def test_encode_decode_round_trip(tok_file, capsys):
    assert main(["encode", "low lowly", "--tokenizer", str(tok_file)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == "257 32 257 108 121"
    assert main(["decode", *out.split(), "--tokenizer", str(tok_file)]) == 0
    assert capsys.readouterr().out == "low lowly\n"
    assert main(["encode", "low", "--json", "-t", str(tok_file)]) == 0
    assert json.loads(capsys.readouterr().out) == [257]
    assert main(["decode", "[257, 32]", "-n", "-t", str(tok_file)]) == 0
    assert capsys.readouterr().out == "low "


def test_encode_from_stdin_and_file(tok_file, tmp_path, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("low"))
    assert main(["encode", "-t", str(tok_file)]) == 0
    assert capsys.readouterr().out.strip() == "257"
    f = tmp_path / "in.txt"
    f.write_text("lo", encoding="utf-8")
    assert main(["encode", "--file", str(f), "-t", str(tok_file)]) == 0
    assert capsys.readouterr().out.strip() == "256"


def test_special_tokens_on_the_cli(tok_file, capsys):
    assert main(["encode", "a<|endoftext|>", "-t", str(tok_file)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "tokforge encode: error: Encountered text corresponding to disallowed special"
    )
    assert err.count("\n") == 1
    assert main(["encode", "a<|endoftext|>", "--allow-special", "-t", str(tok_file)]) == 0
    assert capsys.readouterr().out.strip() == "97 258"


def test_info(tok_file, capsys):
    assert main(["info", "-t", str(tok_file), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_vocab"] == 259
    assert info["merges"] == 2
    assert info["special_tokens"] == {"<|endoftext|>": 258}
    assert info["pretokenizer"] == "gpt2"


def test_errors_are_one_line_and_nonzero(tok_file, tmp_path, capsys):
    assert main(["decode", "1", "99999", "-t", str(tok_file)]) == 1
    err = capsys.readouterr().err
    assert "99999" in err and err.count("\n") == 1
    assert main(["decode", "1", "x", "-t", str(tok_file)]) == 1
    assert "'x' is not an integer" in capsys.readouterr().err
    assert main(["encode", "hi", "-t", str(tmp_path / "missing.json")]) == 1
    assert "missing.json" in capsys.readouterr().err
    bad = tmp_path / "bad.tiktoken"
    bad.write_text("YQ== 0\nzz\n")
    assert main(["encode", "hi", "-t", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1


def test_named_encodings_resolve_from_shared(capsys, monkeypatch):
    shared = require_shared("vocabs")
    monkeypatch.setenv("TOKFORGE_SHARED", str(shared.parent))
    assert main(["encode", "hello world", "-t", "cl100k"]) == 0
    assert capsys.readouterr().out.strip() == "15339 1917"  # tiktoken's documented example
    assert main(["info", "-t", "o200k"]) == 0
    assert "199999" in capsys.readouterr().out


def test_no_rank_file_is_a_clear_error(capsys, monkeypatch, tmp_path):
    from tokforge import registry

    monkeypatch.setenv("TOKFORGE_SHARED", str(tmp_path))
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry.tempfile, "gettempdir", lambda: str(tmp_path))
    # a broken install: the bundled copy is gone too
    monkeypatch.setattr(registry, "bundled_rank_file", lambda name: tmp_path / "missing.gz")
    assert main(["encode", "hi", "-t", "o200k"]) == 1
    assert "never downloads" in capsys.readouterr().err


def test_demo_runs_on_the_sample(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TOKFORGE_SHARED", str(require_shared()))
    assert main(["demo", "--quiet", "--out", str(tmp_path / "demo"), "--vocab-size", "300"]) == 0
    out = capsys.readouterr().out
    assert "cl100k_base" in out and "o200k_base" in out
    assert "MISMATCH" not in out
    assert "[·strawberry]" in out  # cl100k keeps " strawberry" whole


def test_sample_corpus_is_bundled():
    text = tokforge.sample_text()
    assert 100_000 < len(text.encode("utf-8")) < 400_000
    assert "strawberry" in text
