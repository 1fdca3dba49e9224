"""tokforge.nn: textbook numbers, properties of attention and positions, sampling, generation.

Every test here needs only NumPy. The expected numbers in the textbook tests come from the
worked examples the issue quotes (3-token attention, 4-logit softmax), not from running the code.
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import math

import numpy as np
import pytest
from tokforge import nn
from tokforge.nn import Config, Transformer, attention, sampling_distribution, softmax
from tokforge.nn import functional as F

# ---------------------------------------------------------------------------------------------
# Helpers


def lively(model: Transformer, scale: float = 25.0, seed: int = 1) -> Transformer:
    """The same model with larger, noisier weights, LayerNorm gains and biases included.

    GPT-2's init (std 0.02) makes a random model's outputs nearly uniform, which would let a
    broken mask or cache slip through; scaled weights make every position matter.
    """
    rng = np.random.default_rng(seed)
    flat = nn.weights.flatten_params(model.params)
    bumped = {
        name: value * scale if name.endswith(".w") or name in ("wte", "wpe") else value
        for name, value in flat.items()
    }
    bumped = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in bumped.items()}
    params = nn.weights.unflatten_params(bumped)
    return Transformer(model.config, params=params, tokenizer=model.tokenizer)


def small(**overrides: object) -> Config:
    fields: dict[str, object] = {
        "vocab_size": 61, "d_model": 24, "n_layers": 2, "n_heads": 4, "max_seq_len": 40,
    }  # fmt: skip
    fields.update(overrides)
    return Config(**fields)  # type: ignore[arg-type]


VARIANTS = [
    {"positional": "learned"},
    {"positional": "sinusoidal"},
    {"positional": "rope"},
    {"positional": "none"},
    {"norm": "post"},
    {"activation": "gelu_tanh", "tie_embeddings": False},
    {"n_kv_heads": 2},
    {"n_kv_heads": 1, "positional": "rope"},
]


class ByteTokenizer:
    """A tiny stand-in for tokforge.Tokenizer: bytes are ids 0-255, <|endoftext|> is 256."""

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


# ---------------------------------------------------------------------------------------------
# Textbook attention: the 3-token example

Q = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]], dtype=np.float64)
K = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]], dtype=np.float64)
V = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]], dtype=np.float64)


def test_textbook_scaled_scores() -> None:
    scores = F.attention_scores(Q, K)
    np.testing.assert_allclose(scores, [[0.5, 0.5, 1.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.5]])


def test_textbook_weights_round_to_the_printed_table() -> None:
    _, weights = attention(Q, K, V, causal=False)
    expected = [[0.27, 0.27, 0.45], [0.38, 0.38, 0.23], [0.51, 0.19, 0.31]]
    np.testing.assert_allclose(weights, expected, atol=0.005)
    assert np.round(weights, 2).tolist() == expected
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=0, atol=1e-15)


def test_textbook_output_row_0() -> None:
    out, weights = attention(Q, K, V, causal=False)
    np.testing.assert_allclose(out[0], [0.726, 0.726, 0.274, 0.274], atol=5e-4)
    # Exactly: w0 = (e^.5, e^.5, e) / (2 e^.5 + e); out[0, 0] = w00 + w02.
    e = math.exp
    total = 2 * e(0.5) + e(1.0)
    assert out[0, 0] == pytest.approx((e(0.5) + e(1.0)) / total, abs=1e-15)
    # A textbook that adds the rounded weights 0.27 + 0.45 prints 0.72, not 0.726.
    rounded = np.round(weights[0], 2)
    assert rounded[0] + rounded[2] == pytest.approx(0.72)
    assert round(float(out[0, 0]), 3) == 0.726


def test_causal_mask_hides_the_future() -> None:
    out, weights = attention(Q, K, V, causal=True)
    assert weights[0].tolist() == [1.0, 0.0, 0.0]
    np.testing.assert_allclose(weights[1], [0.5, 0.5, 0.0])  # scores 0.5 and 0.5: a tie
    np.testing.assert_allclose(out[0], V[0])
    # The last query sees everything, so its row equals the unmasked one.
    _, free = attention(Q, K, V, causal=False)
    np.testing.assert_allclose(weights[2], free[2])


def test_causal_mask_for_cached_queries() -> None:
    assert F.causal_mask(1, 4).tolist() == [[True, True, True, True]]
    assert F.causal_mask(3, 3).astype(int).tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]


# ---------------------------------------------------------------------------------------------
# Textbook softmax and sampling: logits [2, 1, 0.5, 0]

LOGITS = np.array([2.0, 1.0, 0.5, 0.0])


@pytest.mark.parametrize(
    ("temperature", "expected"),
    [
        (1.0, [0.58, 0.21, 0.13, 0.08]),
        (0.5, [0.83, 0.11, 0.04, 0.02]),
        (2.0, [0.41, 0.25, 0.19, 0.15]),
    ],
)
def test_softmax_with_temperature(temperature: float, expected: list[float]) -> None:
    p = softmax(LOGITS, temperature=temperature)
    assert np.round(p, 2).tolist() == expected
    assert p.sum() == pytest.approx(1.0, abs=1e-15)


def test_softmax_is_stable_and_respects_minus_inf() -> None:
    p = softmax(np.array([1000.0, 1001.0, -np.inf]))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, [1 / (1 + math.e), math.e / (1 + math.e), 0.0])
    assert p[2] == 0.0
    with pytest.raises(ValueError, match="temperature"):
        softmax(LOGITS, temperature=0.0)


def test_top_k_2() -> None:
    p = sampling_distribution(LOGITS, top_k=2)
    assert np.round(p[:2], 2).tolist() == [0.73, 0.27]
    assert p[2:].tolist() == [0.0, 0.0]
    assert p[0] == pytest.approx(math.e / (math.e + 1))


@pytest.mark.parametrize(("top_p", "kept"), [(0.7, 2), (0.95, 4), (0.5, 1), (1.0, 4)])
def test_top_p_keeps_the_smallest_nucleus(top_p: float, kept: int) -> None:
    p = sampling_distribution(LOGITS, top_p=top_p)
    assert np.count_nonzero(p) == kept
    assert np.flatnonzero(p).tolist() == list(range(kept))  # always the likeliest ones
    assert p.sum() == pytest.approx(1.0)


def test_temperature_top_k_and_top_p_combined() -> None:
    # T=2: [0.41, 0.25, 0.19, 0.15]; top-k=3 renormalises to [0.48, 0.29, 0.22]; the running
    # total passes 0.7 at the second token, so the nucleus is {0, 1}: e^1 : e^0.5.
    p = sampling_distribution(LOGITS, temperature=2.0, top_k=3, top_p=0.7)
    expected = math.e / (math.e + math.exp(0.5))
    np.testing.assert_allclose(p, [expected, 1 - expected, 0.0, 0.0])
    assert np.round(p, 2).tolist() == [0.62, 0.38, 0.0, 0.0]


def test_greedy_is_temperature_zero() -> None:
    assert sampling_distribution(LOGITS, temperature=0).tolist() == [1.0, 0.0, 0.0, 0.0]
    assert nn.greedy(np.array([0.0, 5.0, 5.0])) == 1  # ties: smallest id
    rng = np.random.default_rng(0)
    assert all(nn.sample_token(LOGITS, rng, temperature=0) == 0 for _ in range(20))


def test_top_k_ties_go_to_the_smaller_id() -> None:
    p = sampling_distribution(np.array([1.0, 3.0, 3.0, 3.0]), top_k=2)
    assert np.flatnonzero(p).tolist() == [1, 2]


@pytest.mark.parametrize(
    "kwargs",
    [{"temperature": -1.0}, {"top_k": 0}, {"top_p": 0.0}, {"top_p": 1.5}],
)
def test_sampling_rejects_bad_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        sampling_distribution(LOGITS, **kwargs)  # type: ignore[arg-type]


def test_seeded_sampling_is_reproducible_and_follows_the_distribution() -> None:
    draws = [nn.sample_token(LOGITS, np.random.default_rng(7)) for _ in range(3)]
    assert len(set(draws)) == 1  # same seed, same draw
    rng = np.random.default_rng(123)
    counts = np.bincount([nn.sample_token(LOGITS, rng, top_k=2) for _ in range(20000)], minlength=4)
    assert counts[2] == counts[3] == 0  # filtered tokens are never drawn
    np.testing.assert_allclose(counts[:2] / 20000, [0.731, 0.269], atol=0.015)


def test_sample_never_draws_a_zero_probability_token() -> None:
    rng = np.random.default_rng(0)
    probs = np.array([0.0, 0.5, 0.0, 0.5, 0.0])
    assert set(nn.sample(probs, rng) for _ in range(500)) == {1, 3}


# ---------------------------------------------------------------------------------------------
# Functional pieces checked by hand


def test_sinusoidal_positions_by_hand() -> None:
    pe = F.sinusoidal_positions(np.arange(3), 4)
    # Columns: sin(p), cos(p), sin(p / 100), cos(p / 100) for d_model = 4.
    expected = [[math.sin(p), math.cos(p), math.sin(p / 100), math.cos(p / 100)] for p in range(3)]
    np.testing.assert_allclose(pe, expected, rtol=0, atol=1e-15)


def test_layer_norm_by_hand() -> None:
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    y = F.layer_norm(x, np.ones(4), np.zeros(4), eps=0.0)
    sd = math.sqrt(1.25)  # variance of 1..4 about 2.5 is (2.25 + .25 + .25 + 2.25) / 4
    np.testing.assert_allclose(y, [[-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd]])
    y = F.layer_norm(x, np.full(4, 2.0), np.full(4, 1.0), eps=0.0)
    np.testing.assert_allclose(y.mean(), 1.0)


def test_erf_and_gelu_against_the_standard_library() -> None:
    xs = np.linspace(-9, 9, 3601)
    expected = np.array([math.erf(x) for x in xs])
    np.testing.assert_allclose(nn.erf(xs), expected, rtol=0, atol=2e-15)
    phi = np.array([0.5 * (1 + math.erf(x / math.sqrt(2))) for x in xs])
    np.testing.assert_allclose(nn.gelu(xs), xs * phi, rtol=0, atol=1e-14)
    # The tanh form stays within 1e-3 of the exact one (it is an approximation).
    assert np.max(np.abs(nn.gelu_tanh(xs) - nn.gelu(xs))) < 1e-3
    assert nn.gelu(np.array(1.0)) == pytest.approx(0.8413447460685429, abs=1e-15)


def test_split_and_merge_heads_are_inverse() -> None:
    x = np.arange(24.0).reshape(3, 8)
    heads = F.split_heads(x, 4)
    assert heads.shape == (4, 3, 2)
    assert heads[1, 2].tolist() == [18.0, 19.0]  # head 1 holds columns 2-3
    np.testing.assert_array_equal(F.merge_heads(heads), x)


# ---------------------------------------------------------------------------------------------
# Properties


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={v[k]}" for k in v))
def test_changing_a_later_token_never_changes_earlier_logits(variant: dict[str, object]) -> None:
    model = lively(Transformer(small(**variant), seed=3))
    ids = [5, 17, 3, 42, 8, 30, 11]
    base = model.forward(ids)
    changed = model.forward([*ids[:4], 60, 0, 59])
    np.testing.assert_allclose(changed[:4], base[:4], rtol=1e-12, atol=1e-12)
    assert not np.allclose(changed[4:], base[4:])  # the later rows do see the change


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={v[k]}" for k in v))
def test_cached_steps_equal_the_full_forward_pass(variant: dict[str, object]) -> None:
    model = lively(Transformer(small(**variant), seed=4))
    ids = [1, 9, 33, 2, 57, 14, 6, 21]
    full = model.forward(ids)
    logits, past = model.step(ids[:3])  # a prompt of 3, then one token at a time
    rows = [logits]
    for token in ids[3:]:
        logits, past = model.step([token], past)
        rows.append(logits)
    np.testing.assert_allclose(np.stack(rows), full[2:], rtol=1e-10, atol=1e-10)
    assert past[0][0].shape == (model.config.n_kv_heads, len(ids), model.config.head_dim)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={v[k]}" for k in v))
def test_generation_with_cache_equals_recomputing(variant: dict[str, object]) -> None:
    model = lively(Transformer(small(**variant), seed=5), scale=5.0)
    for kwargs in ({"temperature": 0}, {"temperature": 0.9, "top_k": 20, "top_p": 0.9}):
        cached = model.generate([4, 8, 15], 20, seed=11, use_cache=True, **kwargs)
        fresh = model.generate([4, 8, 15], 20, seed=11, use_cache=False, **kwargs)
        assert cached == fresh
        assert len(cached) == 20


def reference_mha(x: np.ndarray, attn: dict, n_head: int) -> np.ndarray:
    """Multi-head attention the slow textbook way: one head at a time, then concat and W_O."""
    d_model = x.shape[1]
    d_head = d_model // n_head
    w, b = attn["c_attn"]["w"], attn["c_attn"]["b"]
    wq, wk, wv = w[:, :d_model], w[:, d_model : 2 * d_model], w[:, 2 * d_model :]
    bq, bk, bv = b[:d_model], b[d_model : 2 * d_model], b[2 * d_model :]
    outputs = []
    for h in range(n_head):
        cols = slice(h * d_head, (h + 1) * d_head)
        q = x @ wq[:, cols] + bq[cols]
        k = x @ wk[:, cols] + bk[cols]
        v = x @ wv[:, cols] + bv[cols]
        scores = q @ k.T / math.sqrt(d_head)
        scores[np.triu_indices(len(x), 1)] = -np.inf
        weights = np.exp(scores - scores.max(axis=1, keepdims=True))
        outputs.append(weights / weights.sum(axis=1, keepdims=True) @ v)
    return np.concatenate(outputs, axis=1) @ attn["c_proj"]["w"] + attn["c_proj"]["b"]


def test_gqa_with_as_many_kv_heads_as_heads_is_textbook_mha() -> None:
    model = lively(Transformer(small(n_kv_heads=4), seed=6))
    x = np.random.default_rng(0).standard_normal((6, 24))
    attn = model.params["h"][0]["attn"]
    got, _ = nn.multi_head_attention(x, attn, n_head=4, n_kv_head=4)
    np.testing.assert_allclose(got, reference_mha(x, attn, 4), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n_kv_head", [1, 2])
def test_gqa_equals_mha_with_shared_kv_weights(n_kv_head: int) -> None:
    """GQA with n_kv K/V heads is MHA whose query heads in a group share one K/V projection."""
    d_model, n_head, d_head = 24, 4, 6
    group = n_head // n_kv_head
    gqa = Transformer(small(n_kv_heads=n_kv_head), seed=7)
    attn = lively(gqa).params["h"][0]["attn"]
    w, b = attn["c_attn"]["w"], attn["c_attn"]["b"]
    kv_dim = n_kv_head * d_head

    def repeat_heads(a: np.ndarray) -> np.ndarray:  # [..., n_kv*d_head] -> [..., n_head*d_head]
        heads = np.split(a, n_kv_head, axis=-1)
        return np.concatenate([h for h in heads for _ in range(group)], axis=-1)

    wq, wk, wv = np.split(w, [d_model, d_model + kv_dim], axis=1)
    bq, bk, bv = np.split(b, [d_model, d_model + kv_dim])
    mha = {
        "c_attn": {
            "w": np.concatenate([wq, repeat_heads(wk), repeat_heads(wv)], axis=1),
            "b": np.concatenate([bq, repeat_heads(bk), repeat_heads(bv)]),
        },
        "c_proj": attn["c_proj"],
    }
    x = np.random.default_rng(1).standard_normal((5, d_model))
    got, (k, _) = nn.multi_head_attention(x, attn, n_head, n_kv_head)
    want, _ = nn.multi_head_attention(x, mha, n_head, n_head)
    assert k.shape == (n_kv_head, 5, d_head)  # the cache is smaller: the point of GQA
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(want, reference_mha(x, mha, n_head), rtol=1e-12, atol=1e-12)


def test_rope_scores_depend_only_on_relative_position() -> None:
    rng = np.random.default_rng(2)
    q, k = rng.standard_normal((2, 1, 16))  # one query vector, one key vector

    def score(m: int, n: int) -> float:
        cos_m, sin_m = F.rope_angles(np.array([m]), 16)
        cos_n, sin_n = F.rope_angles(np.array([n]), 16)
        return (F.rope(q, cos_m, sin_m) @ F.rope(k, cos_n, sin_n).T).item()

    for m, n in [(3, 1), (10, 10), (0, 7)]:
        for shift in (1, 5, 100, 1000):
            assert score(m + shift, n + shift) == pytest.approx(score(m, n), rel=1e-9, abs=1e-9)
    assert score(3, 1) != pytest.approx(score(3, 2))  # but the distance itself matters
    # A rotation keeps vector lengths.
    cos, sin = F.rope_angles(np.arange(50), 16)
    rotated = F.rope(np.tile(q, (50, 1)), cos, sin)
    np.testing.assert_allclose(np.linalg.norm(rotated, axis=1), np.linalg.norm(q))


def test_rope_in_the_model_makes_attention_shift_invariant() -> None:
    """Same tokens at positions 0.. and at 7..: with RoPE the attention weights match."""
    model = lively(Transformer(small(positional="rope"), seed=8), scale=4.0)
    ids = [3, 14, 15, 9]
    attn = model.params["h"][0]["attn"]
    x = nn.layer_norm(model.params["wte"][ids], **model.params["h"][0]["ln_1"])

    def weights_from(start: int) -> np.ndarray:
        cos_sin = F.rope_angles(np.arange(start, start + len(ids)), model.config.head_dim)
        seen: dict[str, np.ndarray] = {}
        nn.multi_head_attention(
            x, attn, 4, 4, cos_sin, trace=lambda name, a: seen.setdefault(name, a)
        )
        return seen["attn.weights"]

    np.testing.assert_allclose(weights_from(0), weights_from(7), rtol=1e-9, atol=1e-12)


def test_attention_without_positions_is_permutation_equivariant() -> None:
    rng = np.random.default_rng(3)
    q, k, v = rng.standard_normal((3, 6, 8))
    perm = rng.permutation(6)
    out, w = attention(q, k, v, causal=False)
    out_p, w_p = attention(q[perm], k[perm], v[perm], causal=False)
    np.testing.assert_allclose(out_p, out[perm], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w_p, w[perm][:, perm], rtol=1e-12, atol=1e-12)

    # The same holds for a whole multi-head layer without positions and mask ...
    model = lively(Transformer(small(positional="none"), seed=9))
    attn = model.params["h"][0]["attn"]
    x = rng.standard_normal((6, 24))
    y, _ = nn.multi_head_attention(x, attn, 4, 4, causal=False)
    y_p, _ = nn.multi_head_attention(x[perm], attn, 4, 4, causal=False)
    np.testing.assert_allclose(y_p, y[perm], rtol=1e-12, atol=1e-12)
    # ... and for a whole block.
    cfg = model.config
    block = model.params["h"][1]
    z, _ = nn.block(x, block, cfg, causal=False)
    z_p, _ = nn.block(x[perm], block, cfg, causal=False)
    np.testing.assert_allclose(z_p, z[perm], rtol=1e-12, atol=1e-12)
    # Adding positions is what breaks the symmetry.
    pe = F.sinusoidal_positions(np.arange(6), 24)
    z, _ = nn.block(x + pe, block, cfg, causal=False)
    z_p, _ = nn.block(x[perm] + pe, block, cfg, causal=False)
    assert not np.allclose(z_p, z[perm])


# ---------------------------------------------------------------------------------------------
# Config


def test_config_fills_defaults_and_validates() -> None:
    c = Config(vocab_size=100, d_model=32, n_heads=8)
    assert (c.n_kv_heads, c.d_ff, c.head_dim) == (8, 128, 4)
    assert Config.from_dict(c.to_dict()) == c
    for bad in (
        {"d_model": 30, "n_heads": 4},
        {"n_heads": 4, "n_kv_heads": 3},
        {"positional": "alibi"},
        {"norm": "sandwich"},
        {"activation": "relu"},
        {"eos_id": 100},
        {"n_layers": 0},
        {"d_model": 36, "n_heads": 4, "positional": "rope"},  # odd head width 9
    ):
        with pytest.raises(ValueError):
            Config(**{"vocab_size": 100, **bad})  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.d_model = 8  # type: ignore[misc]


def test_config_from_tokenizer() -> None:
    c = Config.from_tokenizer(ByteTokenizer(), d_model=16)
    assert (c.vocab_size, c.eos_id, c.d_model) == (257, 256, 16)


# ---------------------------------------------------------------------------------------------
# Generation


def test_generate_stops_at_eos() -> None:
    model = lively(Transformer(small(), seed=10), scale=5.0)
    free = model.generate([7, 7, 7], 15, temperature=0, eos_id=None)
    assert free.stop_reason == "max_new_tokens"
    eos = free[3]
    first = free.index(eos)
    stopped = model.generate([7, 7, 7], 15, temperature=0, eos_id=eos)
    assert list(stopped) == list(free[: first + 1])
    assert stopped.stop_reason == "eos"
    # The config's eos_id is the default.
    configured = Transformer(dataclasses.replace(model.config, eos_id=eos), params=model.params)
    assert configured.generate([7, 7, 7], 15, temperature=0) == stopped


def test_generate_stops_at_the_context_length() -> None:
    model = Transformer(small(max_seq_len=8), seed=0)
    out = model.generate([1, 2, 3, 4, 5], 10, temperature=0)
    assert len(out) == 3
    assert out.stop_reason == "max_seq_len"
    assert model.generate([1] * 8, 10).stop_reason == "max_seq_len"
    with pytest.raises(ValueError, match="max_seq_len"):
        model.generate([1] * 9, 1)
    with pytest.raises(ValueError, match="empty"):
        model.generate([], 1)
    with pytest.raises(ValueError, match="outside"):
        model.generate([61], 1)


def test_stream_yields_what_generate_returns() -> None:
    model = lively(Transformer(small(), seed=12), scale=5.0)
    for use_cache in (True, False):
        streamed = list(model.stream([2, 3], 12, top_k=10, seed=5, use_cache=use_cache))
        assert streamed == model.generate([2, 3], 12, top_k=10, seed=5, use_cache=use_cache)
    it = model.stream([2, 3], 5, temperature=0)
    assert next(it) == model.generate([2, 3], 1, temperature=0)[0]
    with pytest.raises(ValueError, match="top_p"):  # raised by the call, before iterating
        model.stream([2, 3], 5, top_p=2.0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.stream([2, 3], -1)


def test_seeds_make_generation_reproducible() -> None:
    model = Transformer(small(), seed=13)
    a = model.generate([1], 30, seed=42)
    assert a == model.generate([1], 30, seed=42)
    assert a != model.generate([1], 30, seed=43)


def test_generate_from_text_with_a_tokenizer() -> None:
    tok = ByteTokenizer()
    model = lively(Transformer(Config.from_tokenizer(tok, d_model=16), tokenizer=tok), scale=5.0)
    out = model.generate("hi", 6, temperature=0, eos_id=None)
    assert out.prompt_ids == [104, 105]
    assert out == model.generate([104, 105], 6, temperature=0, eos_id=None)
    assert out.text == model.decode(list(out))
    assert model.decode([104, 105]) == "hi"
    assert model.encode_prompt("a<|endoftext|>b") == [97, 256, 98]
    with pytest.raises(ValueError, match="tokenizer"):
        Transformer(small()).generate("text", 1)


def test_decode_survives_ids_the_tokenizer_lacks() -> None:
    tok = ByteTokenizer()
    model = Transformer(Config(vocab_size=300, d_model=8, n_heads=2), tokenizer=tok)
    assert model.decode([104, 299, 105]) == "h\ufffdi"
    assert model.decode([0xE2, 0x82, 0xAC]) == "\u20ac"  # bytes of one character across tokens


# ---------------------------------------------------------------------------------------------
# The examples in the docstrings


@pytest.mark.parametrize(
    "module", ["", ".config", ".functional", ".sampling", ".model", ".weights"]
)
def test_docstring_examples_hold(module: str) -> None:
    mod = importlib.import_module("tokforge.nn" + module)
    result = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
