"""The hand-written backward pass of tokforge.nn against central finite differences (float64).

Finite differences are the oracle: for every parameter tensor the analytic gradient must match
``(L(w + h) - L(w - h)) / 2h`` entry by entry, to a relative error (norm of the difference over
the norms) below 1e-6, for each positional kind, MHA/GQA/MQA, tied and untied heads, both norm
placements and both GELUs. The weights are scaled up and every tensor is perturbed, so attention
is far from uniform and gains and biases are not at their initial 1 and 0.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from tokforge.nn import Config, backward, forward, init_params
from tokforge.nn.model import Params
from tokforge.nn.weights import flatten_params

IDS = np.array([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 0, 1]])
TARGETS = np.array([[2, 3, 4, 5, 6, 7], [8, 9, 10, 0, 1, 1]])


def noisy(config: Config, seed: int) -> Params:
    params = init_params(config, seed)
    rng = np.random.default_rng(seed)
    for name, value in flatten_params(params).items():
        scale = 20.0 if name.endswith(".w") or name in ("wte", "wpe") else 1.0
        value[...] = value * scale + 0.1 * rng.standard_normal(value.shape)
    return params


def tiny(**kw: object) -> Config:
    base: dict[str, object] = {
        "vocab_size": 11, "d_model": 8, "n_layers": 2, "n_heads": 4, "d_ff": 12,
        "max_seq_len": 8,
    }  # fmt: skip
    base.update(kw)
    return Config(**base)  # type: ignore[arg-type]


def finite_difference(params: Params, config: Config, h: float = 1e-5) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, value in flatten_params(params).items():
        num = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            old = value[i]
            value[i] = old + h
            up = backward.loss(params, config, IDS, TARGETS)
            value[i] = old - h
            down = backward.loss(params, config, IDS, TARGETS)
            value[i] = old
            num[i] = (up - down) / (2 * h)
        out[name] = num
    return out


CASES = [
    *(
        {"positional": pos, "n_kv_heads": kv, "tie_embeddings": tie}
        for pos, kv, tie in itertools.product(
            ["learned", "sinusoidal", "rope", "none"], [4, 2, 1], [True, False]
        )
    ),
    {"norm": "post", "positional": "rope", "n_kv_heads": 2},
    {"norm": "post", "positional": "learned", "tie_embeddings": False},
    {"activation": "gelu", "positional": "rope", "n_kv_heads": 1},
    {"activation": "gelu", "norm": "post", "positional": "sinusoidal"},
]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_gradient_matches_finite_differences(kw: dict[str, object]) -> None:
    config = tiny(**kw)
    params = noisy(config, seed=1)
    value, grads = backward.grad(params, config, IDS, TARGETS)
    analytic = flatten_params(grads)
    numeric = finite_difference(params, config)
    assert list(analytic) == list(numeric)  # same tensors, same nesting order
    for name, num in numeric.items():
        got = analytic[name]
        assert got.shape == num.shape, name
        assert np.linalg.norm(num) > 1e-6, f"{name}: gradient vanishes, check is vacuous"
        rel = np.linalg.norm(got - num) / (np.linalg.norm(got) + np.linalg.norm(num))
        assert rel < 1e-6, f"{name}: relative error {rel:.2e}"
    assert value == backward.loss(params, config, IDS, TARGETS)


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rope", "none"])
@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh"])
def test_logits_equal_model_forward(positional: str, norm: str, activation: str) -> None:
    config = tiny(positional=positional, norm=norm, n_kv_heads=2, activation=activation)
    params = noisy(config, seed=2)
    batched = backward.logits(params, config, IDS)
    for row, ids in zip(batched, IDS, strict=True):
        reference, _ = forward(ids, params, config)
        if activation == "gelu":  # the same operations in the same order: the same bits
            np.testing.assert_array_equal(row, reference)
        else:  # x * x * x here, x**3 in functional.gelu_tanh: an ulp apart
            np.testing.assert_allclose(row, reference, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(backward.logits(params, config, IDS[0]), batched[0])


def test_loss_is_cross_entropy_of_forward_logits() -> None:
    config = tiny(positional="rope", n_kv_heads=1, tie_embeddings=False)
    params = noisy(config, seed=3)
    nll = []
    for ids, targets in zip(IDS, TARGETS, strict=True):
        logits, _ = forward(ids, params, config)  # [n_seq, n_vocab]
        for row, t in zip(logits, targets, strict=True):
            m = row.max()
            nll.append(m + np.log(np.sum(np.exp(row - m))) - row[t])
    assert backward.loss(params, config, IDS, TARGETS) == pytest.approx(np.mean(nll), rel=1e-12)
    # one sequence given as [n_seq] is the same as a batch of one
    assert backward.loss(params, config, IDS[1], TARGETS[1]) == pytest.approx(
        np.mean(nll[6:]), rel=1e-12
    )


def test_float32_stays_float32() -> None:
    config = tiny(positional="sinusoidal", activation="gelu")
    params = init_params(config, 0, dtype=np.float32)
    _, grads = backward.grad(params, config, IDS, TARGETS)
    assert {v.dtype for v in flatten_params(grads).values()} == {np.dtype(np.float32)}


@pytest.mark.parametrize(
    ("ids", "targets", "message"),
    [
        ([[1, 2], [3]], None, "ids must be"),
        ([1, 2, 11], [1, 2, 3], "ids outside"),
        ([1, 2, 3], [1, 2], "targets must be"),
        ([1, 2, 3], [1, -1, 3], "targets outside"),
        (list(range(9)), list(range(9)), "exceeds max_seq_len"),
    ],
)
def test_bad_batches_name_the_problem(ids: object, targets: object, message: str) -> None:
    config = tiny()
    with pytest.raises(ValueError, match=message):
        backward.loss(init_params(config), config, ids, targets if targets is not None else ids)


def test_against_torch_autograd() -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed; finite differences "
                                "remain the oracle")  # fmt: skip
    config = tiny(positional="rope", n_kv_heads=2)
    params = noisy(config, seed=4)
    flat = flatten_params(params)
    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in flat.items()}
    c, d, hd = config, config.d_model, config.head_dim
    n_kv = c.n_kv_heads or c.n_heads
    ids = torch.tensor(IDS)
    n_seq = IDS.shape[1]
    inv = 1.0 / c.rope_base ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(n_seq, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cos(ang), torch.sin(ang)

    def rot(x: object) -> object:
        x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]  # type: ignore[index]
        return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], -1)

    F = torch.nn.functional
    x = leaves["wte"][ids]
    for i in range(c.n_layers):
        p = {k[len(f"h.{i}.") :]: v for k, v in leaves.items() if k.startswith(f"h.{i}.")}
        h = F.layer_norm(x, (d,), p["ln_1.g"], p["ln_1.b"], c.layer_norm_eps)
        qkv = h @ p["attn.c_attn.w"] + p["attn.c_attn.b"]
        q, k, v = qkv.split([d, n_kv * hd, n_kv * hd], -1)
        b = x.shape[0]
        q = rot(q.view(b, n_seq, c.n_heads, hd).transpose(1, 2))
        k = rot(k.view(b, n_seq, n_kv, hd).transpose(1, 2))
        v = v.view(b, n_seq, n_kv, hd).transpose(1, 2)
        rep = c.n_heads // n_kv
        o = F.scaled_dot_product_attention(
            q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), is_causal=True
        )
        x = x + o.transpose(1, 2).reshape(b, n_seq, d) @ p["attn.c_proj.w"] + p["attn.c_proj.b"]
        h = F.layer_norm(x, (d,), p["ln_2.g"], p["ln_2.b"], c.layer_norm_eps)
        h = F.gelu(h @ p["mlp.c_fc.w"] + p["mlp.c_fc.b"], approximate="tanh")
        x = x + h @ p["mlp.c_proj.w"] + p["mlp.c_proj.b"]
    x = F.layer_norm(x, (d,), leaves["ln_f.g"], leaves["ln_f.b"], c.layer_norm_eps)
    logits = x @ leaves["wte"].T
    loss_t = F.cross_entropy(logits.reshape(-1, c.vocab_size), torch.tensor(TARGETS).reshape(-1))
    loss_t.backward()
    value, grads = backward.grad(params, config, IDS, TARGETS)
    assert value == pytest.approx(loss_t.item(), rel=1e-10)
    for name, g in flatten_params(grads).items():
        np.testing.assert_allclose(g, leaves[name].grad.numpy(), rtol=1e-7, atol=1e-10)
