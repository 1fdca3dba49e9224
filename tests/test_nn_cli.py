"""``tokforge run-model``: the sub-command that tokforge.cli.nn registers.

Most tests swap the command's ``resolve_tokenizer`` for a tiny byte tokenizer, so they check the
command's own logic with NumPy alone. The last section runs the real cl100k tokenizer through
``tokforge.cli.main`` and skips where its rank file cannot be found.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import tokforge
from conftest import require_module, require_shared
from tokforge.cli import nn as nn_cli
from tokforge.nn import Config, Transformer, softmax
from tokforge.nn.weights import save_gpt2


class ByteTokenizer:
    """Bytes are ids 0-255, <|endoftext|> is 256."""

    n_vocab = 257
    eot_token = 256

    def encode(self, text: str, allowed_special: object = (), disallowed_special: object = ()):
        ids: list[int] = []
        for i, part in enumerate(text.split("<|endoftext|>")):
            if i:
                ids.append(256)
            ids.extend(part.encode())
        return ids

    def decode_single_token_bytes(self, token: int) -> bytes:
        if token == 256:
            return b"<|endoftext|>"
        if 0 <= token < 256:
            return bytes([token])
        raise KeyError(token)


@pytest.fixture
def byte_tokenizer(monkeypatch: pytest.MonkeyPatch) -> ByteTokenizer:
    tok = ByteTokenizer()
    monkeypatch.setattr(nn_cli, "resolve_tokenizer", lambda spec: tok)
    return tok


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokforge")
    nn_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["run-model", *argv])
    return int(args.func(args))


def same_model(tok: ByteTokenizer, **shape: object) -> Transformer:
    """The random model run-model builds for these options (its defaults, seed 0)."""
    fields: dict[str, object] = {"d_model": 64, "n_layers": 2, "n_heads": 4, "max_seq_len": 256}
    fields.update(shape)
    return Transformer(Config.from_tokenizer(tok, **fields), seed=0, tokenizer=tok)  # type: ignore[arg-type]


def test_trace_walks_the_whole_road(byte_tokenizer: ByteTokenizer, capsys) -> None:
    rc = run(["The cat", "--trace", "--d-model", "16", "--sample-seed", "3", "--top-k", "4"])
    out = capsys.readouterr().out
    assert rc == 0
    steps = ["tokenize", "embed", "positions", "block 0", "block 1", "ln_f", "logits",
             "softmax", "filter", "top-5", "sample"]  # fmt: skip
    numbered = re.findall(r"^\s?(\d+)\. (\S+(?: \d)?)", out, flags=re.M)
    assert numbered == [(str(i), step) for i, step in enumerate(steps, 1)]
    assert "[7] -> [7, 16]" in out  # 7 byte tokens embedded into 16 dimensions
    assert "q [4, 7, 4], k [4, 7, 4], v [4, 7, 4]" in out
    assert "[7, 16] -> [7, 257]" in out  # the logits
    assert "keeps 4" in out

    # The printed top-5 are the model's five likeliest next tokens with their probabilities.
    model = same_model(byte_tokenizer, d_model=16)
    p = softmax(model.forward(byte_tokenizer.encode("The cat"))[-1])
    top = np.argsort(-p, kind="stable")[:5]
    listed = re.findall(r"^\s+\d\. .*? id\s+(\d+)\s+p = ([0-9.e+-]+)", out, flags=re.M)
    assert [int(i) for i, _ in listed] == top.tolist()
    assert [float(q) for _, q in listed] == pytest.approx(p[top], rel=1e-3)
    # The sampled token is one of the kept four, and the final line continues the prompt.
    sampled = int(re.search(r"-> .* \(id (\d+), p = ", out).group(1))  # type: ignore[union-attr]
    assert sampled in top[:4]
    assert out.endswith("The cat" + model.decode([sampled]) + "\n")


def test_greedy_generation_prints_prompt_and_continuation(byte_tokenizer, capsys) -> None:
    rc = run(["ab", "--temperature", "0", "--max-new-tokens", "6", "--positional", "rope"])
    assert rc == 0
    model = same_model(byte_tokenizer, positional="rope")
    expected = model.generate("ab", 6, temperature=0)
    assert capsys.readouterr().out == "ab" + (expected.text or "") + "\n"


def test_weights_from_npz_and_gpt2_safetensors(byte_tokenizer, tmp_path: Path, capsys) -> None:
    config = Config.from_tokenizer(byte_tokenizer, d_model=8, n_layers=1, n_heads=2, max_seq_len=32)
    model = Transformer(config, seed=5, tokenizer=byte_tokenizer)
    expected = "xy" + (model.generate("xy", 4, temperature=0).text or "") + "\n"
    model.save(tmp_path / "m.npz")
    save_gpt2(tmp_path / "m.safetensors", model.params, model.config)
    for path in (tmp_path / "m.npz", tmp_path / "m.safetensors"):
        rc = run(["xy", "--weights", str(path), "--temperature", "0", "--max-new-tokens", "4"])
        assert rc == 0
        assert capsys.readouterr().out == expected


def test_attention_png(byte_tokenizer, tmp_path: Path, capsys) -> None:
    require_module("matplotlib")
    png = tmp_path / "attn.png"
    assert run(["hello", "--attention-png", str(png), "--layers", "1", "--heads", "2"]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(png) in capsys.readouterr().out


def test_attention_png_without_matplotlib_is_one_clear_error(
    byte_tokenizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    assert run(["hello", "--trace", "--attention-png", str(tmp_path / "a.png")]) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "matplotlib" in err
    assert out == ""  # refused before tracing anything
    assert not (tmp_path / "a.png").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--heads", "5"], "not divisible"),
        (["--weights", "missing.npz"], "missing.npz"),
        (["--weights", "model.bin"], "expected a .npz or .safetensors"),
        (["--weights", "m.npz", "--d-model", "32"], "--d-model"),
        (["--temperature", "-1"], "temperature"),
        (["--max-new-tokens", "-2"], "max-new-tokens"),
        (["--max-seq-len", "2"], "max_seq_len"),
        (["--top-p", "1.5"], "top_p"),
    ],
)
def test_errors_are_one_line_and_nonzero(byte_tokenizer, capsys, argv, message) -> None:
    assert run(["hello", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("tokforge run-model: error:") and err.count("\n") == 1
    assert message in err


def test_tokenizer_larger_than_the_weights_vocabulary(byte_tokenizer, tmp_path, capsys) -> None:
    Transformer(Config(vocab_size=100, d_model=8, n_heads=2)).save(tmp_path / "small.npz")
    assert run(["hi", "--weights", str(tmp_path / "small.npz")]) == 1
    assert "--tokenizer" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# With the real tokenizer (the compiled core and cl100k's rank file)


@pytest.fixture
def cl100k():
    # skips without ../shared, fails under TOKFORGE_REQUIRE_SHARED=1; any other error fails
    require_shared("vocabs", "cl100k_base.tiktoken")
    return tokforge.resolve_tokenizer("cl100k")


def test_run_model_through_the_main_cli_with_cl100k(cl100k, capsys) -> None:
    from tokforge.cli import main

    rc = main(["run-model", "The cat sat", "--trace", "--sample-seed", "0", "--temperature", "0"])
    out = capsys.readouterr().out
    assert rc == 0
    ids = cl100k.encode("The cat sat")
    assert f"{len(ids)} tokens" in out
    assert f"[{len(ids)}] -> [{len(ids)}, 64]" in out  # the default random model is small
    assert f"-> [{len(ids)}, {cl100k.n_vocab}]" in out
    model = Transformer(Config.from_tokenizer(cl100k, d_model=64, n_layers=2, n_heads=4),
                        seed=0, tokenizer=cl100k)  # fmt: skip
    greedy = int(np.argmax(model.forward(ids)[-1]))
    assert f"(id {greedy}, p = 1)" in out
