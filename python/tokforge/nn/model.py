"""The decoder-only transformer: blocks, the forward pass, and generation with a KV cache.

The road from ids to the next token, as :func:`forward` walks it::

    ids -> wte[ids] (+ positions) -> n_layers x block -> ln_f -> x @ wte^T -> logits
    block (pre-LN):  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
    block (post-LN): x = ln_1(x + attn(x));  x = ln_2(x + mlp(x))

Parameters are nested dicts named like the GPT-2 checkpoint (``params["h"][0]["attn"]["c_attn"]
["w"]`` is ``h.0.attn.c_attn.weight`` there); see :mod:`tokforge.nn.weights` for their shapes.

The KV cache is the list of every layer's keys and values seen so far. :func:`forward` takes the
old list (``past``) and returns the new one (``present``), so a cached step is the same pure
function as an uncached one, only fed one token at a time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from .config import Config, Params
from .functional import (
    attention,
    embed,
    ffn,
    layer_norm,
    linear,
    merge_heads,
    rope,
    rope_angles,
    sinusoidal_positions,
    split_heads,
)
from .sampling import check_sampling, make_rng, sample_token
from .weights import check_params, init_params, load_gpt2, load_npz, save_npz

__all__ = [
    "Generation",
    "KVCache",
    "Params",
    "Trace",
    "Transformer",
    "block",
    "forward",
    "multi_head_attention",
]

KVCache = list[tuple[np.ndarray, np.ndarray]]
"""Per layer, ``(k, v)``, each ``[n_kv_head, n_past, d_head]``: keys after RoPE, if any."""
Trace = Callable[[str, np.ndarray], None]
"""Called with a name (``"h.0.attn.weights"``) and an intermediate array, for inspection."""


def _silent(name: str, value: np.ndarray) -> None:
    """The trace used when nobody listens."""


def multi_head_attention(
    x: np.ndarray,
    attn: Params,
    n_head: int,
    n_kv_head: int,
    rope_cos_sin: tuple[np.ndarray, np.ndarray] | None = None,
    past: tuple[np.ndarray, np.ndarray] | None = None,
    causal: bool = True,
    trace: Trace = _silent,
    name: str = "attn",
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Multi-head (or grouped-query) self-attention with output projection W_O.

    ``attn["c_attn"]`` projects to queries, keys and values at once (GPT-2's fused layout: the
    first ``d_model`` columns are Q, then ``n_kv_head * d_head`` for K, then as many for V);
    ``attn["c_proj"]`` is W_O. Query head ``h`` reads K/V head ``h // (n_head // n_kv_head)``.
    Returns ``(output, (k, v))`` where ``k, v`` include ``past``: the cache for the next step.
    """
    d_model = x.shape[-1]
    d_head = d_model // n_head
    kv_dim = n_kv_head * d_head
    group = n_head // n_kv_head

    qkv = linear(x, **attn["c_attn"])  # [n_seq, d_model] -> [n_seq, d_model + 2*kv_dim]
    q, k, v = np.split(qkv, [d_model, d_model + kv_dim], axis=-1)  # -> [n_seq, d_model],
    #                                                                  2 x [n_seq, kv_dim]
    q = split_heads(q, n_head)  # [n_seq, d_model] -> [n_head, n_seq, d_head]
    k = split_heads(k, n_kv_head)  # [n_seq, kv_dim] -> [n_kv_head, n_seq, d_head]
    v = split_heads(v, n_kv_head)  # [n_seq, kv_dim] -> [n_kv_head, n_seq, d_head]
    if rope_cos_sin is not None:
        q = rope(q, *rope_cos_sin)  # [n_head, n_seq, d_head], rotated by position
        k = rope(k, *rope_cos_sin)  # [n_kv_head, n_seq, d_head], rotated by position
    if past is not None:
        k = np.concatenate([past[0], k], axis=-2)  # [n_kv_head, n_past + n_seq, d_head]
        v = np.concatenate([past[1], v], axis=-2)  # [n_kv_head, n_past + n_seq, d_head]
    trace(f"{name}.q", q)
    trace(f"{name}.k", k)
    trace(f"{name}.v", v)

    n_seq, n_kv = q.shape[1], k.shape[1]
    q_grouped = q.reshape(n_kv_head, group, n_seq, d_head)  # [n_head, n_seq, d_head]
    #                                                  -> [n_kv_head, group, n_seq, d_head]
    out, weights = attention(q_grouped, k[:, None], v[:, None], causal=causal)
    #   q [n_kv_head, group, n_seq, d_head], k/v [n_kv_head, 1, n_kv, d_head]
    #   -> out [n_kv_head, group, n_seq, d_head], weights [n_kv_head, group, n_seq, n_kv]
    out = out.reshape(n_head, n_seq, d_head)  # -> [n_head, n_seq, d_head]
    weights = weights.reshape(n_head, n_seq, n_kv)  # -> [n_head, n_seq, n_kv]
    trace(f"{name}.weights", weights)
    trace(f"{name}.heads", out)
    concat = merge_heads(out)  # [n_head, n_seq, d_head] -> [n_seq, d_model]
    y = linear(concat, **attn["c_proj"])  # W_O: [n_seq, d_model] -> [n_seq, d_model]
    trace(f"{name}.c_proj", y)
    return y, (k, v)


