"""Backpropagation by hand: the loss of the transformer and its gradient, layer by layer.

Each layer of :mod:`tokforge.nn.model` has a ``*_forward`` here that computes exactly what the
forward pass computes (same operations in the same order, so in float64 the logits equal
:func:`tokforge.nn.model.forward`'s) and also returns what its backward pass needs, and a
``*_backward`` that takes the gradient of the loss with respect to the layer's output and returns
the gradients with respect to its input and its parameters. The functions are pure and work on a
batch: shapes carry a leading ``n_batch`` (the names of :mod:`tokforge.nn.functional`, plus
``n_batch`` sequences per step and ``n_tok = n_batch * n_seq``).

The chain rule, in the order the backward pass walks it::

    loss = mean_t -log softmax(logits_t)[target_t]    d logits = (softmax - onehot) / n_tok
    logits = x @ head^T                               d x = d logits @ head, d head = d logits^T x
    LayerNorm y = g * x_hat + b                       d x = (d x_hat - mean(d x_hat)
                                                             - x_hat * mean(d x_hat * x_hat)) / std
    block: residuals add gradients; attention and MLP as below
    x = wte[ids] + wpe[positions]                     d wte[id] += d x, d wpe[pos] += d x

Unlike :mod:`tokforge.nn.functional`, nothing here promotes to float64: a float32 model trains in
float32 (positions and RoPE angles are cast to the parameters' dtype). One deliberate difference:
the tanh GELU cubes with ``x * x * x`` where ``functional.gelu_tanh`` writes ``x**3``. NumPy's
``**`` goes through ``pow`` and measured 50 ms against 0.7 ms on a [2048, 512] float32 array,
which made it most of a training step; the two differ by an ulp or so (logits agree to ~1e-15
relative in float64, bit for bit with the exact GELU).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .config import Config, Params
from .functional import causal_mask, erf, rope_angles, sinusoidal_positions

__all__ = [
    "attention_backward",
    "attention_forward",
    "block_backward",
    "block_forward",
    "check_batch",
    "cross_entropy_backward",
    "cross_entropy_forward",
    "embed_backward",
    "embed_forward",
    "ffn_backward",
    "ffn_forward",
    "gelu_backward",
    "grad",
    "layer_norm_backward",
    "layer_norm_forward",
    "linear_backward",
    "logits",
    "loss",
    "loss_and_logits",
    "model_backward",
    "model_forward",
    "rope_backward",
]

Cache = dict[str, Any]
"""What a forward function keeps for its backward pass (inputs, normalised values, weights)."""

_GELU_C = math.sqrt(2.0 / math.pi)


# ---------------------------------------------------------------------------------------------
# Position-wise layers


def linear_backward(
    dy: np.ndarray, x: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Gradients of ``y = x @ w + b``: ``dx = dy @ w^T``, ``dw = x^T dy``, ``db = sum(dy)``."""
    d_in, d_out = w.shape
    x2 = x.reshape(-1, d_in)  # [..., d_in] -> [n_tok, d_in]
    dy2 = dy.reshape(-1, d_out)  # [..., d_out] -> [n_tok, d_out]
    dw = x2.T @ dy2  # [d_in, n_tok] @ [n_tok, d_out] -> [d_in, d_out]
    db = dy2.sum(axis=0)  # [n_tok, d_out] -> [d_out]
    dx = dy @ w.T  # [..., d_out] @ [d_out, d_in] -> [..., d_in]
    return dx, {"w": dw, "b": db}


def layer_norm_forward(
    x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float
) -> tuple[np.ndarray, Cache]:
    """:func:`tokforge.nn.functional.layer_norm`, keeping ``x_hat`` and ``1 / std``."""
    mean = np.mean(x, axis=-1, keepdims=True)  # [..., d_model] -> [..., 1]
    var = np.var(x, axis=-1, keepdims=True)  # [..., d_model] -> [..., 1]
    std = np.sqrt(var + eps)  # [..., 1]
    x_hat = (x - mean) / std  # [..., d_model]
    y = g * x_hat + b  # [d_model] * [..., d_model] + [d_model] -> [..., d_model]
    return y, {"x_hat": x_hat, "std": std, "g": g}


