"""``tokforge convert``: every direction it offers, checked against the library that
reads the output (tiktoken for .tiktoken, HF tokenizers for tokenizer.json), and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tokforge
from conftest import corpus_text, documents, require_module, require_shared, tiktoken_encoding
from tokforge.cli import main

tokenizers = require_module("tokenizers")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_rank_file_to_hf_matches_tiktoken(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rank_file = require_shared("vocabs", f"{name}.tiktoken")
    out = tmp_path / "tokenizer.json"
    code, stdout, err = run(["convert", str(rank_file), str(out), "--verify"], capsys)
    assert code == 0, err
    assert "HF tokenizers" in stdout and "identical" in stdout
    hf = tokenizers.Tokenizer.from_file(str(out))
    enc = tiktoken_encoding(name)
    docs = documents(corpus_text("man_de"))[:300] + documents(corpus_text("code_py"))[:300]
    got = [e.ids for e in hf.encode_batch(docs, add_special_tokens=False)]
    assert got == enc.encode_ordinary_batch(docs)
    # And back: tokforge reads the tokenizer.json it wrote with the same ids.
    back = tokforge.Tokenizer.load(out)
    assert back.encode_batch(docs) == got


def test_trained_tokenizer_round_trips_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = corpus_text("en_docs")[:60_000]
    tok = tokforge.train([text], 400, pretokenizer="gpt2", progress=False)
    src = tmp_path / "trained.json"
    tok.save(src)
    sample = documents(corpus_text("en_docs")[60_000:100_000], 2000)
    expected = tok.encode_batch(sample)
    for out, fmt in [
        (tmp_path / "tokenizer.json", "hf"),
        (tmp_path / "t.tiktoken", "tiktoken"),
        (tmp_path / "copy.json", "tokforge"),
    ]:
        code, stdout, err = run(["convert", str(src), str(out), "--verify", "--json"], capsys)
        assert code == 0, err
        info = json.loads(stdout)
        assert info["format"] == fmt and info["n_vocab"] == tok.n_vocab
        assert info["verified"], info
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert [e.ids for e in hf.encode_batch(sample, add_special_tokens=False)] == expected
    tiktoken = require_module("tiktoken")
    from tiktoken.load import load_tiktoken_bpe

    enc = tiktoken.Encoding(
        "t",
        pat_str=tok.pattern,
        mergeable_ranks=load_tiktoken_bpe(str(tmp_path / "t.tiktoken")),
        special_tokens={},
    )
    assert enc.encode_ordinary_batch(sample) == expected


def test_hf_input_cannot_become_a_rank_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {
        "model": {
            "type": "BPE",
            "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4},
            "merges": [["b", "c"], ["a", "b"]],
        }
    }
    src = tmp_path / "tokenizer.json"
    src.write_text(json.dumps(doc), encoding="utf-8")
    code, _, err = run(["convert", str(src), str(tmp_path / "x.tiktoken")], capsys)
    assert code == 1
    assert "merge list" in err
    assert not (tmp_path / "x.tiktoken").exists()
    # --to tokforge keeps a merge-list model as the tokenizer.json it is, and says so.
    code, out, err = run(["convert", str(src), str(tmp_path / "x.json")], capsys)
    assert code == 0, err
    assert "saved as tokenizer.json" in out
    back = tokforge.Tokenizer.load(tmp_path / "x.json")
    assert back.encode("abc") == [0, 4]
    code, _, err = run(["convert", str(src), str(tmp_path / "copy"), "--to", "hf"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "copy").read_text(encoding="utf-8")) == doc


def test_bad_inputs_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    code, _, err = run(["convert", str(missing), str(tmp_path / "o.json")], capsys)
    assert code == 1 and "nope.json" in err
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"model": {"type": "Unigram", "vocab": []}}', encoding="utf-8")
    code, _, err = run(["convert", str(garbage), str(tmp_path / "o.json"), "--to", "hf"], capsys)
    assert code == 1 and "only BPE" in err
    code, _, err = run(
        ["convert", str(garbage), str(tmp_path / "o.vocab"), "--to", "sentencepiece-vocab"],
        capsys,
    )
    assert code == 1
    assert not (tmp_path / "o.vocab").exists()
