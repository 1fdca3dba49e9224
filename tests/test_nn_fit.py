"""Training the NumPy transformer: fit, evaluate, baselines, optimiser, model files, commands.

The gradient itself is held to finite differences in test_nn_grad.py; here the training loop
around it is checked for determinism, for actually lowering the loss, and for reporting numbers
that agree with their definitions and with an independent computation from model.forward.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os

import numpy as np
import pytest
import tokforge
from conftest import require_module
from tokforge.cli import model as nn_commands
from tokforge.nn import Config, Transformer, fit, load_npz, load_trained, save_npz, save_trained
from tokforge.nn.fit import _bigram_log_probs, bigram_baseline, evaluate, unigram_baseline
from tokforge.nn.optim import AdamW, clip_grad_norm, decays, lr_at
from tokforge.nn.threads import _openblas, blas_thread_control, blas_threads
from tokforge.nn.weights import flatten_params

TEXT = tokforge.sample_text()
BYTES = np.frombuffer(TEXT.encode("utf-8")[:6000], dtype=np.uint8).astype(np.int64)
SMALL = Config(vocab_size=256, d_model=32, n_layers=1, n_heads=2, max_seq_len=32)


def test_fit_is_deterministic_for_a_seed() -> None:
    a, ha = fit(SMALL, BYTES[:4000], steps=6, batch_size=4, seed=3, val_ids=BYTES[4000:4500])
    b, hb = fit(SMALL, BYTES[:4000], steps=6, batch_size=4, seed=3, val_ids=BYTES[4000:4500])
    _, hc = fit(SMALL, BYTES[:4000], steps=6, batch_size=4, seed=4, val_ids=BYTES[4000:4500])
    for name, value in flatten_params(a.params).items():
        np.testing.assert_array_equal(value, flatten_params(b.params)[name])
    assert ha.train_loss == hb.train_loss and ha.val_loss == hb.val_loss
    assert hc.train_loss != ha.train_loss
    assert len(ha.train_loss) == 6 and ha.val_steps[-1] == 5
    assert a.params["wte"].dtype == np.float32


def test_fit_lowers_the_loss_below_the_baselines() -> None:
    # 2000 bytes, scored on themselves: the model must go beyond unigram statistics (a plateau
    # a tied 1-layer byte model sits on for long) to the bigram's and below.
    text = BYTES[:2000]
    config = Config(vocab_size=256, d_model=32, n_layers=1, n_heads=2, max_seq_len=32,
                    tie_embeddings=False)  # fmt: skip
    _, history = fit(config, text, steps=300, batch_size=16, lr=1e-2, val_ids=text)
    unigram = unigram_baseline(text, text, 1999, 256).loss
    bigram, _ = bigram_baseline(text, text, 1999, 256)
    assert history.val_loss[0] > unigram - 0.2  # it starts near the unigram's loss ...
    assert history.val_loss[-1] < bigram.loss - 0.1 < unigram - 0.5  # ... and ends past bigram's
    assert np.mean(history.train_loss[-10:]) < np.mean(history.train_loss[:10]) - 1.0
    assert len(history.lr) == 300 and max(history.lr) == pytest.approx(1e-2)


def test_fit_float64_for_checks() -> None:
    model, _ = fit(SMALL, BYTES[:500], steps=2, batch_size=2, dtype=np.float64)
    assert model.params["h"][0]["mlp"]["c_fc"]["w"].dtype == np.float64


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ids": BYTES[:10]}, "at least 33"),
        ({"ids": np.append(BYTES[:100], 300)}, "outside"),
        ({"steps": 0}, "steps must be"),
        ({"seq_len": 64}, "seq_len must be"),
        ({"lr": -1.0}, "lr must be"),
        ({"val_ids": [1, 2, 999]}, "outside"),
    ],
)
def test_fit_rejects_bad_input(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"ids": BYTES[:200], "steps": 1, "batch_size": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        fit(SMALL, **args)  # type: ignore[arg-type]


def test_evaluate_agrees_with_its_definitions_and_with_model_forward() -> None:
    model, _ = fit(SMALL, BYTES[:3000], steps=5, batch_size=4, dtype=np.float64)
    ids = BYTES[3000:3100]  # 100 ids: windows of 32, 32, 32 and a tail of 3 targets
    result = evaluate(model, ids, n_bytes=99)
    nll = []
    for start in range(0, 99, 32):
        window = ids[start : min(start + 32, 99)]
        logits = model.forward(window)  # [n, 256]
        targets = ids[start + 1 : start + 1 + window.size]
        for row, t in zip(logits, targets, strict=True):
            m = row.max()
            nll.append(m + math.log(np.exp(row - m).sum()) - row[t])
    assert result.n_tokens == 99 == len(nll)
    assert result.loss == pytest.approx(np.mean(nll), rel=1e-9)
    assert result.perplexity == pytest.approx(math.exp(result.loss))
    assert result.bits_per_byte == pytest.approx(result.loss * 99 / (99 * math.log(2)))
    half = evaluate(model, ids, n_bytes=198)  # tokens of 2 bytes each: half the bits per byte
    assert half.bits_per_byte == pytest.approx(result.bits_per_byte / 2)
    assert set(result.to_dict()) == {"loss", "perplexity", "bits_per_byte", "n_tokens", "n_bytes"}


def test_unigram_baseline_is_add_one() -> None:
    train, held = np.array([0, 0, 0, 1, 2]), np.array([3, 0, 1, 3])
    e = unigram_baseline(train, held, n_bytes=3, vocab_size=4)
    p = np.array([4, 2, 2, 1]) / 9  # counts + 1 over 5 + 4
    assert e.loss == pytest.approx(-np.mean(np.log(p[[0, 1, 3]])))
    assert e.bits_per_byte == pytest.approx(e.loss / math.log(2))


def test_bigram_baseline_is_normalised_and_tuned_on_train_only() -> None:
    rng = np.random.default_rng(0)
    train = rng.integers(0, 20, 500)
    for alpha in (0.1, 10.0):
        for prev in (0, 7):
            logp = _bigram_log_probs(train, np.full(20, prev), np.arange(20), 20, alpha)
            assert np.exp(logp).sum() == pytest.approx(1.0)
    _, alpha_a = bigram_baseline(train, rng.integers(0, 20, 50), 50, 20)
    _, alpha_b = bigram_baseline(train, np.zeros(50, dtype=np.int64), 50, 20)
    assert alpha_a == alpha_b  # the held-out ids never choose the smoothing
    pattern = np.tile(np.arange(20), 30)  # a bigram predicts this perfectly after training on it
    e, _ = bigram_baseline(pattern, pattern[:100], 99, 20)
    u = unigram_baseline(pattern, pattern[:100], 99, 20)
    assert e.loss < 0.2 < math.log(20) - 0.1 < u.loss


def test_lr_schedule_warms_up_then_decays() -> None:
    rates = [lr_at(s, 100, 1.0, warmup=10) for s in range(100)]
    assert rates[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert all(x >= y for x, y in itertools.pairwise(rates[10:]))
    assert rates[10] == pytest.approx(1.0) and rates[-1] == pytest.approx(0.1)


def test_adamw_decays_matrices_only() -> None:
    params = {"h.0.mlp.c_fc.w": np.ones(3), "h.0.ln_1.g": np.ones(3), "h.0.ln_1.b": np.ones(3)}
    grads = {k: np.zeros(3) for k in params}
    opt = AdamW(weight_decay=0.5)
    opt.step(params, grads, lr=0.1)
    assert params["h.0.mlp.c_fc.w"].tolist() == pytest.approx([0.95] * 3)
    assert params["h.0.ln_1.g"].tolist() == [1.0] * 3 and params["h.0.ln_1.b"].tolist() == [1.0] * 3
    assert decays("wte") and decays("lm_head.w") and not decays("ln_f.g")


def test_clipping_keeps_direction() -> None:
    g = {"a": np.array([30.0, 40.0]), "b": np.array([0.0])}
    assert clip_grad_norm(g, 5.0) == pytest.approx(50.0)
    assert g["a"].tolist() == pytest.approx([3.0, 4.0])
    small = {"a": np.array([0.3, 0.4])}
    clip_grad_norm(small, 5.0)
    assert small["a"].tolist() == [0.3, 0.4]


def test_blas_threads_sets_and_restores() -> None:
    if blas_thread_control() != "openblas":
        pytest.skip(f"thread control here is {blas_thread_control()!r}, not the ctypes route")
    api = _openblas()
    assert api is not None
    _, getter = api
    before = getter()
    with blas_threads(1):
        assert getter() == 1
    assert getter() == before
    with pytest.raises(ValueError, match="threads"):
        with blas_threads(0):
            pass


# ---------------------------------------------------------------------------------------------
# Model files


def test_model_file_records_the_tokenizer(tmp_path: os.PathLike[str]) -> None:
    tok = tokforge.train([TEXT[:20000]], 300, progress=False)
    model = Transformer(Config(vocab_size=tok.n_vocab, d_model=16, n_layers=1, n_heads=2), 0)
    path = os.path.join(tmp_path, "m.npz")
    save_trained(path, model.params, model.config, tok.to_json_bytes(), {"tokenizer": "bpe:300"})
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind
    loaded = load_trained(path)
    assert loaded.info == {"tokenizer": "bpe:300"}
    assert loaded.tokenizer_json == tok.to_json_bytes()
    again = tokforge.Tokenizer.from_json_bytes(loaded.tokenizer_json)
    assert again.encode("The cat sat on the mat.") == tok.encode("The cat sat on the mat.")
    params, config = load_npz(path)  # the older reader skips the metadata entries
    assert config == model.config
    np.testing.assert_array_equal(params["wte"], model.params["wte"])
    old = os.path.join(tmp_path, "old.npz")
    save_npz(old, model.params, model.config)  # a file from before tokenizers were recorded
    assert load_trained(old).tokenizer_json is None


def test_load_trained_rejects_other_files(tmp_path: os.PathLike[str]) -> None:
    bad = os.path.join(tmp_path, "x.npz")
    np.savez(bad, a=np.zeros(3))
    with pytest.raises(ValueError, match=r"not a tokforge\.nn model"):
        load_trained(bad)
    text = os.path.join(tmp_path, "t.npz")
    with open(text, "w") as f:
        f.write("hello")
    with pytest.raises(ValueError, match=r"not a \.npz model"):
        load_trained(text)


# ---------------------------------------------------------------------------------------------
# Commands


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tokforge")
    nn_commands.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


TINY = ["--steps", "12", "--d-model", "16", "--layers", "1", "--heads", "2", "--seq-len", "32",
        "--batch-size", "4", "--quiet"]  # fmt: skip


@pytest.fixture
def corpus(tmp_path: os.PathLike[str]) -> str:
    path = os.path.join(tmp_path, "corpus.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(TEXT[:24000])
    return path


def test_train_then_eval_model(
    corpus: str, tmp_path: os.PathLike[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = os.path.join(tmp_path, "model.npz")
    assert run(["train-model", corpus, "--tokenizer", "bpe:300", "-o", out, *TINY]) == 0
    printed = capsys.readouterr().out
    for word in ("unigram", "bigram", "model", "greedy continuation", "wrote"):
        assert word in printed
    trained = load_trained(out)
    assert trained.info["tokenizer"] == "bpe:300" and trained.info["steps"] == 12
    assert trained.tokenizer_json is not None
    tok = tokforge.Tokenizer.from_json_bytes(trained.tokenizer_json)
    train_text, held = nn_commands.split_corpus(TEXT[:24000], 0.1)
    assert tok.encode(held) == nn_commands.get_tokenizer("bpe:300", train_text).encode(held)

    held_path = os.path.join(tmp_path, "held.txt")
    with open(held_path, "w", encoding="utf-8") as f:
        f.write(held)
    assert run(["eval-model", out, held_path, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"loss", "perplexity", "bits_per_byte"}
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))
    assert result["bits_per_byte"] == pytest.approx(
        result["loss"] * result["n_tokens"] / (result["n_bytes"] * math.log(2))
    )
    # train-model scored the same held-out text with the same model: the same numbers
    assert trained.info["held_out"]["loss"] == pytest.approx(result["loss"], rel=1e-6)
    model = nn_commands.load_trained_model(out)
    assert model.generate("The", 3, temperature=0).text is not None
    assert run(["eval-model", out, held_path]) == 0
    assert "bits per byte" in capsys.readouterr().out


@pytest.mark.slow
def test_compare_vocabs_prints_a_table_and_draws(
    corpus: str, tmp_path: os.PathLike[str], capsys: pytest.CaptureFixture[str]
) -> None:
    require_module("matplotlib")
    plot = os.path.join(tmp_path, "bpb.png")
    argv = ["compare-vocabs", corpus, "--tokenizer", "bpe:256", "--tokenizer", "bpe:400"]
    assert run([*argv, *TINY, "--plot", plot]) == 0
    printed = capsys.readouterr().out
    rows = [line.split() for line in printed.splitlines() if line.startswith("bpe:")]
    assert [r[0] for r in rows] == ["bpe:256", "bpe:400"]
    assert [int(r[1]) for r in rows] == [256, 400]
    assert int(rows[0][3]) == 256 * 16 and int(rows[1][3]) == 400 * 16  # wte (tied head)
    with open(plot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["bpb.png", "corpus.txt"]
    assert run([*argv, *TINY, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["n_vocab"] for d in data] == [256, 400]
    # bytes per token: 1 for plain bytes, more once merges exist
    assert data[0]["bytes_per_token"] == pytest.approx(1.0)
    assert data[1]["bytes_per_token"] > 1.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train-model", "MISSING", "--tokenizer", "bpe:300", "-o", "x.npz"], "cannot read"),
        (["train-model", "CORPUS", "--tokenizer", "bpe:x", "-o", "x.npz"], "bpe:N"),
        (["train-model", "CORPUS", "--tokenizer", "nope", "-o", "x.npz"], "neither a known"),
        (["eval-model", "CORPUS", "CORPUS"], "not a .npz model"),
        (["compare-vocabs", "CORPUS", "--tokenizer", "bpe:300"], "two or more"),
        (
            ["train-model", "CORPUS", "--tokenizer", "bpe:300", "-o", "x.npz", "--val-fraction=2"],
            "val-fraction",
        ),
    ],
)
def test_command_errors_are_one_line(
    argv: list[str],
    message: str,
    corpus: str,
    tmp_path: os.PathLike[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [corpus if a == "CORPUS" else os.path.join(tmp_path, a) if a.endswith(".npz")
            else a for a in argv]  # fmt: skip
    assert run(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("tokforge ") and message in err and err.count("\n") == 1