def layer_norm_backward(dy: np.ndarray, cache: Cache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Gradients of LayerNorm. ``x_hat`` depends on every entry of its row through the mean and
    the variance, which gives the two subtracted terms."""
    x_hat, std, g = cache["x_hat"], cache["std"], cache["g"]
    d = x_hat.shape[-1]
    dg = (dy * x_hat).reshape(-1, d).sum(axis=0)  # [..., d_model] -> [d_model]
    db = dy.reshape(-1, d).sum(axis=0)  # [..., d_model] -> [d_model]
    dx_hat = dy * g  # [..., d_model]
    mean_dx_hat = dx_hat.mean(axis=-1, keepdims=True)  # [..., 1]
    mean_dx_hat_x_hat = (dx_hat * x_hat).mean(axis=-1, keepdims=True)  # [..., 1]
    dx = (dx_hat - mean_dx_hat - x_hat * mean_dx_hat_x_hat) / std  # [..., d_model]
    return dx, {"g": dg, "b": db}


def _gelu_forward(x: np.ndarray, activation: str) -> np.ndarray:
    if activation == "gelu_tanh":  # functional.gelu_tanh, with x * x * x for its x**3
        inner = _GELU_C * (x + 0.044715 * (x * x * x))  # [...]
        y: np.ndarray = 0.5 * x * (1.0 + np.tanh(inner))  # [...]
        return y
    # functional.gelu; its erf is float64, cast back so float32 stays float32
    return (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(x.dtype, copy=False)  # [...]


def gelu_backward(dy: np.ndarray, x: np.ndarray, activation: str) -> np.ndarray:
    """Gradient of GELU at ``x``: for the exact one ``Phi(x) + x phi(x)``; for the tanh form
    ``0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 * 0.044715 x^2)`` with ``t = tanh(c (x + ...))``."""
    if activation == "gelu_tanh":
        t = np.tanh(_GELU_C * (x + 0.044715 * (x * x * x)))  # [...]
        slope = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _GELU_C * (1.0 + 3 * 0.044715 * x * x)
    else:
        cdf = 0.5 * (1.0 + erf(x / math.sqrt(2.0)))  # [...], Phi(x) in float64
        pdf = np.exp(-0.5 * x.astype(np.float64) ** 2) / math.sqrt(2.0 * math.pi)  # [...]
        slope = (cdf + x * pdf).astype(x.dtype, copy=False)  # [...]
    dx: np.ndarray = dy * slope  # [...]
    return dx


def ffn_forward(x: np.ndarray, mlp: Params, activation: str) -> tuple[np.ndarray, Cache]:
    """:func:`tokforge.nn.functional.ffn`, keeping its input and hidden layer."""
    pre = x @ mlp["c_fc"]["w"] + mlp["c_fc"]["b"]  # [n_batch, n_seq, d_model] -> [.., d_ff]
    h = _gelu_forward(pre, activation)  # [n_batch, n_seq, d_ff]
    y = h @ mlp["c_proj"]["w"] + mlp["c_proj"]["b"]  # [.., d_ff] -> [n_batch, n_seq, d_model]
    return y, {"x": x, "pre": pre, "h": h}


def ffn_backward(
    dy: np.ndarray, cache: Cache, mlp: Params, activation: str
) -> tuple[np.ndarray, Params]:
    """Gradients of the feed-forward network: back through W2, GELU, W1."""
    dh, g_proj = linear_backward(dy, cache["h"], mlp["c_proj"]["w"])  # -> [.., d_ff]
    dpre = gelu_backward(dh, cache["pre"], activation)  # [n_batch, n_seq, d_ff]
    dx, g_fc = linear_backward(dpre, cache["x"], mlp["c_fc"]["w"])  # -> [.., d_model]
    return dx, {"c_fc": g_fc, "c_proj": g_proj}


# ---------------------------------------------------------------------------------------------
# Attention


def rope_backward(dy: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Gradient of :func:`tokforge.nn.functional.rope`: a rotation's transpose is the rotation
    by the opposite angle, so the gradient is turned back by ``-angle``."""
    half = dy.shape[-1] // 2
    d1, d2 = dy[..., :half], dy[..., half:]  # 2 x [..., n_seq, d_head/2]
    return np.concatenate([d1 * cos + d2 * sin, -d1 * sin + d2 * cos], axis=-1)  # [.., d_head]


