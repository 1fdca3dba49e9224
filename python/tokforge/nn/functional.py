"""The transformer's building blocks as pure NumPy functions.

Every function takes arrays and returns new arrays; nothing here keeps state. Each line that
makes a tensor says its shape in a comment, with these names:

    n_seq    tokens in the current input       n_kv     keys visible to a query (cache + new)
    d_model  width of the residual stream      d_ff     width of the feed-forward hidden layer
    n_head   query heads                       n_kv_head  key/value heads (GQA: fewer)
    d_head   width of one head (d_model / n_head)
    n_vocab  vocabulary size

The functions are written for float64 so that tests can compare them with hand-computed numbers
to many digits; they work unchanged on float32.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "attention",
    "attention_scores",
    "causal_mask",
    "embed",
    "erf",
    "ffn",
    "gelu",
    "gelu_tanh",
    "layer_norm",
    "linear",
    "merge_heads",
    "rope",
    "rope_angles",
    "sinusoidal_positions",
    "softmax",
    "split_heads",
]


# ---------------------------------------------------------------------------------------------
# Softmax


def softmax(logits: np.ndarray, temperature: float = 1.0, axis: int = -1) -> np.ndarray:
    """Turn scores into probabilities along ``axis``, dividing by ``temperature`` first.

    Subtracting the maximum before ``exp`` leaves the result unchanged (the factor cancels in
    the ratio) and keeps ``exp`` from overflowing: the largest exponent is exactly 0. Entries of
    ``-inf`` (masked positions) get probability exactly 0.

    >>> softmax(np.array([2.0, 1.0, 0.5, 0.0])).round(2).tolist()
    [0.58, 0.21, 0.13, 0.08]
    >>> softmax(np.array([2.0, 1.0, 0.5, 0.0]), temperature=0.5).round(2).tolist()
    [0.83, 0.11, 0.04, 0.02]
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r} (use greedy for 0)")
    z = np.asarray(logits, dtype=np.result_type(logits, np.float64)) / temperature  # [..., n]
    z = z - np.max(z, axis=axis, keepdims=True)  # [..., n] -> [..., n], max entry is 0
    e = np.exp(z)  # [..., n]
    result: np.ndarray = e / np.sum(e, axis=axis, keepdims=True)  # [..., n] / [..., 1] -> [..., n]
    return result


# ---------------------------------------------------------------------------------------------
# Embeddings and positions


def embed(ids: np.ndarray, wte: np.ndarray) -> np.ndarray:
    """Look up one row of the token embedding table per id.

    >>> embed(np.array([2, 0]), np.arange(6.0).reshape(3, 2)).tolist()
    [[4.0, 5.0], [0.0, 1.0]]
    """
    ids = np.asarray(ids)  # [n_seq]
    if ids.size and (ids.min() < 0 or ids.max() >= wte.shape[0]):
        raise ValueError(f"token id out of range [0, {wte.shape[0]}): {ids.tolist()}")
    result: np.ndarray = wte[ids]  # [n_vocab, d_model][n_seq] -> [n_seq, d_model]
    return result


def sinusoidal_positions(positions: np.ndarray, d_model: int) -> np.ndarray:
    """The fixed position code of "Attention Is All You Need" (section 3.5).

    ``PE[p, 2i] = sin(p / 10000^(2i/d_model))`` and ``PE[p, 2i+1] = cos(...)``: each pair of
    columns is a clock turning at its own speed, from one turn per 2*pi tokens down to one per
    10000*2*pi tokens. ``d_model`` must be even.

    >>> sinusoidal_positions(np.array([0, 1]), 4).round(4).tolist()
    [[0.0, 1.0, 0.0, 1.0], [0.8415, 0.5403, 0.01, 1.0]]
    """
    if d_model % 2:
        raise ValueError(f"sinusoidal positions need an even d_model, got {d_model}")
    p = np.asarray(positions, dtype=np.float64)  # [n_seq]
    inv_freq = 10000.0 ** (-np.arange(0, d_model, 2) / d_model)  # [d_model/2]
    angles = p[:, None] * inv_freq[None, :]  # [n_seq, 1] * [1, d_model/2] -> [n_seq, d_model/2]
    pe = np.empty((p.shape[0], d_model))  # [n_seq, d_model]
    pe[:, 0::2] = np.sin(angles)  # even columns [n_seq, d_model/2]
    pe[:, 1::2] = np.cos(angles)  # odd columns [n_seq, d_model/2]
    return pe  # [n_seq, d_model]


def rope_angles(
    positions: np.ndarray, d_head: int, base: float = 10000.0
) -> tuple[np.ndarray, np.ndarray]:
    """Cosines and sines for rotary position embedding (RoPE, Su et al. 2021).

    Returns ``(cos, sin)``, each ``[n_seq, d_head/2]``: the angle ``p * base^(-2i/d_head)`` for
    position ``p`` and frequency ``i``. Computed once per forward pass and shared by all layers.
    """
    if d_head % 2:
        raise ValueError(f"RoPE needs an even head width, got {d_head}")
    p = np.asarray(positions, dtype=np.float64)  # [n_seq]
    inv_freq = base ** (-np.arange(0, d_head, 2) / d_head)  # [d_head/2]
    angles = p[:, None] * inv_freq[None, :]  # [n_seq, 1] * [1, d_head/2] -> [n_seq, d_head/2]
    return np.cos(angles), np.sin(angles)  # 2 x [n_seq, d_head/2]


def rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate queries or keys by their position (the "rotate half" layout of GPT-NeoX/LLaMA).

    Feature ``i`` of the first half and feature ``i`` of the second half form a 2-D point that is
    turned by angle ``cos[:, i], sin[:, i]``. A rotation keeps lengths, and the dot product of two
    rotated vectors depends only on the difference of their angles, so ``q . k`` after RoPE
    depends on the distance between the two positions, never on where they are.

    >>> rope(np.array([[1.0, 0.0]]), np.array([[0.0]]), np.array([[1.0]])).tolist()
    [[0.0, 1.0]]
    """
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]  # [..., n_seq, d_head] -> 2 x [..., n_seq, d_head/2]
    return np.concatenate(  # 2 x [..., n_seq, d_head/2] -> [..., n_seq, d_head]
        [x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1
    )


# ---------------------------------------------------------------------------------------------
# Attention


def causal_mask(n_q: int, n_kv: int) -> np.ndarray:
    """Which keys each query may see: ``True`` where allowed.

    Queries are the last ``n_q`` of the ``n_kv`` positions (with a KV cache the earlier keys come
    from the cache), so query ``i`` sits at position ``n_kv - n_q + i`` and sees keys up to it.

    >>> causal_mask(2, 3).astype(int).tolist()
    [[1, 1, 0], [1, 1, 1]]
    """
    return np.tri(n_q, n_kv, k=n_kv - n_q, dtype=bool)  # [n_q, n_kv]


def attention_scores(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """How well each query matches each key: ``q k^T / sqrt(d_k)``.

    Dividing by ``sqrt(d_k)`` keeps the scores' spread near 1 whatever the head width (a dot
    product of ``d_k`` unit-variance terms has variance ``d_k``), so softmax does not saturate.

    >>> q = np.array([[1.0, 0.0, 1.0, 0.0]])
    >>> attention_scores(q, np.array([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]])).tolist()
    [[0.5, 1.0]]
    """
    d_k = q.shape[-1]
    # [..., n_q, d_k] @ [..., d_k, n_kv] -> [..., n_q, n_kv]
    result: np.ndarray = q @ np.swapaxes(k, -1, -2) / math.sqrt(d_k)
    return result


def attention(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Scaled dot-product attention: ``softmax(q k^T / sqrt(d_k)) v``.

    Leading dimensions (heads, groups) broadcast. With ``causal=True`` query ``i`` ignores keys
    that come after it (see :func:`causal_mask`); ``causal=False`` is the textbook form where
    every query sees every key. Returns ``(output, weights)``; each row of ``weights`` sums to 1.

    The 3-token textbook example (no mask): Q = [[1,0,1,0],[0,1,0,1],[1,1,0,0]],
    K = [[1,1,0,0],[0,0,1,1],[1,0,1,0]], V = Q. The scaled scores are
    [[0.5,0.5,1],[0.5,0.5,0],[1,0,0.5]] and

    >>> Q = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [1, 1, 0, 0]], dtype=float)
    >>> K = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]], dtype=float)
    >>> out, w = attention(Q, K, Q, causal=False)
    >>> w.round(2).tolist()[0], out.round(3).tolist()[0]
    ([0.27, 0.27, 0.45], [0.726, 0.726, 0.274, 0.274])
    """
    scores = attention_scores(q, k)  # [..., n_q, d_k], [..., n_kv, d_k] -> [..., n_q, n_kv]
    if causal:
        mask = causal_mask(q.shape[-2], k.shape[-2])  # [n_q, n_kv]
        scores = np.where(mask, scores, -np.inf)  # [..., n_q, n_kv], hidden keys -> -inf
    weights = softmax(scores)  # [..., n_q, n_kv], rows sum to 1
    return weights @ v, weights  # [..., n_q, n_kv] @ [..., n_kv, d_v] -> [..., n_q, d_v]


