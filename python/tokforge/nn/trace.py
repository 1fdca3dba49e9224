"""Watch one forward pass: record every intermediate array, print the road step by step, and
draw each head's attention weights.

:func:`record` runs the model once with a listener that keeps a copy of each named array the
forward pass reports (``wte``, ``h.0.ln_1``, ``h.0.attn.weights``, ...). :func:`format_trace`
turns a recording into the text ``tokforge run-model --trace`` prints; :func:`draw_attention`
turns its attention weights into a grid of heatmaps (needs matplotlib).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..files import write_atomic
from .model import Transformer
from .sampling import sampling_distribution

__all__ = [
    "Recording",
    "draw_attention",
    "format_trace",
    "matplotlib_figure",
    "record",
    "token_label",
]

# Up to this many tokens the trace lists the last token's weight on every key; above it, the
# six heaviest, so that a line still fits a terminal.
_ALL_KEYS = 8


@dataclass
class Recording:
    """The arrays one forward pass produced, in the order it produced them."""

    ids: list[int]
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)

    def __getitem__(self, name: str) -> np.ndarray:
        for step, value in self.steps:
            if step == name:
                return value
        raise KeyError(name)

    @property
    def logits(self) -> np.ndarray:
        """``[n_seq, n_vocab]``: the last step of every forward pass."""
        return self["logits"]

    def attention_weights(self) -> np.ndarray:
        """``[n_layers, n_heads, n_seq, n_seq]``: every head's softmax weights, layer by layer."""
        layers = [value for name, value in self.steps if name.endswith(".attn.weights")]
        return np.stack(layers)  # n_layers x [n_head, n_seq, n_seq] -> [n_layers, n_head, ...]


def record(model: Transformer, ids: Sequence[int]) -> Recording:
    """Run ``model.forward(ids)`` and keep a copy of every array it reports."""
    rec = Recording(ids=[int(i) for i in ids])
    model.forward(rec.ids, trace=lambda name, value: rec.steps.append((name, np.array(value))))
    return rec


def token_label(model: Transformer, token: int) -> str:
    """A short printable form of one token: its text in quotes (``' cat'``), or ``#id`` when
    the model has no tokenizer."""
    if model.tokenizer is None:
        return f"#{token}"
    return repr(model.token_bytes(token).decode("utf-8", errors="replace"))


def _vec(a: np.ndarray, n: int = 4) -> str:
    """The first ``n`` values of a vector, aligned, then how many more there are."""
    shown = " ".join(f"{x:+.4f}" for x in a[:n])
    return f"[{shown}{' ...' if a.shape[0] > n else ''}]"


def _shape(a: np.ndarray | Sequence[int]) -> str:
    return "[" + ", ".join(str(s) for s in np.shape(a)) + "]"


