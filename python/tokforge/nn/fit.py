"""Train the reference transformer on token ids, and measure it against n-gram baselines.

:func:`fit` draws random windows of ``seq_len + 1`` tokens from ``ids`` (input: the first
``seq_len``, targets: the same shifted by one), takes the gradient of :func:`tokforge.nn.backward
.loss`, clips it and steps AdamW on a warm-up + cosine schedule. :func:`evaluate` runs the model
over held-out ids and turns its loss into perplexity and bits per byte.

Bits per byte is the measure that is fair across vocabularies: a model over a big vocabulary
predicts fewer, harder tokens, so its loss per token is not comparable with a small
vocabulary's, but the total information it needs for the same text is. ``bpb = loss * n_tokens /
(n_bytes * ln 2)``, where ``n_tokens`` tokens were predicted and they spell ``n_bytes`` bytes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backward import cross_entropy_forward, grad, model_forward
from .config import Config
from .model import TokenizerLike, Transformer
from .optim import AdamW, clip_grad_norm, lr_at
from .threads import blas_threads
from .weights import flatten_params, init_params

__all__ = [
    "Evaluation",
    "History",
    "Progress",
    "bigram_baseline",
    "bits_per_byte",
    "evaluate",
    "fit",
    "unigram_baseline",
]

_LN2 = math.log(2.0)


@dataclass
class History:
    """What happened during :func:`fit`: the training loss of every step (on that step's
    batch, before its update), the learning rate and pre-clip gradient norm, and the validation
    loss at the steps in ``val_steps`` (0-based; the last step is always among them)."""

    train_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON)."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Progress:
    """Passed to :func:`fit`'s ``callback`` after every step."""

    step: int  # 1-based: steps done
    steps: int
    loss: float
    lr: float
    val_loss: float | None  # the latest validation loss, if any yet


@dataclass(frozen=True)
class Evaluation:
    """A model's (or baseline's) score on held-out ids: ``loss`` is nats per predicted token."""

    loss: float
    n_tokens: int
    n_bytes: int

    @property
    def perplexity(self) -> float:
        """``exp(loss)``: the number of equally likely tokens the model hesitates between."""
        return math.exp(self.loss)

    @property
    def bits_per_byte(self) -> float:
        """``loss * n_tokens / (n_bytes * ln 2)``: bits to encode each byte of the text."""
        return bits_per_byte(self.loss, self.n_tokens, self.n_bytes)

    def to_dict(self) -> dict[str, float | int]:
        """``loss``, ``perplexity``, ``bits_per_byte``, ``n_tokens``, ``n_bytes``."""
        return {
            "loss": self.loss,
            "perplexity": self.perplexity,
            "bits_per_byte": self.bits_per_byte,
            "n_tokens": self.n_tokens,
            "n_bytes": self.n_bytes,
        }


def bits_per_byte(loss: float, n_tokens: int, n_bytes: int) -> float:
    """Turn a mean loss in nats over ``n_tokens`` tokens into bits per byte of their text.

    >>> round(bits_per_byte(math.log(256), 10, 10), 6)  # uniform over bytes: 8 bits each
    8.0
    """
    if n_bytes <= 0:
        raise ValueError(f"n_bytes must be > 0, got {n_bytes}")
    return loss * n_tokens / (n_bytes * _LN2)