def split_heads(x: np.ndarray, n_head: int) -> np.ndarray:
    """Cut the feature axis into ``n_head`` heads and move heads to the front.

    >>> split_heads(np.arange(8.0).reshape(2, 4), 2).tolist()
    [[[0.0, 1.0], [4.0, 5.0]], [[2.0, 3.0], [6.0, 7.0]]]
    """
    n_seq, width = x.shape
    x = x.reshape(n_seq, n_head, width // n_head)  # [n_seq, width] -> [n_seq, n_head, d_head]
    result: np.ndarray = x.transpose(1, 0, 2)  # [n_seq, n_head, d_head] -> [n_head, n_seq, d_head]
    return result


def merge_heads(x: np.ndarray) -> np.ndarray:
    """Undo :func:`split_heads`: put the heads side by side again (the "concat" of the paper)."""
    n_head, n_seq, d_head = x.shape
    x = x.transpose(1, 0, 2)  # [n_head, n_seq, d_head] -> [n_seq, n_head, d_head]
    return x.reshape(n_seq, n_head * d_head)  # [n_seq, n_head, d_head] -> [n_seq, d_model]


# ---------------------------------------------------------------------------------------------
# Position-wise layers


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``x @ w + b`` with ``w`` stored ``[d_in, d_out]`` as in GPT-2's ``Conv1D`` layers."""
    y = x @ w  # [n_seq, d_in] @ [d_in, d_out] -> [n_seq, d_out]
    result: np.ndarray = y if b is None else y + b  # [n_seq, d_out] + [d_out] -> [n_seq, d_out]
    return result


def layer_norm(x: np.ndarray, g: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Normalise each row to mean 0 and variance 1, then scale by ``g`` and shift by ``b``.

    The variance is the biased one (divide by ``d_model``), as in PyTorch and GPT-2.

    >>> layer_norm(np.array([[1.0, 3.0]]), np.ones(2), np.zeros(2), eps=0.0).tolist()
    [[-1.0, 1.0]]
    """
    mean = np.mean(x, axis=-1, keepdims=True)  # [n_seq, d_model] -> [n_seq, 1]
    var = np.var(x, axis=-1, keepdims=True)  # [n_seq, d_model] -> [n_seq, 1]
    x_hat = (x - mean) / np.sqrt(var + eps)  # [n_seq, d_model]
    # [d_model] * [n_seq, d_model] + [d_model] -> [n_seq, d_model]
    result: np.ndarray = g * x_hat + b
    return result


# Power series of erf around 0 (used for |x| < 2): erf(x) = 2/sqrt(pi) * sum_n c_n x^(2n+1) with
# c_n = (-1)^n / (n! (2n+1)). At |x| = 2 the 30th term is below 1e-15; larger |x| would lose
# digits to cancellation between large alternating terms, so they take the continued fraction.
_ERF_SERIES = np.array([(-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(30)])
# Terms of the continued fraction for erfc (used for |x| >= 2); 50 levels reach double
# precision there (measured against math.erfc on a fine grid of [2, 8]).
_ERFC_CF_DEPTH = 50


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, vectorised, accurate to about 1e-15 (NumPy has no ``erf``).

    Small arguments use the power series, large ones the continued fraction
    ``erfc(x) = exp(-x^2) / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...))))``.

    >>> float(erf(np.array(1.0)).round(12)) == round(math.erf(1.0), 12)
    True
    """
    x = np.asarray(x, dtype=np.float64)  # [...]
    a = np.abs(x)  # [...]
    out = np.empty_like(a)  # [...]
    small = a < 2.0  # [...] bool
    s = a[small]  # [n_small]
    acc = np.zeros_like(s)  # [n_small]
    for c in _ERF_SERIES[::-1]:  # Horner's rule in s^2
        acc = acc * (s * s) + c  # [n_small]
    out[small] = 2.0 / math.sqrt(math.pi) * s * acc  # [n_small]
    t = a[~small]  # [n_large]
    frac = t.copy()  # [n_large], the innermost level of the fraction
    for m in range(_ERFC_CF_DEPTH, 0, -1):
        frac = t + (m / 2.0) / frac  # [n_large]
    out[~small] = 1.0 - np.exp(-t * t) / math.sqrt(math.pi) / frac  # [n_large]
    result: np.ndarray = np.sign(x) * out  # erf is odd: [...]
    return result


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU: ``x * Phi(x)`` where ``Phi`` is the standard normal CDF (Hendrycks, Gimpel).

    >>> gelu(np.array([-1.0, 0.0, 1.0])).round(4).tolist()
    [-0.1587, 0.0, 0.8413]
    """
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))  # [...] -> [...]


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    """GELU's tanh approximation, the one GPT-2 was trained with (``gelu_new`` in transformers).

    >>> gelu_tanh(np.array([-1.0, 0.0, 1.0])).round(4).tolist()
    [-0.1588, 0.0, 0.8412]
    """
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)  # [...] -> [...]
    return 0.5 * x * (1.0 + np.tanh(inner))  # [...] -> [...]


def ffn(
    x: np.ndarray,
    c_fc: dict[str, np.ndarray],
    c_proj: dict[str, np.ndarray],
    activation: str = "gelu",
) -> np.ndarray:
    """Position-wise feed-forward network: widen, apply GELU, narrow back.

    ``c_fc`` and ``c_proj`` are ``{"w", "b"}`` dicts, named as in GPT-2's ``mlp`` module.
    """
    act = _ACTIVATIONS[activation]
    h = act(linear(x, **c_fc))  # [n_seq, d_model] -> [n_seq, d_ff]
    return linear(h, **c_proj)  # [n_seq, d_ff] -> [n_seq, d_model]


_ACTIVATIONS = {"gelu": gelu, "gelu_tanh": gelu_tanh}