def format_trace(
    model: Transformer,
    rec: Recording,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    sampled: int | None = None,
    top: int = 5,
) -> str:
    """The pipeline of one next-token prediction, step by step, with shapes and values.

    Vectors are shown by their first four entries, taken from the last position (the one whose
    logits predict the next token). Attention shows, for every head, how the last token spreads
    its weight over the sequence. The trace ends with the ``top`` likeliest next tokens and, if
    given, the ``sampled`` one.
    """
    c = model.config
    ids = rec.ids
    n = len(ids)
    out: list[str] = []
    step = 0

    def head(title: str, formula: str, shapes: str, value: str = "") -> None:
        nonlocal step
        step += 1
        line = f"{step:>2}. {title:<12} {formula:<34} {shapes:<24} {value}"
        out.append(line.rstrip())

    def sub(title: str, formula: str, shapes: str, value: str = "") -> None:
        out.append(f"      {title:<10} {formula:<34} {shapes:<24} {value}".rstrip())

    kv = c.n_kv_heads or c.n_heads
    kind = "MHA" if kv == c.n_heads else "MQA" if kv == 1 else f"GQA, {kv} K/V heads"
    out.append(
        f"model: vocab {c.vocab_size}, d_model {c.d_model}, {c.n_layers} layers, "
        f"{c.n_heads} heads ({kind}), d_ff {c.d_ff}, {c.positional} positions, "
        f"{c.norm}-LN, {c.activation}, {'tied' if c.tie_embeddings else 'untied'} head"
    )
    out.append("")

    head("tokenize", "text -> ids", f"{n} tokens")
    for pos, token in enumerate(ids):
        out.append(f"      {pos:>4}  {token:>7}  {token_label(model, token)}")

    x = rec["wte"]  # [n_seq, d_model]
    head("embed", "x = wte[ids]", f"[{n}] -> {_shape(x)}", "x[-1] = " + _vec(x[-1]))
    x = rec["positions"]  # [n_seq, d_model]
    formula = {
        "learned": f"x = x + wpe[0:{n}]",
        "sinusoidal": f"x = x + PE_sin/cos[0:{n}]",
        "rope": "none added: RoPE rotates q, k",
        "none": "none (no position signal)",
    }[c.positional]
    head(
        "positions", formula, _shape(x), "x[-1] = " + _vec(x[-1]) if c.positional != "rope" else ""
    )

    for layer in range(c.n_layers):
        p = f"h.{layer}"
        head(f"block {layer}", f"{c.norm}-LN transformer block", "")
        if c.norm == "pre":
            h = rec[f"{p}.ln_1"]  # [n_seq, d_model]
            sub("ln_1", "h = LayerNorm(x)", _shape(h), "h[-1] = " + _vec(h[-1]))
        q = rec[f"{p}.attn.q"]  # [n_head, n_seq, d_head]
        k = rec[f"{p}.attn.k"]  # [n_kv_head, n_seq, d_head]
        v = rec[f"{p}.attn.v"]  # [n_kv_head, n_seq, d_head]
        rope_note = ", RoPE on q, k" if c.positional == "rope" else ""
        sub(
            "q, k, v",
            f"h @ c_attn, split heads{rope_note}",
            f"[{n}, {c.d_model}] -> q {_shape(q)}, k {_shape(k)}, v {_shape(v)}",
        )
        w = rec[f"{p}.attn.weights"]  # [n_head, n_seq, n_seq]
        sub(
            "attention",
            f"softmax(q k^T / sqrt({c.head_dim}) + mask)",
            _shape(w),
            "last token's weights:",
        )
        labels = [token_label(model, t) for t in ids]
        for hd in range(w.shape[0]):
            # Short prompts: every key in order. Long ones: the keys with the most weight.
            keys = (
                range(n) if n <= _ALL_KEYS else np.argsort(-w[hd, -1], kind="stable")[:6]
            )  # key ids
            spread = "  ".join(f"{labels[j]} {w[hd, -1, j]:.3f}" for j in keys)
            more = "" if n <= _ALL_KEYS else f"  (top 6 of {n})"
            out.append(f"{'':18}head {hd}: {spread}{more}")
        heads = rec[f"{p}.attn.heads"]  # [n_head, n_seq, d_head]
        sub("heads", "weights @ v", _shape(heads))
        a = rec[f"{p}.attn.c_proj"]  # [n_seq, d_model]
        sub("W_O", "concat(heads) @ c_proj", f"{_shape(heads)} -> {_shape(a)}", _vec(a[-1]))
        if c.norm == "pre":
            x = rec[f"{p}.resid_attn"]  # [n_seq, d_model]
            sub("residual", "x = x + attn", _shape(x), "x[-1] = " + _vec(x[-1]))
            h = rec[f"{p}.ln_2"]  # [n_seq, d_model]
            sub("ln_2", "h = LayerNorm(x)", _shape(h), "h[-1] = " + _vec(h[-1]))
        else:
            x = rec[f"{p}.ln_1"]  # [n_seq, d_model]
            sub("ln_1", "x = LayerNorm(x + attn)", _shape(x), "x[-1] = " + _vec(x[-1]))
        m = rec[f"{p}.mlp"]  # [n_seq, d_model]
        sub(
            "mlp",
            f"{c.activation}(h @ c_fc) @ c_proj",
            f"[{n}, {c.d_model}] -> [{n}, {c.d_ff}] -> {_shape(m)}",
            _vec(m[-1]),
        )
        if c.norm == "pre":
            x = rec[f"{p}.resid_mlp"]  # [n_seq, d_model]
            sub("residual", "x = x + mlp", _shape(x), "x[-1] = " + _vec(x[-1]))
        else:
            x = rec[f"{p}.ln_2"]  # [n_seq, d_model]
            sub("ln_2", "x = LayerNorm(x + mlp)", _shape(x), "x[-1] = " + _vec(x[-1]))

    if c.norm == "pre":
        x = rec["ln_f"]  # [n_seq, d_model]
        head("ln_f", "x = LayerNorm(x)", _shape(x), "x[-1] = " + _vec(x[-1]))
    logits = rec.logits  # [n_seq, n_vocab]
    head_name = "wte^T" if c.tie_embeddings else "lm_head^T"
    head("logits", f"x @ {head_name}", f"{_shape(x)} -> {_shape(logits)}", _vec(logits[-1]))

    last = logits[-1]  # [n_vocab]
    greedy = temperature == 0
    probs = sampling_distribution(last, 1.0 if greedy else temperature)  # [n_vocab]
    filtered = sampling_distribution(last, temperature, top_k, top_p)  # [n_vocab]
    t_text = "T=0: greedy, p shown at T=1" if greedy else f"T={temperature:g}"
    head(
        "softmax", "p = softmax(logits[-1] / T)", _shape(probs), f"{t_text}, sum {probs.sum():.6f}"
    )
    filters = []
    if top_k is not None:
        filters.append(f"top_k={top_k}")
    if top_p is not None:
        filters.append(f"top_p={top_p:g}")
    if filters and not greedy:
        kept = int(np.count_nonzero(filtered))
        head("filter", ", ".join(filters) + ", renormalise", f"keeps {kept}")

    order = np.argsort(-probs, kind="stable")[:top]  # [top] ids, likeliest first
    head(f"top-{len(order)}", "next token", "")
    for rank, token in enumerate(order, 1):
        p_text = f"p = {probs[token]:.4g}"
        if filters and not greedy:
            p_text += f"  (after filter {filtered[token]:.4g})"
        out.append(
            f"      {rank}. {token_label(model, int(token)):<20} id {int(token):>7}  {p_text}"
        )
    if sampled is not None:
        how = "argmax" if greedy else "drawn from the filtered p" if filters else "drawn from p"
        head(
            "sample",
            how,
            "",
            f"-> {token_label(model, sampled)} (id {sampled}, p = {filtered[sampled]:.4g})",
        )
    return "\n".join(out)


