"""Training machinery: AdamW, a warm-up + cosine learning-rate schedule, gradient clipping.

The optimiser works on the flat view of the parameters (:func:`tokforge.nn.weights.
flatten_params`: ``"h.0.attn.c_attn.w"`` -> array) and updates the arrays in place, so the nested
``params`` dict a :class:`~tokforge.nn.Transformer` holds is trained without being rebuilt.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = ["AdamW", "clip_grad_norm", "decays", "global_norm", "lr_at"]


def decays(name: str) -> bool:
    """Whether weight decay applies to the parameter called ``name``: only to matrices
    (``*.w``, ``wte``, ``wpe``, ``lm_head.w``).

    Decay pulls weights toward 0 to keep the function simple, which makes sense for the matrices
    that mix features. LayerNorm gains (``*.g``) should stay near 1, not 0: decaying them would
    shrink every normalised activation; biases (``*.b``) only shift and are few, so decaying them
    buys no regularisation and can only bias the fit (the usual choice since BERT and GPT-2).

    >>> [decays(n) for n in ("wte", "h.0.attn.c_attn.w", "h.0.ln_1.g", "h.0.mlp.c_fc.b")]
    [True, True, False, False]
    """
    leaf = name.rsplit(".", 1)[-1]
    return leaf not in ("g", "b")


def lr_at(step: int, steps: int, lr: float, warmup: int, min_ratio: float = 0.1) -> float:
    """The learning rate of step ``step`` (0-based) of ``steps``: linear warm-up from
    ``lr / warmup`` to ``lr`` over the first ``warmup`` steps, then a cosine from ``lr`` down to
    ``min_ratio * lr`` at the last step.

    Warm-up keeps the first, large and noisy updates (Adam's moment estimates start empty) from
    throwing the weights far off; the cosine spends most steps near the full rate and anneals
    at the end, where small steps settle into a minimum.

    >>> [round(lr_at(s, 10, 1.0, warmup=2), 3) for s in (0, 1, 2, 9)]
    [0.5, 1.0, 1.0, 0.1]
    """
    if step < warmup:
        return lr * (step + 1) / warmup
    span = max(1, steps - 1 - warmup)
    progress = min(1.0, (step - warmup) / span)  # 0 at the end of warm-up, 1 at the last step
    return lr * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def global_norm(grads: Mapping[str, np.ndarray]) -> float:
    """The L2 norm of all gradients together, as if they were one long vector."""
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> float:
    """Scale every gradient in place so their :func:`global_norm` is at most ``max_norm``;
    return the norm before clipping. One bad batch then moves the weights no further than a
    typical one, while the direction of the step is kept.

    >>> g = {"a": np.array([3.0]), "b": np.array([4.0])}
    >>> clip_grad_norm(g, 1.0), g["a"].round(6).tolist(), g["b"].round(6).tolist()
    (5.0, [0.6], [0.8])
    """
    norm = global_norm(grads)
    if norm > max_norm > 0:
        scale = max_norm / norm
        for g in grads.values():
            g *= scale
    return norm


class AdamW:
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019).

    For each parameter ``w`` with gradient ``g`` at step ``t`` (from 1)::

        m = b1 m + (1 - b1) g            v = b2 v + (1 - b2) g^2
        w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
        w -= lr * weight_decay * w       (matrices only, see :func:`decays`)

    "Decoupled": the decay acts on the weights directly instead of being added to ``g``, so it is
    not rescaled by Adam's per-parameter step size (with L2 in the gradient, weights with large
    gradients would hardly be decayed at all). ``b2 = 0.95`` as in GPT-3 and nanoGPT, which
    adapts faster than 0.999 in short runs.

    >>> opt = AdamW(weight_decay=0.0)
    >>> w = {"x.w": np.array([1.0])}
    >>> opt.step(w, {"x.w": np.array([0.5])}, lr=0.1)
    >>> w["x.w"].round(6).tolist()  # the first step moves by lr, whatever the gradient's size
    [0.9]
    """

    def __init__(
        self,
        betas: tuple[float, float] = (0.9, 0.95),
        eps: float = 1e-8,
        weight_decay: float = 0.1,
    ) -> None:
        self.b1, self.b2 = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.t = 0
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}

    def step(
        self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray], lr: float
    ) -> None:
        """Update every array of ``params`` in place from the same-named gradient."""
        self.t += 1
        c1 = 1.0 - self.b1**self.t  # bias corrections: m and v start at 0
        c2 = 1.0 - self.b2**self.t
        for name, w in params.items():
            g = grads[name]
            if name not in self.m:
                self.m[name] = np.zeros_like(w)
                self.v[name] = np.zeros_like(w)
            m, v = self.m[name], self.v[name]
            m *= self.b1
            m += (1.0 - self.b1) * g
            v *= self.b2
            v += (1.0 - self.b2) * (g * g)
            if self.weight_decay and decays(name):
                w *= 1.0 - lr * self.weight_decay
            w -= (lr / c1) * m / (np.sqrt(v / c2) + self.eps)