def _as_ids(ids: Sequence[int] | np.ndarray, name: str, min_len: int) -> np.ndarray:
    a = np.asarray(ids)
    if a.ndim != 1 or not (a.size == 0 or np.issubdtype(a.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D sequence of token ids, got shape {a.shape}")
    if a.size < min_len:
        raise ValueError(f"{name} has {a.size} tokens; at least {min_len} are needed")
    return a.astype(np.int64, copy=False)


def _windows(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive non-overlapping windows covering ``ids``: every id after the first is a
    target exactly once. Returns ``(x, y)``; the last window may be shorter, so they are lists
    grouped by length (all but possibly one of length ``seq_len``)."""
    n_full = (ids.size - 1) // seq_len
    x = ids[: n_full * seq_len].reshape(n_full, seq_len)  # [n_win, seq_len]
    y = ids[1 : n_full * seq_len + 1].reshape(n_full, seq_len)  # [n_win, seq_len]
    return x, y


def _mean_loss(
    params: Any, config: Config, ids: np.ndarray, seq_len: int, batch_size: int = 32
) -> float:
    """Mean loss per predicted token over ``ids`` (each id after the first predicted once, from
    the ids before it in its window of ``seq_len``)."""
    x, y = _windows(ids, seq_len)
    total, count = 0.0, 0
    for i in range(0, x.shape[0], batch_size):
        logits, _ = model_forward(params, config, x[i : i + batch_size])
        value, _ = cross_entropy_forward(logits, y[i : i + batch_size])
        total += value * y[i : i + batch_size].size
        count += y[i : i + batch_size].size
    rest = ids.size - 1 - x.size  # the tail that did not fill a window
    if rest > 0:
        tail_x, tail_y = ids[x.size : x.size + rest][None], ids[x.size + 1 :][None]
        logits, _ = model_forward(params, config, tail_x)
        value, _ = cross_entropy_forward(logits, tail_y)
        total += value * rest
        count += rest
    return total / count


def fit(
    config: Config,
    ids: Sequence[int] | np.ndarray,
    steps: int = 300,
    batch_size: int = 16,
    seq_len: int | None = None,
    lr: float = 3e-3,
    seed: int = 0,
    val_ids: Sequence[int] | np.ndarray | None = None,
    *,
    warmup: int | None = None,
    weight_decay: float = 0.1,
    clip: float = 1.0,
    dtype: Any = np.float32,
    threads: int | None = 1,
    eval_every: int | None = None,
    callback: Callable[[Progress], None] | None = None,
    tokenizer: TokenizerLike | None = None,
) -> tuple[Transformer, History]:
    """Train a fresh model of shape ``config`` on ``ids``; return it and its :class:`History`.

    Each step samples ``batch_size`` windows of ``seq_len`` tokens (default: the config's
    ``max_seq_len``) at random offsets, so the same ``seed`` gives the same weights, batches and
    losses, bit for bit, on the same machine and NumPy. ``warmup`` defaults to 5% of the steps.
    With ``val_ids``, the validation loss is measured every ``eval_every`` steps (default:
    about 20 times per run, and at the last step) over all of ``val_ids``. Training runs in
    ``dtype`` (float32; pass float64 for checks) with ``threads`` BLAS threads (1; ``None``
    leaves NumPy's default, see :mod:`tokforge.nn.threads`). ``callback`` gets a
    :class:`Progress` after every step.

    >>> config = Config(vocab_size=8, d_model=16, n_layers=1, n_heads=2, max_seq_len=8)
    >>> model, history = fit(config, [0, 1, 2, 3] * 40, steps=60, batch_size=4, lr=1e-2)
    >>> round(history.train_loss[0], 2), round(history.train_loss[-1], 2)  # from ~ln 8: learnt
    (2.14, 0.02)
    """
    seq_len = config.max_seq_len if seq_len is None else seq_len
    if not 1 <= seq_len <= config.max_seq_len:
        raise ValueError(f"seq_len must be in [1, max_seq_len={config.max_seq_len}], got {seq_len}")
    for name, count in (("steps", steps), ("batch_size", batch_size)):
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"{name} must be a positive integer, got {count!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    train = _as_ids(ids, "ids", seq_len + 1)
    _check_vocab(config.vocab_size, train)
    val = None if val_ids is None else _as_ids(val_ids, "val_ids", 2)
    if val is not None:
        _check_vocab(config.vocab_size, val)
    warmup = max(1, steps // 20) if warmup is None else warmup
    eval_every = max(1, steps // 20) if eval_every is None else eval_every

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    params = init_params(config, seed, dtype=dtype)
    flat = flatten_params(params)
    opt = AdamW(weight_decay=weight_decay)
    history = History()
    offsets = np.arange(seq_len + 1)  # [seq_len + 1]
    with blas_threads(threads):
        for step in range(steps):
            starts = rng.integers(0, train.size - seq_len, size=batch_size)  # [batch_size]
            window = train[starts[:, None] + offsets]  # [batch_size, seq_len + 1]
            value, grads = grad(params, config, window[:, :-1], window[:, 1:])
            gflat = flatten_params(grads)
            norm = clip_grad_norm(gflat, clip)
            rate = lr_at(step, steps, lr, warmup)
            opt.step(flat, gflat, rate)
            history.train_loss.append(value)
            history.lr.append(rate)
            history.grad_norm.append(norm)
            if val is not None and ((step + 1) % eval_every == 0 or step == steps - 1):
                history.val_steps.append(step)
                history.val_loss.append(_mean_loss(params, config, val, seq_len))
            if callback is not None:
                latest = history.val_loss[-1] if history.val_loss else None
                callback(Progress(step + 1, steps, value, rate, latest))
    history.seconds = time.perf_counter() - started
    return Transformer(config, params=params, tokenizer=tokenizer), history


def evaluate(
    model: Transformer,
    ids: Sequence[int] | np.ndarray,
    n_bytes: int,
    seq_len: int | None = None,
    threads: int | None = 1,
) -> Evaluation:
    """Score ``model`` on held-out ``ids``: loss per token, perplexity and bits per byte.

    The ids are cut into consecutive windows of ``seq_len`` (default ``max_seq_len``); every id
    after the first is predicted once, from the ids before it in its window. ``n_bytes`` is the
    length in bytes of the text those predicted ids spell (the bytes of ``ids[1:]``; the first
    id has no context and is not scored).

    >>> config = Config(vocab_size=8, d_model=16, n_layers=1, n_heads=2, max_seq_len=8)
    >>> e = evaluate(Transformer(config), [0, 1, 2, 3, 4], n_bytes=4)
    >>> e.n_tokens, round(e.perplexity, 1)  # an untrained model: about the vocabulary size
    (4, 8.7)
    """
    seq_len = model.config.max_seq_len if seq_len is None else seq_len
    if not 1 <= seq_len <= model.config.max_seq_len:
        raise ValueError(f"seq_len must be in [1, {model.config.max_seq_len}], got {seq_len}")
    a = _as_ids(ids, "ids", 2)
    _check_vocab(model.config.vocab_size, a)
    with blas_threads(threads):
        value = _mean_loss(model.params, model.config, a, seq_len)
    return Evaluation(value, int(a.size - 1), int(n_bytes))


# ---------------------------------------------------------------------------------------------
# Baselines


def _unigram_probs(train: np.ndarray, vocab_size: int) -> np.ndarray:
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64)  # [n_vocab]
    probs: np.ndarray = (counts + 1.0) / (counts.sum() + vocab_size)  # add-one: [n_vocab]
    return probs


def unigram_baseline(
    train_ids: Sequence[int] | np.ndarray,
    ids: Sequence[int] | np.ndarray,
    n_bytes: int,
    vocab_size: int,
) -> Evaluation:
    """A unigram model with add-one smoothing, fitted on ``train_ids``, scored like
    :func:`evaluate` on ``ids[1:]`` (the same tokens the model is scored on).

    >>> e = unigram_baseline([0, 0, 1], [0, 0, 1], n_bytes=2, vocab_size=2)
    >>> round(e.loss, 4)  # p(0) = 3/5, p(1) = 2/5; tokens scored: 0, 1
    0.7136
    """
    train, a = _as_ids(train_ids, "train_ids", 1), _as_ids(ids, "ids", 2)
    _check_vocab(vocab_size, train, a)
    p = _unigram_probs(train, vocab_size)  # [n_vocab]
    return Evaluation(float(-np.log(p[a[1:]]).mean()), int(a.size - 1), int(n_bytes))


def _bigram_log_probs(
    train: np.ndarray, prev: np.ndarray, nxt: np.ndarray, vocab_size: int, alpha: float
) -> np.ndarray:
    """log p(nxt | prev) with counts from ``train`` and a Dirichlet prior of weight ``alpha``
    toward the add-one unigram: ``(c(a, b) + alpha p(b)) / (c(a) + alpha)``."""
    uni = _unigram_probs(train, vocab_size)  # [n_vocab]
    pair_codes, pair_counts = np.unique(train[:-1] * vocab_size + train[1:], return_counts=True)
    ctx_counts = np.bincount(train[:-1], minlength=vocab_size)  # [n_vocab]
    query = prev * vocab_size + nxt  # [n]
    pos = np.minimum(np.searchsorted(pair_codes, query), pair_codes.size - 1)  # [n]
    c_ab = np.where(pair_codes[pos] == query, pair_counts[pos], 0)  # [n], 0 for unseen pairs
    log_p: np.ndarray = np.log((c_ab + alpha * uni[nxt]) / (ctx_counts[prev] + alpha))  # [n]
    return log_p


_ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)


def bigram_baseline(
    train_ids: Sequence[int] | np.ndarray,
    ids: Sequence[int] | np.ndarray,
    n_bytes: int,
    vocab_size: int,
) -> tuple[Evaluation, float]:
    """A bigram model fitted on ``train_ids``, scored on ``ids[1:]`` given the id before each;
    returns the evaluation and the smoothing weight used.

    Add-one smoothing, fine for unigrams, gives a bigram's unseen pairs far too much mass at
    large vocabularies, so pairs are smoothed toward the unigram instead (a Dirichlet prior of
    weight ``alpha``). ``alpha`` is chosen among 0.1 ... 100 on the last 10% of ``train_ids``
    with counts from the first 90%, then the counts are taken from all of ``train_ids``: the
    held-out ``ids`` are never used to tune it.
    """
    train, a = _as_ids(train_ids, "train_ids", 20), _as_ids(ids, "ids", 2)
    _check_vocab(vocab_size, train, a)
    cut = train.size * 9 // 10
    fit_part, tune = train[:cut], train[cut - 1 :]

    def tuned(alpha: float) -> float:
        return float(-_bigram_log_probs(fit_part, tune[:-1], tune[1:], vocab_size, alpha).mean())

    alpha = min(_ALPHAS, key=tuned)
    nll = -_bigram_log_probs(train, a[:-1], a[1:], vocab_size, alpha)
    return Evaluation(float(nll.mean()), int(a.size - 1), int(n_bytes)), alpha


def _check_vocab(vocab_size: int, *arrays: np.ndarray) -> None:
    for a in arrays:
        if a.size and (a.min() < 0 or a.max() >= vocab_size):
            raise ValueError(
                f"token ids outside [0, {vocab_size}): min {a.min()}, max {a.max()} (is this the "
                "tokenizer the model was trained with?)"
            )
