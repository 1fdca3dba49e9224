"""From next-token logits to one token id: greedy, temperature, top-k, top-p, and their mix.

The filters are applied in the usual order (the one transformers' ``generate`` uses):
temperature reshapes the whole distribution, top-k keeps the k likeliest tokens, top-p then
keeps the smallest head of what is left whose probability reaches p, and the survivors are
renormalised. Ties are broken towards the smaller token id, so every step is deterministic
given the random generator.
"""

from __future__ import annotations

import numpy as np

from .functional import softmax

__all__ = [
    "check_sampling",
    "greedy",
    "make_rng",
    "sample",
    "sample_token",
    "sampling_distribution",
]


def sampling_distribution(
    logits: np.ndarray,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> np.ndarray:
    """The probabilities a token is drawn from, after temperature, top-k and top-p.

    Returns an array shaped like ``logits`` (``[n_vocab]``) that sums to 1, with 0 for every
    filtered-out token. ``temperature=0`` means greedy: all mass on the largest logit.

    >>> logits = np.array([2.0, 1.0, 0.5, 0.0])
    >>> sampling_distribution(logits, top_k=2).round(2).tolist()
    [0.73, 0.27, 0.0, 0.0]
    >>> int(np.count_nonzero(sampling_distribution(logits, top_p=0.7)))
    2
    """
    logits = np.asarray(logits, dtype=np.float64)  # [n_vocab]
    if logits.ndim != 1 or logits.size == 0:
        raise ValueError(f"logits must be a non-empty 1-D array, got shape {logits.shape}")
    check_sampling(temperature, top_k, top_p)

    n_vocab = logits.shape[0]
    if temperature == 0:
        one_hot = np.zeros(n_vocab)  # [n_vocab]
        one_hot[greedy(logits)] = 1.0
        return one_hot

    probs = softmax(logits, temperature)  # [n_vocab]
    order = np.argsort(-probs, kind="stable")  # [n_vocab] ids, likeliest first, ties by id
    n_keep = n_vocab if top_k is None else min(top_k, n_vocab)
    if top_p is not None:
        head = probs[order[:n_keep]]  # [n_keep]
        cumulative = np.cumsum(head / head.sum())  # [n_keep], ends at 1 (up to rounding)
        # The first position where the running total reaches top_p closes the nucleus; if
        # rounding keeps the total just under top_p, searchsorted runs off the end: keep all.
        n_keep = min(int(np.searchsorted(cumulative, top_p)) + 1, n_keep)
    kept = order[:n_keep]  # [n_keep] ids
    out = np.zeros(n_vocab)  # [n_vocab]
    out[kept] = probs[kept]  # [n_keep] -> scattered into [n_vocab]
    result: np.ndarray = out / out.sum()  # [n_vocab], renormalised
    return result


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ``ValueError`` unless ``temperature >= 0``, ``top_k >= 1`` and ``0 < top_p <= 1``
    (``None`` meaning no limit)."""
    if not temperature >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 (or None for no limit), got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1] (or None for no limit), got {top_p!r}")


def greedy(logits: np.ndarray) -> int:
    """The id of the largest logit (the smallest such id on a tie).

    >>> greedy(np.array([0.1, 3.0, 3.0]))
    1
    """
    return int(np.argmax(logits))


def make_rng(seed: int | np.random.Generator | None = None) -> np.random.Generator:
    """A NumPy generator: ``None`` for fresh entropy, an int for a reproducible stream, or a
    generator passed through unchanged (so a caller can share one across calls)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def sample(probs: np.ndarray, rng: np.random.Generator) -> int:
    """Draw one id from ``probs`` by inverting the cumulative distribution.

    One uniform number ``u`` in [0, 1) is drawn; the answer is the first id whose running total
    passes ``u``. Tokens with probability 0 are never drawn.

    >>> sample(np.array([0.0, 1.0, 0.0]), np.random.default_rng(0))
    1
    """
    cdf = np.cumsum(probs)  # [n_vocab], nondecreasing
    u = rng.random() * cdf[-1]  # scalar in [0, total)
    idx = int(np.searchsorted(cdf, u, side="right"))
    # u * total can round up to total itself; fall back to the last token with mass.
    return min(idx, int(np.flatnonzero(probs)[-1]))


def sample_token(
    logits: np.ndarray,
    rng: np.random.Generator,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> int:
    """Pick the next id from logits: greedy at ``temperature=0``, else a filtered draw.

    Greedy consumes no random numbers, so a greedy run never depends on the seed.
    """
    if temperature == 0:
        return greedy(logits)
    return sample(sampling_distribution(logits, temperature, top_k, top_p), rng)