def matplotlib_figure() -> Any:
    """matplotlib's ``Figure`` class (no pyplot, so no GUI backend or global state), or an
    ``ImportError`` that says how to get it."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "drawing attention needs matplotlib, which is not installed (pip install matplotlib)"
        ) from None
    return Figure


def draw_attention(
    model: Transformer, rec: Recording, path: str | os.PathLike[str], dpi: int = 100
) -> None:
    """Save every head's attention weights as a grid of heatmaps: one row per layer, one column
    per head; rows of a heatmap are queries, columns the keys they attend to.

    Raises ``ImportError`` with an explanation when matplotlib is not installed.
    """
    Figure = matplotlib_figure()
    weights = rec.attention_weights()  # [n_layers, n_head, n_seq, n_seq]
    n_layers, n_head, n_seq, _ = weights.shape
    labels = [token_label(model, t) for t in rec.ids]
    size = max(2.0, min(0.45 * n_seq, 5.0))  # inches per heatmap: readable labels, bounded
    fig = Figure(figsize=(size * n_head + 1.0, size * n_layers + 0.6), layout="constrained")
    axes = fig.subplots(n_layers, n_head, squeeze=False)
    image = None
    for layer in range(n_layers):
        for hd in range(n_head):
            ax = axes[layer][hd]
            image = ax.imshow(weights[layer, hd], vmin=0.0, vmax=1.0, cmap="viridis")
            ax.set_title(f"layer {layer}, head {hd}", fontsize=9)
            if n_seq <= 24:
                ax.set_xticks(range(n_seq), labels, rotation=90, fontsize=7)
                ax.set_yticks(range(n_seq), labels, fontsize=7)
            else:
                ax.set_xticks([])
                ax.set_yticks([])
    fig.suptitle("attention weights (row: query, column: key)")
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="weight")
    buf = io.BytesIO()
    fig.savefig(buf, dpi=dpi, format=os.path.splitext(os.fspath(path))[1][1:] or "png")
    write_atomic(path, buf.getvalue())
