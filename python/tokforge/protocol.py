"""What the layers below :class:`tokforge.Tokenizer` may ask of a tokenizer.

:mod:`tokforge.inspect` and the tokenizer.json exporter (:mod:`tokforge.interop.hf_export`) sit
below the tokenizer module, so that :class:`~tokforge.Tokenizer` can call them
(:meth:`~tokforge.Tokenizer.explain`, :meth:`~tokforge.Tokenizer.to_hf_dict`) without an import
cycle. They take any object with this shape; :class:`~tokforge.Tokenizer` is the one tokforge
makes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["TokenizerLike"]


class TokenizerLike(Protocol):
    """The read-only part of :class:`~tokforge.Tokenizer` that inspection and export use."""

    @property
    def name(self) -> str: ...
    @property
    def n_vocab(self) -> int: ...
    @property
    def special_tokens(self) -> dict[str, int]: ...
    @property
    def merges(self) -> list[tuple[int, int]] | None: ...
    @property
    def metadata(self) -> dict[str, Any]: ...
    @property
    def mergeable_ranks(self) -> dict[bytes, int]: ...
    @property
    def _mergeable_ranks(self) -> dict[bytes, int]: ...
    @property
    def byte_fallback(self) -> list[int] | None: ...
    @property
    def pattern(self) -> str | None: ...
    @property
    def pretokenizer(self) -> str | Callable[[str], list[str]]: ...

    def encode(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | AbstractSet[str] = ...,
        disallowed_special: Literal["all"] | Collection[str] = ...,
    ) -> list[int]: ...
    def encode_to_numpy(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | AbstractSet[str] = ...,
        disallowed_special: Literal["all"] | Collection[str] = ...,
    ) -> npt.NDArray[np.uint32]: ...
    def encode_batch_to_numpy(
        self,
        text: Sequence[str],
        *,
        num_threads: int = ...,
        allowed_special: Literal["all"] | AbstractSet[str] = ...,
        disallowed_special: Literal["all"] | Collection[str] = ...,
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint64]]: ...
    def encode_single_token(self, text_or_bytes: str | bytes) -> int: ...
    def decode_single_token_bytes(self, token: int) -> bytes: ...
    def decode_tokens_bytes(self, tokens: Sequence[int]) -> list[bytes]: ...
    def merge_parts(self, token: int | bytes) -> list[int]: ...
    def split(self, text: str) -> list[str]: ...
    def token_kind(self, token: int) -> str: ...
