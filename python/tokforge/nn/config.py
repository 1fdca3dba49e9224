"""The one configuration object of the reference transformer."""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import TokforgeError

Params = dict[str, Any]
"""Nested dict of arrays, GPT-2 names: ``wte``, ``wpe``, ``h`` (a list of blocks), ``ln_f``."""

__all__ = ["ACTIVATIONS", "NORMS", "POSITIONALS", "Config", "Params"]

POSITIONALS = ("learned", "sinusoidal", "rope", "none")
NORMS = ("pre", "post")
ACTIVATIONS = ("gelu", "gelu_tanh")
_POSITIVE_INTS = (
    "vocab_size",
    "d_model",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "d_ff",
    "max_seq_len",
)


class _HasVocab(Protocol):
    @property
    def n_vocab(self) -> int: ...


@dataclass(frozen=True)
class Config:
    """Shape and wiring of a decoder-only transformer.

    ``n_kv_heads`` and ``d_ff`` may be left as ``None`` and are then filled in (``n_heads`` and
    ``4 * d_model``), so after construction every field holds a concrete value.

    >>> Config(vocab_size=100, d_model=32, n_heads=4, n_kv_heads=1).head_dim
    8
    """

    # Token ids run over [0, vocab_size); Config.from_tokenizer takes it from a tokenizer.
    vocab_size: int = 50257  # GPT-2's vocabulary, so a GPT-2 checkpoint needs no override
    d_model: int = 64  # small: a random model runs in milliseconds, and the trace stays readable
    n_layers: int = 2  # enough for the trace to show a block feeding the next one
    n_heads: int = 4  # head width 16, and several heads to draw in the attention picture
    # Key/value heads: equal to n_heads is multi-head attention (MHA), fewer is grouped-query
    # attention (GQA: each K/V head serves n_heads / n_kv_heads query heads), 1 is multi-query.
    n_kv_heads: int | None = None  # None: n_heads, plain MHA as in GPT-2
    d_ff: int | None = None  # None: 4 * d_model, the ratio of both the 2017 paper and GPT-2
    max_seq_len: int = 256  # context length; sizes the learned position table and the KV cache
    positional: str = "learned"  # GPT-2's absolute table; "sinusoidal", "rope" or "none"
    norm: str = "pre"  # pre-LN (GPT-2) trains without warm-up tricks; "post" is the 2017 layout
    activation: str = "gelu_tanh"  # GPT-2's tanh GELU; "gelu" (exact, erf) costs ~5x more here
    tie_embeddings: bool = True  # the output head reuses wte, as GPT-2 does: one fewer matrix
    layer_norm_eps: float = 1e-5  # GPT-2's and PyTorch's default
    rope_base: float = 10000.0  # the RoPE paper's base wavelength
    eos_id: int | None = None  # generation stops after emitting this id; None never stops early

    def __post_init__(self) -> None:
        # The dataclass is frozen so a model's config cannot drift under it; the two derived
        # defaults are filled in here, which is the one place a frozen dataclass may be written.
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", 4 * self.d_model)
        self._validate()

    def _validate(self) -> None:
        for name in _POSITIVE_INTS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TokforgeError(f"Config.{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise TokforgeError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}"
            )
        if self.n_heads % (self.n_kv_heads or self.n_heads):
            raise TokforgeError(
                f"n_heads={self.n_heads} is not a multiple of n_kv_heads={self.n_kv_heads}"
            )
        _check_choice("positional", self.positional, POSITIONALS)
        _check_choice("norm", self.norm, NORMS)
        _check_choice("activation", self.activation, ACTIVATIONS)
        if self.positional == "sinusoidal" and self.d_model % 2:
            raise TokforgeError(f"sinusoidal positions need an even d_model, got {self.d_model}")
        if self.positional == "rope" and self.head_dim % 2:
            raise TokforgeError(f"RoPE needs an even head width, got {self.head_dim}")
        if self.eos_id is not None and not (
            isinstance(self.eos_id, int) and 0 <= self.eos_id < self.vocab_size
        ):
            raise TokforgeError(f"eos_id={self.eos_id} is outside [0, {self.vocab_size})")
        if not self.layer_norm_eps >= 0:
            raise TokforgeError(f"layer_norm_eps must be >= 0, got {self.layer_norm_eps!r}")

    @property
    def head_dim(self) -> int:
        """Width of one attention head: ``d_model // n_heads``."""
        return self.d_model // self.n_heads

    @property
    def kv_dim(self) -> int:
        """Width of the keys (and of the values) of all K/V heads together."""
        return (self.n_kv_heads or self.n_heads) * self.head_dim

    @classmethod
    def from_tokenizer(cls, tokenizer: _HasVocab, **overrides: Any) -> Config:
        """A config whose ``vocab_size`` and ``eos_id`` come from a tokenizer.

        ``eos_id`` is the tokenizer's ``<|endoftext|>`` when it has one (``eot_token``).
        """
        fields: dict[str, Any] = {"vocab_size": tokenizer.n_vocab}
        with contextlib.suppress(AttributeError, KeyError):  # KeyError: no <|endoftext|>
            # eot_token is optional, so not in _HasVocab: without it eos_id stays unset
            fields["eos_id"] = tokenizer.eot_token  # type: ignore[attr-defined]
        fields.update(overrides)
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Config:
        """Inverse of :meth:`to_dict`; unknown keys are an error, missing ones take defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TokforgeError(f"unknown Config fields: {', '.join(unknown)}")
        return cls(**data)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise TokforgeError(f"Config.{name} must be one of {', '.join(choices)}; got {value!r}")