def block(
    x: np.ndarray,
    p: Params,
    config: Config,
    rope_cos_sin: tuple[np.ndarray, np.ndarray] | None = None,
    past: tuple[np.ndarray, np.ndarray] | None = None,
    causal: bool = True,
    trace: Trace = _silent,
    name: str = "h.0",
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """One transformer block: attention and MLP, each wrapped in a residual and a LayerNorm.

    Pre-LN (GPT-2) normalises the input of each sub-layer and leaves the residual stream
    untouched; post-LN (the 2017 paper) normalises after each residual addition.
    """
    eps = config.layer_norm_eps
    n_kv_head = config.n_kv_heads or config.n_heads

    def attend(h: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        return multi_head_attention(
            h,
            p["attn"],
            config.n_heads,
            n_kv_head,
            rope_cos_sin,
            past,
            causal,
            trace,
            f"{name}.attn",
        )

    if config.norm == "pre":
        h = layer_norm(x, **p["ln_1"], eps=eps)  # [n_seq, d_model]
        trace(f"{name}.ln_1", h)
        a, present = attend(h)  # [n_seq, d_model] -> [n_seq, d_model]
        x = x + a  # residual: [n_seq, d_model]
        trace(f"{name}.resid_attn", x)
        h = layer_norm(x, **p["ln_2"], eps=eps)  # [n_seq, d_model]
        trace(f"{name}.ln_2", h)
        m = ffn(h, **p["mlp"], activation=config.activation)  # [n_seq, d_model] -> [n_seq, d_model]
        trace(f"{name}.mlp", m)
        x = x + m  # residual: [n_seq, d_model]
        trace(f"{name}.resid_mlp", x)
    else:
        a, present = attend(x)  # [n_seq, d_model] -> [n_seq, d_model]
        x = layer_norm(x + a, **p["ln_1"], eps=eps)  # residual then norm: [n_seq, d_model]
        trace(f"{name}.ln_1", x)
        m = ffn(x, **p["mlp"], activation=config.activation)  # [n_seq, d_model] -> [n_seq, d_model]
        trace(f"{name}.mlp", m)
        x = layer_norm(x + m, **p["ln_2"], eps=eps)  # residual then norm: [n_seq, d_model]
        trace(f"{name}.ln_2", x)
    return x, present


def forward(
    ids: Sequence[int] | np.ndarray,
    params: Params,
    config: Config,
    past: KVCache | None = None,
    last_only: bool = False,
    trace: Trace = _silent,
) -> tuple[np.ndarray, KVCache]:
    """Logits for every position of ``ids``, continuing after the cached ``past`` if given.

    Returns ``(logits, present)``: ``logits`` is ``[n_seq, n_vocab]`` (``[1, n_vocab]`` with
    ``last_only``, which skips the output projection of the other rows), ``present`` is the
    cache after these tokens.
    """
    ids = np.asarray(ids, dtype=np.int64)  # [n_seq]
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError(f"ids must be a non-empty 1-D sequence, got shape {ids.shape}")
    n_past = 0 if not past else past[0][0].shape[-2]
    n_seq = ids.shape[0]
    if n_past + n_seq > config.max_seq_len:
        raise ValueError(
            f"sequence of {n_past + n_seq} tokens exceeds max_seq_len={config.max_seq_len}"
        )
    positions = np.arange(n_past, n_past + n_seq)  # [n_seq]

    x = embed(ids, params["wte"])  # [n_seq] -> [n_seq, d_model]
    trace("wte", x)
    if config.positional == "learned":
        x = x + params["wpe"][positions]  # [n_seq, d_model] + [n_seq, d_model]
    elif config.positional == "sinusoidal":
        x = x + sinusoidal_positions(positions, config.d_model)  # [n_seq, d_model]
    trace("positions", x)
    rope_cos_sin = (
        rope_angles(positions, config.head_dim, config.rope_base)  # 2 x [n_seq, d_head/2]
        if config.positional == "rope"
        else None
    )

    present: KVCache = []
    for i, block_params in enumerate(params["h"]):
        layer_past = past[i] if past else None
        x, kv = block(x, block_params, config, rope_cos_sin, layer_past, True, trace, f"h.{i}")
        present.append(kv)  # 2 x [n_kv_head, n_past + n_seq, d_head]

    if config.norm == "pre":
        x = layer_norm(x, **params["ln_f"], eps=config.layer_norm_eps)  # [n_seq, d_model]
        trace("ln_f", x)
    head = params["wte"] if config.tie_embeddings else params["lm_head"]["w"]  # [n_vocab, d_model]
    if last_only:
        # One row of logits is a matrix-vector product that streams the whole head from memory
        # and dominates a cached step at large vocabularies. einsum's row-by-row dot products
        # over the [n_vocab, d_model] table measured ~1.4x faster than x @ head.T through
        # OpenBLAS's gemv (7 ms vs 10 ms for 50257 x 256 in float64); same numbers to rounding.
        logits = np.einsum("vd,d->v", head, x[-1])[None, :]  # [n_vocab, d_model] . [d_model]
        #                                                       -> [1, n_vocab]
    else:
        logits = x @ head.T  # [n_seq, d_model] @ [d_model, n_vocab] -> [n_seq, n_vocab]
    trace("logits", logits)
    return logits, present


class Generation(list[int]):
    """The ids a generation produced: a ``list[int]`` of the new tokens (the prompt excluded,
    an EOS included when it stopped there), carrying three attributes:

    - ``prompt_ids``: the prompt as ids;
    - ``text``: the new tokens decoded by the model's tokenizer, without a final EOS (``None``
      when the model has no tokenizer);
    - ``stop_reason``: ``"eos"``, ``"max_new_tokens"`` or ``"max_seq_len"``.
    """

    def __init__(
        self, ids: Sequence[int], prompt_ids: Sequence[int], text: str | None, stop_reason: str
    ) -> None:
        super().__init__(ids)
        self.prompt_ids = list(prompt_ids)
        self.text = text
        self.stop_reason = stop_reason


class TokenizerLike(Protocol):
    """What the model asks of a tokenizer (tiktoken's names; ``tokforge.Tokenizer`` fits)."""

    @property
    def n_vocab(self) -> int: ...

    def encode(self, text: str, *, allowed_special: Any = ...) -> list[int]: ...

    def decode_single_token_bytes(self, token: int) -> bytes: ...


class Transformer:
    """A GPT-style decoder in NumPy: ``forward`` for logits, ``generate``/``stream`` for text.

    ``Transformer(config, seed=0)`` draws random weights (see :func:`tokforge.nn.init_params`);
    pass ``params=`` to use given ones (checked against ``config``). With a ``tokenizer`` the
    generation methods accept text prompts and decode what they produce.

    >>> model = Transformer(Config(vocab_size=10, d_model=8, n_layers=1, n_heads=2), seed=0)
    >>> model.forward([1, 2, 3]).shape
    (3, 10)
    """

    def __init__(
        self,
        config: Config,
        seed: int = 0,
        *,
        params: Params | None = None,
        tokenizer: TokenizerLike | None = None,
    ) -> None:
        if params is None:
            params = init_params(config, seed)
        else:
            check_params(params, config)
        self.config = config
        self.params = params
        self.tokenizer = tokenizer

    # -- weights -------------------------------------------------------------------------------

    def save(self, path: str | Any) -> None:
        """Write config and weights to one ``.npz`` file (see :func:`tokforge.nn.save_npz`)."""
        save_npz(path, self.params, self.config)

    @classmethod
    def load(cls, path: str | Any, tokenizer: TokenizerLike | None = None) -> Transformer:
        """Read a model written by :meth:`save`."""
        params, config = load_npz(path)
        return cls(config, params=params, tokenizer=tokenizer)

    @classmethod
    def from_gpt2(
        cls, path: str | Any, tokenizer: TokenizerLike | None = None, dtype: Any = np.float64
    ) -> Transformer:
        """Load a GPT-2-layout ``.safetensors`` file (e.g. GPT-2 small's ``model.safetensors``,
        with its ``config.json`` beside it if present). Reads local files only."""
        params, config = load_gpt2(path, dtype=dtype)
        if config.eos_id is None and tokenizer is not None:
            # No config.json to say which id ends a text: take the tokenizer's <|endoftext|>.
            eos = Config.from_tokenizer(tokenizer, vocab_size=config.vocab_size).eos_id
            config = dataclasses.replace(config, eos_id=eos)
        return cls(config, params=params, tokenizer=tokenizer)

    # -- inference -----------------------------------------------------------------------------

    def forward(self, ids: Sequence[int] | np.ndarray, trace: Trace = _silent) -> np.ndarray:
        """Logits ``[len(ids), vocab_size]``: row ``i`` scores the token after ``ids[: i + 1]``."""
        logits, _ = forward(ids, self.params, self.config, trace=trace)
        return logits

    __call__ = forward

    def step(
        self, ids: Sequence[int] | np.ndarray, past: KVCache | None = None
    ) -> tuple[np.ndarray, KVCache]:
        """Feed ``ids`` after the cached ``past``; returns (logits of the last position
        ``[n_vocab]``, the grown cache)."""
        logits, present = forward(ids, self.params, self.config, past=past, last_only=True)
        return logits[0], present

    def stream(
        self,
        prompt: str | Sequence[int] | np.ndarray,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | np.random.Generator | None = None,
        use_cache: bool = True,
        eos_id: int | str | None = "config",
    ) -> Iterator[int]:
        """Yield new token ids one at a time, as they are sampled.

        Stops after ``max_new_tokens``, when the sequence fills ``max_seq_len``, or right after
        yielding ``eos_id`` (by default the config's; ``None`` disables it). ``temperature=0``
        is greedy decoding. ``seed`` makes sampling reproducible. With ``use_cache`` each step
        feeds only the newest token and reuses earlier keys and values; without it, every step
        runs the whole sequence again (same result, slower: the reference for the cache).
        """
        # Checked here, not at the first next(): a bad argument fails where it was passed.
        prompt_ids = self.encode_prompt(prompt)
        eos = self._eos(eos_id)
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        check_sampling(temperature, top_k, top_p)
        n_new = min(max_new_tokens, self.config.max_seq_len - len(prompt_ids))
        return self._sample_loop(
            prompt_ids, n_new, temperature, top_k, top_p, make_rng(seed), use_cache, eos
        )

    def _sample_loop(
        self,
        prompt_ids: list[int],
        n_new: int,
        temperature: float,
        top_k: int | None,
        top_p: float | None,
        rng: np.random.Generator,
        use_cache: bool,
        eos: int | None,
    ) -> Iterator[int]:
        sequence = list(prompt_ids)
        past: KVCache | None = None
        for i in range(n_new):
            if use_cache:
                # First step: the whole prompt fills the cache; later: only the newest token.
                fed = sequence if i == 0 else sequence[-1:]
                logits, past = self.step(fed, past)  # [n_vocab]
            else:
                logits, _ = self.step(sequence)  # [n_vocab], recomputed from scratch
            token = sample_token(logits, rng, temperature, top_k, top_p)
            sequence.append(token)
            yield token
            if token == eos:
                return

    def generate(
        self,
        prompt: str | Sequence[int] | np.ndarray,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | np.random.Generator | None = None,
        use_cache: bool = True,
        eos_id: int | str | None = "config",
    ) -> Generation:
        """Generate up to ``max_new_tokens`` ids after ``prompt`` (ids, or text if the model
        has a tokenizer). Same arguments as :meth:`stream`; returns a :class:`Generation`, a
        list of the new ids that also carries ``text`` and ``stop_reason``.

        >>> model = Transformer(Config(vocab_size=10, d_model=8, n_layers=1, n_heads=2), seed=0)
        >>> out = model.generate([1, 2], 3, temperature=0)
        >>> len(out), out.stop_reason
        (3, 'max_new_tokens')
        """
        prompt_ids = self.encode_prompt(prompt)
        eos = self._eos(eos_id)
        new = list(
            self.stream(prompt_ids, max_new_tokens, temperature, top_k, top_p, seed, use_cache, eos)
        )
        if new and eos is not None and new[-1] == eos:
            reason = "eos"
        elif len(new) == max_new_tokens:
            reason = "max_new_tokens"
        else:
            reason = "max_seq_len"
        text_ids = new[:-1] if reason == "eos" else new
        text = self.decode(text_ids) if self.tokenizer is not None else None
        return Generation(new, prompt_ids, text, reason)

    def _eos(self, eos_id: int | str | None) -> int | None:
        if eos_id == "config":
            return self.config.eos_id
        if eos_id is not None and not isinstance(eos_id, (int, np.integer)):
            raise ValueError(f'eos_id must be an id, None or "config", got {eos_id!r}')
        return None if eos_id is None else int(eos_id)

    # -- text ----------------------------------------------------------------------------------

    def encode_prompt(self, prompt: str | Sequence[int] | np.ndarray) -> list[int]:
        """Ids for a prompt given as ids or, with a tokenizer, as text (special tokens such as
        ``<|endoftext|>`` written in the text are allowed)."""
        if isinstance(prompt, str):
            if self.tokenizer is None:
                raise ValueError("a text prompt needs a tokenizer: Transformer(..., tokenizer=...)")
            ids = list(self.tokenizer.encode(prompt, allowed_special="all"))
        else:
            ids = [int(i) for i in np.asarray(prompt).reshape(-1)]
        if not ids:
            raise ValueError("the prompt is empty: give at least one token")
        bad = [i for i in ids if not 0 <= i < self.config.vocab_size]
        if bad:
            raise ValueError(f"prompt ids outside [0, {self.config.vocab_size}): {bad[:5]}")
        if len(ids) > self.config.max_seq_len:
            raise ValueError(
                f"prompt of {len(ids)} tokens exceeds max_seq_len={self.config.max_seq_len}"
            )
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text for ``ids`` through the tokenizer. A random model can emit ids the tokenizer
        does not have (gaps between a vocabulary's ordinary and special tokens): those decode to
        U+FFFD, like invalid UTF-8."""
        if self.tokenizer is None:
            raise ValueError("decoding needs a tokenizer: Transformer(..., tokenizer=...)")
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")

    def token_bytes(self, token: int) -> bytes:
        """The bytes of one token, or the UTF-8 of U+FFFD when the tokenizer has no such id."""
        if self.tokenizer is None:
            raise ValueError("decoding needs a tokenizer: Transformer(..., tokenizer=...)")
        try:
            return bytes(self.tokenizer.decode_single_token_bytes(token))
        except (KeyError, ValueError, IndexError, OverflowError):
            return "\ufffd".encode()

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Transformer(vocab_size={c.vocab_size}, d_model={c.d_model}, n_layers={c.n_layers}, "
            f"n_heads={c.n_heads}, n_kv_heads={c.n_kv_heads}, positional={c.positional!r})"
        )
