"""``tokforge bench``: output structure and the id-equality lines (not timings)."""

from __future__ import annotations

import json

import pytest
from conftest import require_shared
from tokforge.cli import main


@pytest.fixture()
def text_file(tmp_path):
    p = tmp_path / "small.txt"
    p.write_text(
        "Hello world! Tokenizers split text into pieces.\n"
        "日本語のテキストです。 Привет, мир. 12345 + 678\n"
        * 40
        + "<|endoftext|> stays text here\n",
        encoding="utf-8",
    )
    return p


@pytest.fixture(autouse=True)
def _shared_env(monkeypatch):
    monkeypatch.setenv("TOKFORGE_SHARED", str(require_shared()))


def test_table_and_id_lines(text_file, capsys):
    code = main(
        [
            "bench",
            str(text_file),
            "--mode",
            "both",
            "--repeat",
            "1",
            "--only",
            "tiktoken",
            "tokforge",
            "tokforge[numpy]",
            "-q",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("machine: ")
    assert "versions: " in out and "tokforge " in out
    header = next(line for line in out.splitlines() if line.startswith("mode "))
    assert "tokforge (list)" in header and "tokforge[numpy] (numpy)" in header
    rows = [line.split() for line in out.splitlines() if line.startswith(("cold ", "warm "))]
    assert [r[:2] for r in rows] == [["cold", "small"], ["warm", "small"]]
    assert "ids: tokforge vs tiktoken: identical (" in out
    assert "ids: tokforge[numpy] vs tiktoken: identical (" in out


def test_json(text_file, capsys):
    pytest.importorskip("tiktoken")
    code = main(
        [
            "bench",
            str(text_file),
            "--mode",
            "warm",
            "--repeat",
            "1",
            "--json",
            "--clock",
            "cpu",
            "--only",
            "tiktoken",
            "tokforge",
            "tokie",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["tokenizer"] == "cl100k_base"
    assert data["clock"] == "cpu"
    assert data["reference"] == "tiktoken"
    assert data["ids_identical"] is True
    assert "tokie" in data["skipped"] or "tokie" in data["ids"]
    libs = {r["library"] for r in data["results"]}
    assert {"tiktoken", "tokforge"} <= libs
    for r in data["results"]:
        assert r["mode"] == "warm" and r["documents"] >= 1 and r["mb_s"] > 0


def test_missing_file_is_an_error(tmp_path, capsys):
    assert main(["bench", str(tmp_path / "nope.txt")]) == 1
    assert "no such file" in capsys.readouterr().err
