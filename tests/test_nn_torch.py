"""Cross-check tokforge.nn against PyTorch on the same random weights (to 1e-5).

Runs only where torch is installed (``pip install torch``); the transformers comparison also
needs ``transformers``. Nothing is downloaded: GPT-2 is built from a config and given our weights.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import optional_module, require_module
from tokforge.nn import Config, Transformer, weights

torch = optional_module(
    "torch", "torch is not in the test extras (see OPTIONAL_ORACLES in conftest.py)"
)
TF = optional_module("torch.nn.functional", "torch is not installed")

IDS = [3, 14, 15, 9, 26, 5, 35, 8, 9, 7]


def noisy(config: Config, seed: int) -> Transformer:
    """Random weights with every tensor perturbed (gains and biases too), at a scale where
    attention is far from uniform."""
    model = Transformer(config, seed=seed)
    rng = np.random.default_rng(seed)
    flat = {
        k: (v * 20 if k.endswith(".w") or k in ("wte", "wpe") else v)
        + 0.1 * rng.standard_normal(v.shape)
        for k, v in weights.flatten_params(model.params).items()
    }
    return Transformer(config, params=weights.unflatten_params(flat))


def torch_forward(model: Transformer, ids: list[int]) -> np.ndarray:
    """The same decoder written with torch.nn.functional ops, independently of tokforge.nn."""
    c, p = model.config, model.params

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a, dtype=np.float64))

    n, d, hd = len(ids), c.d_model, c.head_dim
    n_kv = c.n_kv_heads or c.n_heads
    pos = torch.arange(n, dtype=torch.float64)
    x = t(p["wte"])[torch.tensor(ids)]
    if c.positional == "learned":
        x = x + t(p["wpe"])[:n]
    elif c.positional == "sinusoidal":
        angle = pos[:, None] * 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
        pe = torch.zeros(n, d, dtype=torch.float64)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(angle), torch.cos(angle)
        x = x + pe
    if c.positional == "rope":  # the "rotate half" form as transformers' LLaMA writes it
        inv = c.rope_base ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
        angle = torch.cat([pos[:, None] * inv, pos[:, None] * inv], dim=-1)
        cos, sin = torch.cos(angle), torch.sin(angle)

        def rotate(z: torch.Tensor) -> torch.Tensor:
            half = z.shape[-1] // 2
            return z * cos + torch.cat([-z[..., half:], z[..., :half]], dim=-1) * sin

    def layer_norm(z: torch.Tensor, ln: dict) -> torch.Tensor:
        return TF.layer_norm(z, (d,), t(ln["g"]), t(ln["b"]), c.layer_norm_eps)

    def attn(z: torch.Tensor, a: dict) -> torch.Tensor:
        qkv = TF.linear(z, t(a["c_attn"]["w"]).T, t(a["c_attn"]["b"]))
        q, k, v = qkv.split([d, n_kv * hd, n_kv * hd], dim=-1)
        q = q.reshape(n, c.n_heads, hd).transpose(0, 1)
        k = k.reshape(n, n_kv, hd).transpose(0, 1)
        v = v.reshape(n, n_kv, hd).transpose(0, 1)
        if c.positional == "rope":
            q, k = rotate(q), rotate(k)
        k = k.repeat_interleave(c.n_heads // n_kv, dim=0)
        v = v.repeat_interleave(c.n_heads // n_kv, dim=0)
        o = TF.scaled_dot_product_attention(q, k, v, is_causal=True)
        o = o.transpose(0, 1).reshape(n, d)
        return TF.linear(o, t(a["c_proj"]["w"]).T, t(a["c_proj"]["b"]))

    def mlp(z: torch.Tensor, m: dict) -> torch.Tensor:
        approximate = "tanh" if c.activation == "gelu_tanh" else "none"
        h = TF.gelu(TF.linear(z, t(m["c_fc"]["w"]).T, t(m["c_fc"]["b"])), approximate=approximate)
        return TF.linear(h, t(m["c_proj"]["w"]).T, t(m["c_proj"]["b"]))

    for blk in p["h"]:
        if c.norm == "pre":
            x = x + attn(layer_norm(x, blk["ln_1"]), blk["attn"])
            x = x + mlp(layer_norm(x, blk["ln_2"]), blk["mlp"])
        else:
            x = layer_norm(x + attn(x, blk["attn"]), blk["ln_1"])
            x = layer_norm(x + mlp(x, blk["mlp"]), blk["ln_2"])
    if c.norm == "pre":
        x = layer_norm(x, p["ln_f"])
    head = p["wte"] if c.tie_embeddings else p["lm_head"]["w"]
    return (x @ t(head).T).numpy()


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"activation": "gelu_tanh"},
        {"positional": "sinusoidal", "norm": "post"},
        {"positional": "rope", "n_kv_heads": 2, "tie_embeddings": False},
        {"positional": "rope", "n_kv_heads": 1},
    ],
    ids=["gpt2-like", "tanh", "sinusoidal-post", "rope-gqa-untied", "rope-mqa"],
)
def test_logits_match_torch_functional(overrides: dict[str, object]) -> None:
    shape = {"vocab_size": 50, "d_model": 32, "n_layers": 2, "n_heads": 4, "max_seq_len": 16}
    config = Config(**shape, **overrides)  # type: ignore[arg-type]
    model = noisy(config, seed=1)
    np.testing.assert_allclose(model.forward(IDS), torch_forward(model, IDS), rtol=1e-5, atol=1e-5)


def test_logits_match_transformers_gpt2() -> None:
    transformers = require_module("transformers")
    config = Config(vocab_size=50, d_model=32, n_layers=2, n_heads=4, max_seq_len=16,
                    activation="gelu_tanh")  # fmt: skip
    model = noisy(config, seed=2)
    hf_config = transformers.GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.max_seq_len,
        n_embd=config.d_model,
        n_layer=config.n_layers,
        n_head=config.n_heads,
        n_inner=config.d_ff,
        activation_function="gelu_new",
        layer_norm_epsilon=config.layer_norm_eps,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    gpt2 = transformers.GPT2LMHeadModel(hf_config).double().eval()
    state = {
        f"transformer.{name}": torch.from_numpy(np.ascontiguousarray(value))
        for name, value in weights.to_gpt2_names(model.params).items()
    }
    missing, unexpected = gpt2.load_state_dict(state, strict=False)
    assert not unexpected
    # Only the tied head and the causal-mask buffers may be absent from our weights.
    assert all(k == "lm_head.weight" or k.endswith((".attn.bias", ".attn.masked_bias"))
               for k in missing)  # fmt: skip
    with torch.no_grad():
        logits = gpt2(torch.tensor([IDS])).logits[0].numpy()
    np.testing.assert_allclose(model.forward(IDS), logits, rtol=1e-5, atol=1e-5)