def _rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]  # 2 x [..., n_seq, d_head/2]
    return np.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)  # [.., d_head]


def _split(x: np.ndarray, n_head: int) -> np.ndarray:
    n_batch, n_seq, width = x.shape
    x = x.reshape(n_batch, n_seq, n_head, width // n_head)  # -> [n_batch, n_seq, n_head, d_head]
    heads: np.ndarray = x.transpose(0, 2, 1, 3)  # -> [n_batch, n_head, n_seq, d_head]
    return heads


def _merge(x: np.ndarray) -> np.ndarray:
    n_batch, n_head, n_seq, d_head = x.shape
    x = x.transpose(0, 2, 1, 3)  # -> [n_batch, n_seq, n_head, d_head]
    return x.reshape(n_batch, n_seq, n_head * d_head)  # -> [n_batch, n_seq, n_head * d_head]


def attention_forward(
    x: np.ndarray,
    attn: Params,
    config: Config,
    rope_cos_sin: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, Cache]:
    """:func:`tokforge.nn.model.multi_head_attention` (causal, no KV cache) on a batch."""
    n_batch, n_seq, d_model = x.shape
    n_head, n_kv_head, d_head = config.n_heads, config.n_kv_heads or config.n_heads, config.head_dim
    kv_dim, group = n_kv_head * d_head, n_head // n_kv_head

    qkv = x @ attn["c_attn"]["w"] + attn["c_attn"]["b"]  # -> [n_batch, n_seq, d_model+2*kv_dim]
    q, k, v = np.split(qkv, [d_model, d_model + kv_dim], axis=-1)  # [.., d_model], 2x[.., kv_dim]
    q = _split(q, n_head)  # -> [n_batch, n_head, n_seq, d_head]
    k = _split(k, n_kv_head)  # -> [n_batch, n_kv_head, n_seq, d_head]
    v = _split(v, n_kv_head)  # -> [n_batch, n_kv_head, n_seq, d_head]
    if rope_cos_sin is not None:
        q = _rope(q, *rope_cos_sin)  # [n_batch, n_head, n_seq, d_head]
        k = _rope(k, *rope_cos_sin)  # [n_batch, n_kv_head, n_seq, d_head]
    qg = q.reshape(n_batch, n_kv_head, group, n_seq, d_head)  # [n_batch, n_kv_head, group, ..]
    kg, vg = k[:, :, None], v[:, :, None]  # 2 x [n_batch, n_kv_head, 1, n_seq, d_head]
    scores = qg @ np.swapaxes(kg, -1, -2) / math.sqrt(d_head)  # [.., group, n_seq, n_seq]
    scores = np.where(causal_mask(n_seq, n_seq), scores, -np.inf)  # later keys -> -inf
    z = scores - np.max(scores, axis=-1, keepdims=True)  # [.., n_seq, n_seq]
    e = np.exp(z)  # [n_batch, n_kv_head, group, n_seq, n_seq]
    weights = e / np.sum(e, axis=-1, keepdims=True)  # rows sum to 1
    out = weights @ vg  # [.., n_seq, n_seq] @ [.., n_seq, d_head] -> [.., group, n_seq, d_head]
    concat = _merge(out.reshape(n_batch, n_head, n_seq, d_head))  # -> [n_batch, n_seq, d_model]
    y = concat @ attn["c_proj"]["w"] + attn["c_proj"]["b"]  # W_O -> [n_batch, n_seq, d_model]
    cache = {"x": x, "qg": qg, "kg": kg, "vg": vg, "weights": weights, "concat": concat}
    return y, cache


def attention_backward(
    dy: np.ndarray,
    cache: Cache,
    attn: Params,
    config: Config,
    rope_cos_sin: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, Params]:
    """Gradients of causal self-attention. A K/V head serves ``group`` query heads, so its
    gradient is the sum over them; masked weights are exactly 0 and pass no gradient."""
    n_batch, n_seq, _ = dy.shape
    n_head, n_kv_head, d_head = config.n_heads, config.n_kv_heads or config.n_heads, config.head_dim
    group = n_head // n_kv_head
    qg, kg, vg, weights = cache["qg"], cache["kg"], cache["vg"], cache["weights"]

    dconcat, g_proj = linear_backward(dy, cache["concat"], attn["c_proj"]["w"])  # [.., d_model]
    dout = _split(dconcat, n_head).reshape(n_batch, n_kv_head, group, n_seq, d_head)
    #   [n_batch, n_seq, d_model] -> [n_batch, n_kv_head, group, n_seq, d_head]
    dweights = dout @ np.swapaxes(vg, -1, -2)  # [.., n_seq, d_head] @ [.., d_head, n_seq]
    #                                            -> [n_batch, n_kv_head, group, n_seq, n_seq]
    dv = (np.swapaxes(weights, -1, -2) @ dout).sum(axis=2)  # -> [n_batch, n_kv_head, n_seq, d_h]
    dscores = weights * (dweights - np.sum(dweights * weights, axis=-1, keepdims=True))
    #   softmax backward: [n_batch, n_kv_head, group, n_seq, n_seq]
    dscores = dscores / math.sqrt(d_head)  # the 1/sqrt(d_k) scale
    dq = (dscores @ kg).reshape(n_batch, n_head, n_seq, d_head)  # -> [n_batch, n_head, n_seq, dh]
    dk = (np.swapaxes(dscores, -1, -2) @ qg).sum(axis=2)  # -> [n_batch, n_kv_head, n_seq, d_head]
    if rope_cos_sin is not None:
        dq = rope_backward(dq, *rope_cos_sin)  # [n_batch, n_head, n_seq, d_head]
        dk = rope_backward(dk, *rope_cos_sin)  # [n_batch, n_kv_head, n_seq, d_head]
    dqkv = np.concatenate([_merge(dq), _merge(dk), _merge(dv)], axis=-1)
    #   [n_batch, n_seq, d_model] | 2 x [n_batch, n_seq, kv_dim] -> [.., d_model + 2*kv_dim]
    dx, g_attn = linear_backward(dqkv, cache["x"], attn["c_attn"]["w"])  # -> [.., d_model]
    return dx, {"c_attn": g_attn, "c_proj": g_proj}


# ---------------------------------------------------------------------------------------------
# Blocks


def block_forward(
    x: np.ndarray,
    p: Params,
    config: Config,
    rope_cos_sin: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, Cache]:
    """:func:`tokforge.nn.model.block` on a batch, pre-LN or post-LN."""
    eps, act = config.layer_norm_eps, config.activation
    cache: Cache = {}
    if config.norm == "pre":
        h, cache["ln_1"] = layer_norm_forward(x, **p["ln_1"], eps=eps)  # [n_batch, n_seq, d_m]
        a, cache["attn"] = attention_forward(h, p["attn"], config, rope_cos_sin)  # same shape
        x = x + a  # residual: [n_batch, n_seq, d_model]
        h, cache["ln_2"] = layer_norm_forward(x, **p["ln_2"], eps=eps)  # [n_batch, n_seq, d_m]
        m, cache["mlp"] = ffn_forward(h, p["mlp"], act)  # [n_batch, n_seq, d_model]
        x = x + m  # residual: [n_batch, n_seq, d_model]
    else:
        a, cache["attn"] = attention_forward(x, p["attn"], config, rope_cos_sin)  # [.., d_model]
        x, cache["ln_1"] = layer_norm_forward(x + a, **p["ln_1"], eps=eps)  # [.., d_model]
        m, cache["mlp"] = ffn_forward(x, p["mlp"], act)  # [n_batch, n_seq, d_model]
        x, cache["ln_2"] = layer_norm_forward(x + m, **p["ln_2"], eps=eps)  # [.., d_model]
    return x, cache


def block_backward(
    dx: np.ndarray,
    cache: Cache,
    p: Params,
    config: Config,
    rope_cos_sin: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, Params]:
    """Gradients of one block: a residual passes its gradient straight through and adds the
    sub-layer's."""
    act = config.activation
    g: Params = {}
    if config.norm == "pre":
        dm = dx  # x = x + m: both branches get dx, [n_batch, n_seq, d_model]
        dh, g["mlp"] = ffn_backward(dm, cache["mlp"], p["mlp"], act)  # [.., d_model]
        dn, g["ln_2"] = layer_norm_backward(dh, cache["ln_2"])  # [.., d_model]
        dx = dx + dn  # [n_batch, n_seq, d_model]
        dh, g["attn"] = attention_backward(dx, cache["attn"], p["attn"], config, rope_cos_sin)
        dn, g["ln_1"] = layer_norm_backward(dh, cache["ln_1"])  # [.., d_model]
        dx = dx + dn  # [n_batch, n_seq, d_model]
    else:
        dsum, g["ln_2"] = layer_norm_backward(dx, cache["ln_2"])  # d(x + m): [.., d_model]
        dm, g["mlp"] = ffn_backward(dsum, cache["mlp"], p["mlp"], act)  # [.., d_model]
        dx = dsum + dm  # [n_batch, n_seq, d_model]
        dsum, g["ln_1"] = layer_norm_backward(dx, cache["ln_1"])  # d(x + a): [.., d_model]
        da, g["attn"] = attention_backward(dsum, cache["attn"], p["attn"], config, rope_cos_sin)
        dx = dsum + da  # [n_batch, n_seq, d_model]
    return dx, {"ln_1": g["ln_1"], "attn": g["attn"], "ln_2": g["ln_2"], "mlp": g["mlp"]}


# ---------------------------------------------------------------------------------------------
# Embeddings, head and loss


def embed_forward(ids: np.ndarray, params: Params, config: Config) -> np.ndarray:
    """Token embeddings plus learned or sinusoidal positions (RoPE and ``none`` add nothing)."""
    n_seq = ids.shape[-1]
    wte: np.ndarray = params["wte"]
    x: np.ndarray = wte[ids]  # [n_vocab, d_model][n_batch, n_seq] -> [n_batch, n_seq, d_model]
    if config.positional == "learned":
        x = x + params["wpe"][:n_seq]  # + [n_seq, d_model]
    elif config.positional == "sinusoidal":
        pe = sinusoidal_positions(np.arange(n_seq), config.d_model)  # [n_seq, d_model] float64
        x = x + pe.astype(wte.dtype, copy=False)  # + [n_seq, d_model]
    return x  # [n_batch, n_seq, d_model]


def embed_backward(dx: np.ndarray, ids: np.ndarray, params: Params, config: Config) -> Params:
    """Gradients of the embedding lookup: each row of ``dx`` is added to the row of ``wte`` its
    id picked (an id seen twice collects twice), and summed over the batch into ``wpe``."""
    d_model = dx.shape[-1]
    grads: Params = {"wte": np.zeros_like(params["wte"])}  # [n_vocab, d_model]
    np.add.at(grads["wte"], ids.reshape(-1), dx.reshape(-1, d_model))  # scatter-add n_tok rows
    if config.positional == "learned":
        grads["wpe"] = np.zeros_like(params["wpe"])  # [max_seq_len, d_model]
        grads["wpe"][: dx.shape[1]] = dx.sum(axis=0)  # [n_batch, n_seq, d_model] -> [n_seq, d_m]
    return grads


def cross_entropy_forward(logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean of ``-log softmax(logits)[target]`` over all tokens, in nats; also the softmax."""
    z = logits - np.max(logits, axis=-1, keepdims=True)  # [n_batch, n_seq, n_vocab], max is 0
    e = np.exp(z)  # [n_batch, n_seq, n_vocab]
    total = np.sum(e, axis=-1, keepdims=True)  # [n_batch, n_seq, 1]
    log_p = z - np.log(total)  # log softmax: [n_batch, n_seq, n_vocab]
    picked = np.take_along_axis(log_p, targets[..., None], axis=-1)  # [n_batch, n_seq, 1]
    return float(-picked.mean(dtype=np.float64)), e / total  # softmax [n_batch, n_seq, n_vocab]


def cross_entropy_backward(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Gradient of the mean cross-entropy with respect to the logits: ``(p - onehot) / n_tok``."""
    dlogits: np.ndarray = probs.copy()  # [n_batch, n_seq, n_vocab]
    np.put_along_axis(
        dlogits, targets[..., None], np.take_along_axis(probs, targets[..., None], -1) - 1.0, -1
    )  # subtract 1 at each target
    dlogits /= targets.size  # [n_batch, n_seq, n_vocab]
    return dlogits


# ---------------------------------------------------------------------------------------------
# The whole model


def check_batch(
    config: Config, ids: Any, targets: Any = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """``ids`` (and ``targets``) as int64 arrays ``[n_batch, n_seq]``; a ``[n_seq]`` input is
    one sequence. Raises ``ValueError`` naming what is wrong."""
    try:
        a = np.asarray(ids)
    except ValueError:  # ragged nested lists
        a = np.zeros((0, 0), dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]  # [n_seq] -> [1, n_seq]
    if a.ndim != 2 or a.size == 0 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"ids must be a non-empty [n_seq] or [n_batch, n_seq] array of integers,"
                         f" got shape {a.shape} dtype {a.dtype}")  # fmt: skip
    if a.shape[1] > config.max_seq_len:
        raise ValueError(
            f"sequence of {a.shape[1]} tokens exceeds max_seq_len={config.max_seq_len}"
        )
    out = [a.astype(np.int64, copy=False)]
    if targets is not None:
        try:
            t = np.asarray(targets)
        except ValueError:  # ragged nested lists
            t = np.zeros((0, 0), dtype=np.float64)
        t = t[None, :] if t.ndim == 1 else t
        if t.shape != a.shape or not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"targets must be integers shaped like ids {a.shape}, got {t.shape}")
        out.append(t.astype(np.int64, copy=False))
    for name, arr in zip(("ids", "targets"), out, strict=False):
        if arr.min() < 0 or arr.max() >= config.vocab_size:
            raise ValueError(f"{name} outside [0, {config.vocab_size}): min {arr.min()}, "
                             f"max {arr.max()}")  # fmt: skip
    return out[0], (out[1] if len(out) > 1 else None)


def _checked_pair(config: Config, ids: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
    batch, tgt = check_batch(config, ids, targets)
    if tgt is None:
        raise ValueError("targets are required")
    return batch, tgt


def _rope_cos_sin(config: Config, n_seq: int, dtype: Any) -> tuple[np.ndarray, np.ndarray] | None:
    if config.positional != "rope":
        return None
    cos, sin = rope_angles(np.arange(n_seq), config.head_dim, config.rope_base)  # [n_seq, dh/2]
    return cos.astype(dtype, copy=False), sin.astype(dtype, copy=False)


def _head(params: Params, config: Config) -> np.ndarray:
    head: np.ndarray = params["wte"] if config.tie_embeddings else params["lm_head"]["w"]
    return head  # [n_vocab, d_model]


def model_forward(params: Params, config: Config, ids: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Logits ``[n_batch, n_seq, n_vocab]`` for checked ``ids`` ``[n_batch, n_seq]``, and the
    cache of every layer for :func:`model_backward`."""
    dtype = params["wte"].dtype
    rope_cs = _rope_cos_sin(config, ids.shape[1], dtype)  # 2 x [n_seq, d_head/2] or None
    x = embed_forward(ids, params, config)  # [n_batch, n_seq] -> [n_batch, n_seq, d_model]
    blocks: list[Cache] = []
    for p in params["h"]:
        x, c = block_forward(x, p, config, rope_cs)  # [n_batch, n_seq, d_model]
        blocks.append(c)
    cache: Cache = {"ids": ids, "rope": rope_cs, "blocks": blocks}
    if config.norm == "pre":
        x, cache["ln_f"] = layer_norm_forward(x, **params["ln_f"], eps=config.layer_norm_eps)
    cache["x_final"] = x  # [n_batch, n_seq, d_model]
    logits_ = x @ _head(params, config).T  # [.., d_model] @ [d_model, n_vocab] -> [.., n_vocab]
    return logits_, cache


def model_backward(dlogits: np.ndarray, cache: Cache, params: Params, config: Config) -> Params:
    """Gradients of every parameter, given the gradient of the logits; same nesting as params."""
    head = _head(params, config)  # [n_vocab, d_model]
    x = cache["x_final"]  # [n_batch, n_seq, d_model]
    d_model = x.shape[-1]
    dhead = dlogits.reshape(-1, head.shape[0]).T @ x.reshape(-1, d_model)  # -> [n_vocab, d_m]
    dx = dlogits @ head  # [.., n_vocab] @ [n_vocab, d_model] -> [n_batch, n_seq, d_model]
    grads: Params = {}
    if config.norm == "pre":
        dx, grads["ln_f"] = layer_norm_backward(dx, cache["ln_f"])  # [.., d_model]
    block_grads: list[Params] = []
    for p, c in reversed(list(zip(params["h"], cache["blocks"], strict=True))):
        dx, g = block_backward(dx, c, p, config, cache["rope"])  # [n_batch, n_seq, d_model]
        block_grads.append(g)
    emb = embed_backward(dx, cache["ids"], params, config)
    if config.tie_embeddings:
        emb["wte"] += dhead  # the tied table is used twice: its gradients add
    out: Params = {"wte": emb["wte"]}
    if "wpe" in emb:
        out["wpe"] = emb["wpe"]
    out["h"] = block_grads[::-1]
    if "ln_f" in grads:
        out["ln_f"] = grads["ln_f"]
    if not config.tie_embeddings:
        out["lm_head"] = {"w": dhead}
    return out


def logits(params: Params, config: Config, ids: Any) -> np.ndarray:
    """Logits ``[n_batch, n_seq, n_vocab]`` (``[n_seq, n_vocab]`` for 1-D ``ids``), computed by
    the training forward pass; in float64 equal to :func:`tokforge.nn.model.forward`'s."""
    batch, _ = check_batch(config, ids)
    out, _ = model_forward(params, config, batch)
    return out if np.ndim(ids) == 2 else out[0]


def loss_and_logits(
    params: Params, config: Config, ids: Any, targets: Any
) -> tuple[float, np.ndarray]:
    """:func:`loss` and the logits it came from, ``[n_batch, n_seq, n_vocab]``."""
    batch, tgt = _checked_pair(config, ids, targets)
    out, _ = model_forward(params, config, batch)
    value, _ = cross_entropy_forward(out, tgt)
    return value, out


def loss(params: Params, config: Config, ids: Any, targets: Any) -> float:
    """Mean cross-entropy of predicting ``targets`` from ``ids``, in nats per token.

    ``ids`` and ``targets`` are ``[n_seq]`` or ``[n_batch, n_seq]``; position ``t`` predicts
    ``targets[t]`` (usually ``ids`` shifted by one). A model that spreads its bets evenly over
    the vocabulary scores ``ln(vocab_size)``.

    >>> from tokforge.nn import Config, init_params
    >>> config = Config(vocab_size=16, d_model=8, n_layers=1, n_heads=2)
    >>> round(loss(init_params(config), config, [1, 2, 3], [2, 3, 4]), 2)  # near ln 16 = 2.77
    2.75
    """
    return loss_and_logits(params, config, ids, targets)[0]


def grad(params: Params, config: Config, ids: Any, targets: Any) -> tuple[float, Params]:
    """``(loss, grads)``: :func:`loss` and its gradient with respect to every parameter, as a
    nested dict shaped like ``params``, by the hand-written backward pass of this module.

    >>> from tokforge.nn import Config, init_params
    >>> config = Config(vocab_size=16, d_model=8, n_layers=1, n_heads=2)
    >>> value, g = grad(init_params(config), config, [1, 2, 3], [2, 3, 4])
    >>> g["h"][0]["attn"]["c_attn"]["w"].shape
    (8, 24)
    """
    batch, tgt = _checked_pair(config, ids, targets)
    out, cache = model_forward(params, config, batch)  # [n_batch, n_seq, n_vocab]
    value, probs = cross_entropy_forward(out, tgt)
    dlogits = cross_entropy_backward(probs, tgt)  # [n_batch, n_seq, n_vocab]
    return value, model_backward(dlogits, cache, params, config)
