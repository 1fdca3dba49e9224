"""The public :class:`Tokenizer`: tiktoken's ``Encoding`` API over tokforge's Rust core, plus
loading, saving, pickling and a few things tiktoken does not offer.

It only wraps cores: which format a file is in and how a core is built from it is
:mod:`tokforge.interop.formats`; the views behind :meth:`Tokenizer.explain` and
:meth:`Tokenizer.lineage` are :mod:`tokforge.inspect`, which takes any tokenizer of this shape."""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import _core, files, registry
from ._core import CoreBPE
from .errors import DisallowedSpecialTokenError, TokforgeError, UnknownTokenError
from .inspect.explanation import Explanation, explain
from .inspect.merge_tree import Lineage, lineage
from .interop import formats, hf_export
from .interop.formats import PretokenizerLike

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["PretokenizerLike", "StreamDecoder", "Tokenizer"]

_DEFAULT_THREADS = 8
#: The default of ``allowed_special``: when a call passes this very object and
#: ``disallowed_special="all"`` (tiktoken's default policy), encoding takes a fast path that
#: neither builds nor converts the policy lists (about 1 µs a call, 5% of a 4 KB document).
_NO_SPECIALS: frozenset[str] = frozenset()
_AS_U4: Any = None


def _as_u4(buf: bytes) -> npt.NDArray[np.uint32]:
    """``buf`` as a read-only little-endian ``uint32`` array without a copy. ``frombuffer`` is
    bound to the dtype once (parsing ``"<u4"`` costs per call), so the calls after the first
    skip an ``import`` statement and the lookups (0.79 -> 0.65 us per
    ``encode_ordinary_to_numpy`` call on a one-letter text)."""
    global _AS_U4
    if _AS_U4 is None:
        import numpy as np

        _AS_U4 = functools.partial(np.frombuffer, dtype=np.dtype("<u4"))
    array: npt.NDArray[np.uint32] = _AS_U4(buf)
    return array


_T = TypeVar("_T")


def _text_call(call: Callable[..., _T], text: str | list[str], *args: Any) -> _T:
    """``call(text, *args)``. A ``str`` that is not valid UTF-8 (lone surrogates) makes the core
    raise ``UnicodeEncodeError``; then the call is made again with the text repaired as tiktoken
    does: round-tripped through UTF-16, so that surrogate pairs join and lone ones become
    U+FFFD. ``text`` is one text or a list of them."""
    try:
        # call(text) without an empty *args: the one-argument call is the hot one (a short
        # encode), and unpacking costs it about 50 ns
        return call(text, *args) if args else call(text)
    except UnicodeEncodeError:
        if isinstance(text, str):
            return call(_fix_surrogates(text), *args)
        return call([_fix_surrogates(t) for t in text], *args)


def _fix_surrogates(text: str) -> str:
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class Tokenizer:
    """A byte-level BPE tokenizer with tiktoken's ``Encoding`` API.

    Construct it as you would a ``tiktoken.Encoding`` (same arguments, same results), or with
    :meth:`from_tiktoken`, :meth:`load`, :meth:`from_merges`, or :func:`tokforge.train`.

    >>> from tokforge import get_encoding
    >>> enc = get_encoding("cl100k_base")  # doctest: +SKIP
    >>> enc.encode("hello world")  # doctest: +SKIP
    [15339, 1917]
    """

    _core: _core.CoreBPE
    _callable: Callable[[str], list[str]] | None

    def __init__(
        self,
        name: str = "",
        *,
        pat_str: str | None = None,
        mergeable_ranks: dict[bytes, int] | None = None,
        special_tokens: dict[str, int] | None = None,
        explicit_n_vocab: int | None = None,
        pretokenizer: PretokenizerLike | None = None,
        byte_fallback: Sequence[int] | None = None,
    ) -> None:
        if not isinstance(mergeable_ranks, Mapping):
            raise TypeError(
                "mergeable_ranks must be a dict {token bytes: rank}, "
                f"not {type(mergeable_ranks).__name__}"
            )
        special_tokens = formats.special_dict(special_tokens)
        args = formats.pretokenizer_args(pat_str, pretokenizer)
        core = _core.CoreBPE.from_ranks(
            list(mergeable_ranks.items()),
            list(special_tokens.items()),
            byte_fallback=None if byte_fallback is None else list(byte_fallback),
            name=name,
            **args,
        )
        self._init(core, args.get("callable"))
        if explicit_n_vocab:
            count = len(mergeable_ranks) + len(special_tokens)
            if count != explicit_n_vocab or self.max_token_value != explicit_n_vocab - 1:
                raise TokforgeError(
                    f"explicit_n_vocab={explicit_n_vocab} but the vocabulary has {count} tokens "
                    f"and max token value {self.max_token_value}"
                )

    def _init(
        self,
        core: CoreBPE,
        func: Callable[[str], list[str]] | None,
        sentencepiece: bool = False,
    ) -> None:
        self._core = core
        self._callable = func
        # (name, rank file path) of an encoding made by get_encoding: pickled by name
        self._registered_as: tuple[str, str] | None = None
        # Read from a SentencePiece .model: its charsmap follows sentencepiece, not tokenizers.
        self._sentencepiece = sentencepiece
        self._special_tokens: dict[str, int] = dict(core.special_tokens)
        self._special_set = frozenset(self._special_tokens)
        self._special_values = frozenset(self._special_tokens.values())
        self._default_disallowed = list(self._special_tokens)

    @classmethod
    def _from_core(cls, core: CoreBPE, func: Callable[[str], list[str]] | None = None) -> Tokenizer:
        self = cls.__new__(cls)
        self._init(core, func)
        return self

    @classmethod
    def _wrap(cls, loaded: formats.Loaded) -> Tokenizer:
        self = cls.__new__(cls)
        self._init(loaded.core, loaded.func, loaded.sentencepiece)
        return self

    # ----------------------------------------------------------------- constructors

    @classmethod
    def from_tiktoken(
        cls,
        path: str | os.PathLike[str],
        *,
        pattern: str | None = None,
        pretokenizer: PretokenizerLike | None = None,
        special_tokens: dict[str, int] | None = None,
        name: str | None = None,
    ) -> Tokenizer:
        """Loads a ``.tiktoken`` rank file (``base64 rank`` per line) with a pretokenizer
        (``pattern`` regex or ``pretokenizer`` preset/callable; default ``cl100k``) and special
        tokens. Malformed files raise :class:`~tokforge.errors.VocabFileError` with the line."""
        return cls._wrap(
            formats.from_tiktoken(
                path,
                pattern=pattern,
                pretokenizer=pretokenizer,
                special_tokens=special_tokens,
                name=name,
            )
        )

    @classmethod
    def from_merges(
        cls,
        merges: Iterable[tuple[int, int]],
        *,
        pattern: str | None = None,
        pretokenizer: PretokenizerLike | None = None,
        special_tokens: dict[str, int] | None = None,
        name: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> Tokenizer:
        """A byte-level BPE from its merges: ids 0..255 are the bytes, merge ``k`` joins two
        earlier ids into id ``256 + k``.

        >>> tok = Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="whitespace")
        >>> tok.encode("lower")
        [257, 101, 114]
        """
        return cls._wrap(
            formats.from_merges(
                merges,
                pattern=pattern,
                pretokenizer=pretokenizer,
                special_tokens=special_tokens,
                name=name,
                metadata=metadata,
            )
        )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        *,
        pattern: str | None = None,
        pretokenizer: PretokenizerLike | None = None,
        special_tokens: dict[str, int] | None = None,
    ) -> Tokenizer:
        """Loads a tokenizer, recognising the format by its content: tokforge JSON, a Hugging
        Face ``tokenizer.json``, a SentencePiece ``.model``, Mistral's Tekken JSON, a GGUF
        model file, GPT-2's ``vocab.json`` (with ``merges.txt`` beside it), or a ``.tiktoken``
        rank file (cl100k_base and o200k_base are
        recognised by their hash and get their pattern and special tokens; other rank files need
        ``pattern`` or ``pretokenizer``). A folder is searched for ``tokenizer.json``,
        ``tokenizer.model``, ``tekken.json``, then ``vocab.json`` + ``merges.txt``."""
        return cls._wrap(
            formats.load(
                path, pattern=pattern, pretokenizer=pretokenizer, special_tokens=special_tokens
            )
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the tokenizer atomically (a temporary file renamed over ``path``): the
        tokforge JSON file, or for a tokenizer read from a Hugging Face ``tokenizer.json`` (or
        converted to one), that JSON unchanged."""
        files.write_atomic(path, self._core.to_json_bytes())

    def to_tiktoken(self, path: str | os.PathLike[str]) -> None:
        """Writes the ordinary tokens as a ``.tiktoken`` rank file that tiktoken loads.

        Refused for tokenizers read from ``tokenizer.json``, SentencePiece or GPT-2 files:
        their merges follow a merge list, which a rank file cannot express exactly."""
        if self._core.hf_json is not None:
            raise TokforgeError(
                "a tokenizer read from tokenizer.json / SentencePiece / GPT-2 files merges by its "
                "merge list; a .tiktoken rank file cannot reproduce it (use to_hf)"
            )
        files.write_atomic(path, self._core.to_tiktoken_bytes())

    # ----------------------------------------------------------------- interop

    @classmethod
    def from_hf(cls, path: str | os.PathLike[str], *, name: str | None = None) -> Tokenizer:
        """Reads a Hugging Face ``tokenizer.json`` with a BPE model (a file, or a folder
        holding one): the byte-level family (GPT-2, Llama 3, Qwen) and the SentencePiece family
        (Llama 2, Mistral: ``▁``, byte fallback). Added tokens become special tokens, so
        ``encode(text, allowed_special="all")`` equals ``tokenizers``'
        ``encode(text, add_special_tokens=False).ids``. Unsupported components (BPE dropout,
        WordPiece, an unknown normalizer, ...) raise :class:`~tokforge.errors.VocabFileError`
        naming them."""
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        return cls._wrap(
            formats.from_hf_bytes(
                formats.read_file(p), path=str(p), name=name or formats.hf_name(p)
            )
        )

    @classmethod
    def from_hf_dict(cls, doc: Mapping[str, Any], *, name: str = "") -> Tokenizer:
        """:meth:`from_hf` for a ``tokenizer.json`` already parsed into a dict."""
        return cls._wrap(formats.from_hf_dict(doc, name=name))

    @classmethod
    def from_sentencepiece(cls, model: str | os.PathLike[str] | bytes) -> Tokenizer:
        """Reads a SentencePiece model of type BPE: a ``.model`` file's path, or its bytes (a
        serialized ``ModelProto``). The protobuf is parsed here; the ``sentencepiece`` package
        is not needed. ``encode_ordinary`` equals ``sentencepiece``'s ``encode`` (byte fallback
        and ``nmt_nfkc`` normalization included); ``save``/``to_hf`` write the equivalent
        ``tokenizer.json``."""
        return cls._wrap(formats.from_sentencepiece(model))

    @classmethod
    def from_tekken(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Loads Mistral's Tekken file (``tekken.json``, shipped with mistral-common and
        Mistral's models): ids equal mistral-common's ``Tekkenizer``; the special tokens are the
        ones the file declares (``<SPECIAL_{id}>`` for the ids it leaves unnamed), ordinary
        tokens follow them. :meth:`encode_ordinary` is ``Tekkenizer.encode(text, False,
        False)``."""
        return cls._wrap(formats.from_tekken(path))

    @classmethod
    def from_gguf(cls, path: str | os.PathLike[str]) -> Tokenizer:
        """Loads the tokenizer inside a GGUF model file (llama.cpp): its ``tokenizer.ggml.*``
        metadata, model ``gpt2`` (byte-level BPE with the split of its ``pre`` type) or
        ``llama`` (SentencePiece BPE). Only the metadata is read, never the tensors."""
        return cls._wrap(formats.from_gguf(path))

    @classmethod
    def from_gpt2(
        cls, vocab_json: str | os.PathLike[str], merges_txt: str | os.PathLike[str]
    ) -> Tokenizer:
        """Reads GPT-2's legacy ``vocab.json`` + ``merges.txt`` pair (byte-level BPE)."""
        return cls._wrap(formats.from_gpt2(vocab_json, merges_txt))

    def to_hf_dict(self) -> dict[str, Any]:
        """This tokenizer as a Hugging Face ``tokenizer.json`` dict that ``tokenizers`` and
        ``transformers`` load with identical ids."""
        hf = self._core.hf_json
        if hf is not None:
            doc: dict[str, Any] = json.loads(hf)
            return hf_export.without_tokforge_keys(doc)
        return hf_export.to_hf_dict(self)

    def to_hf(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`to_hf_dict` as ``tokenizer.json`` atomically (a folder gets a
        ``tokenizer.json`` inside it)."""
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        hf = self._core.hf_json
        data = (
            hf
            if hf is not None
            else json.dumps(self.to_hf_dict(), ensure_ascii=False, indent=1).encode("utf-8")
        )
        files.write_atomic(p, data)

    def to_json_bytes(self) -> bytes:
        """The tokforge JSON file content."""
        return self._core.to_json_bytes()

    @classmethod
    def from_json_bytes(
        cls, data: bytes, *, pretokenizer: Callable[[str], list[str]] | None = None
    ) -> Tokenizer:
        """The inverse of :meth:`to_json_bytes`."""
        return cls._from_core(
            _core.CoreBPE.from_json_bytes(data, callable=pretokenizer), pretokenizer
        )

    # ----------------------------------------------------------------- pickling, repr

    def __reduce__(self) -> tuple[Any, ...]:
        """A known encoding (from :func:`~tokforge.get_encoding`) pickles as its name, its rank
        file's SHA-256 and path (about 200 bytes; unpickling finds the file again and fails if
        its hash differs); any other tokenizer as its file content."""
        if self._registered_as is not None:
            name, path = self._registered_as
            return (_unpickle_registered, (name, registry.ENCODINGS[name].sha256, path))
        hf = self._core.hf_json
        if hf is not None:
            return (_unpickle_hf, (hf, self.name, self._sentencepiece))
        return (_unpickle, (self._core.to_json_bytes(), self._callable))

    def __repr__(self) -> str:
        kind, preset = self._core.pretokenizer_kind
        pre = preset or kind
        return (
            f"<Tokenizer {self.name!r} n_vocab={self.n_vocab} pretokenizer={pre} "
            f"specials={len(self._special_tokens)}>"
        )

    # ----------------------------------------------------------------- encoding

    def _policy(
        self,
        texts: Iterable[str],
        allowed_special: Literal["all"] | AbstractSet[str] | Iterable[str],
        disallowed_special: Literal["all"] | Collection[str] | Iterable[str] | None,
    ) -> tuple[list[str], list[str]]:
        """The one special-token policy check every encode entry point makes, tiktoken's: each
        argument is read once (an iterator works), ``disallowed_special=None`` disallows
        nothing, a token both allowed and disallowed is disallowed, and text holding a
        disallowed string anywhere raises, whether it is a special token (checked by the core,
        even inside an allowed one) or not (checked here, on each of ``texts``). Returns the
        allowed and disallowed special tokens for the core."""
        if isinstance(allowed_special, str):
            if allowed_special != "all":
                raise TypeError("allowed_special takes 'all' or a set of str")
            allowed: AbstractSet[str] = self._special_set
        else:
            allowed = _str_set(allowed_special, "allowed_special")
        if disallowed_special is None:
            disallowed: AbstractSet[str] = frozenset()
        elif isinstance(disallowed_special, str):
            if disallowed_special != "all":
                raise TypeError("disallowed_special takes 'all' or a collection of str")
            if not allowed:
                return [], self._default_disallowed
            disallowed = self._special_set - allowed
        else:
            disallowed = _str_set(disallowed_special, "disallowed_special")
        extra = frozenset(t for t in disallowed if t not in self._special_set)
        if extra:
            find = _search_any(extra)
            for text in texts:
                if not isinstance(text, str):
                    raise TypeError(f"text must be a str, not {type(text).__name__}")
                if (m := find(text)) is not None:
                    raise DisallowedSpecialTokenError(m.group())
        return list(allowed), [t for t in disallowed if t in self._special_set]

    def encode_ordinary(self, text: str) -> list[int]:
        """Encodes ``text``, treating special tokens' text as ordinary text.

        >>> from tokforge import Tokenizer
        >>> tok = Tokenizer.from_merges([(104, 105)], pretokenizer="gpt2")
        >>> tok.encode_ordinary("hi hi")
        [256, 32, 256]
        """
        return _text_call(self._core.encode_ordinary, text)

    def encode(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | AbstractSet[str] = _NO_SPECIALS,
        disallowed_special: Literal["all"] | Collection[str] | None = "all",
    ) -> list[int]:
        """Encodes ``text`` into token ids, exactly as ``tiktoken.Encoding.encode``.

        Text matching a special token raises :class:`~tokforge.errors.DisallowedSpecialTokenError`
        (a ``ValueError``) unless the token is in ``allowed_special`` (then it becomes the special
        id) or left out of ``disallowed_special`` (then it is encoded as ordinary text).
        """
        if allowed_special is _NO_SPECIALS and disallowed_special == "all":
            return _text_call(self._core.encode_default, text)
        allowed, disallowed = self._policy((text,), allowed_special, disallowed_special)
        return _text_call(self._core.encode, text, allowed, disallowed)

    def encode_to_numpy(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | AbstractSet[str] = _NO_SPECIALS,
        disallowed_special: Literal["all"] | Collection[str] | None = "all",
    ) -> npt.NDArray[np.uint32]:
        """Like :meth:`encode`, returning a read-only ``uint32`` array without a Python list
        (a view of the ``bytes`` the core fills, no further copy). As in tiktoken, a lone
        surrogate in ``text`` raises ``UnicodeEncodeError`` here (``encode`` repairs it)."""
        if allowed_special is _NO_SPECIALS and disallowed_special == "all":
            return _as_u4(self._core.encode_to_bytes_default(text))
        allowed, disallowed = self._policy((text,), allowed_special, disallowed_special)
        return _as_u4(self._core.encode_to_bytes(text, allowed, disallowed))

    def encode_ordinary_to_numpy(self, text: str) -> npt.NDArray[np.uint32]:
        """Like :meth:`encode_ordinary`, returning a read-only ``uint32`` array."""
        buf = _text_call(self._core.encode_ordinary_to_bytes, text)
        return _as_u4(buf)

    def encode_ordinary_batch(
        self, text: Sequence[str], *, num_threads: int = _DEFAULT_THREADS
    ) -> list[list[int]]:
        """Encodes many texts in parallel (Rust threads, GIL released), ignoring special tokens."""
        return self._batch(text, [], [], num_threads)

    def encode_batch(
        self,
        text: Sequence[str],
        *,
        num_threads: int = _DEFAULT_THREADS,
        allowed_special: Literal["all"] | AbstractSet[str] = _NO_SPECIALS,
        disallowed_special: Literal["all"] | Collection[str] | None = "all",
    ) -> list[list[int]]:
        """Encodes many texts in parallel; see :meth:`encode` for the special-token arguments."""
        texts = _as_text_list(text)
        allowed, disallowed = self._policy(texts, allowed_special, disallowed_special)
        return self._batch(texts, allowed, disallowed, num_threads)

    def _batch(
        self, text: Sequence[str], allowed: list[str], disallowed: list[str], num_threads: int
    ) -> list[list[int]]:
        texts = _as_text_list(text)
        threads = _check_threads(num_threads)
        return _text_call(self._core.encode_batch, texts, allowed, disallowed, threads)

    def encode_batch_to_numpy(
        self,
        text: Sequence[str],
        *,
        num_threads: int = _DEFAULT_THREADS,
        allowed_special: Literal["all"] | AbstractSet[str] = _NO_SPECIALS,
        disallowed_special: Literal["all"] | Collection[str] | None = "all",
    ) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint64]]:
        """Encodes many texts into one flat ``uint32`` array and ``uint64`` offsets
        (``len(text) + 1`` of them): document ``i`` is ``ids[offsets[i]:offsets[i + 1]]``.
        The layout datasets want, with no per-document Python list."""
        import numpy as np

        texts = _as_text_list(text)
        allowed, disallowed = self._policy(texts, allowed_special, disallowed_special)
        threads = _check_threads(num_threads)
        ids, offsets = _text_call(self._core.encode_batch_flat, texts, allowed, disallowed, threads)
        return np.frombuffer(ids, dtype="<u4"), np.frombuffer(offsets, dtype="<u8")

    def encode_with_unstable(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | AbstractSet[str] = _NO_SPECIALS,
        disallowed_special: Literal["all"] | Collection[str] | None = "all",
    ) -> tuple[list[int], list[list[int]]]:
        """Stable tokens of ``text`` and the token sequences that could complete its last piece
        (tiktoken's ``encode_with_unstable``; completions come sorted). As in tiktoken, a lone
        surrogate in ``text`` raises ``UnicodeEncodeError``."""
        allowed, disallowed = self._policy((text,), allowed_special, disallowed_special)
        return self._core.encode_with_unstable(text, allowed, disallowed)

    def _encode_bytes(self, data: bytes) -> list[int]:
        """Encodes bytes that need not be valid UTF-8, as tiktoken's ``_encode_bytes``: valid
        UTF-8 is ``encode_ordinary``; otherwise the valid prefix is encoded, the tokens of its
        last piece are taken back, and their bytes with the invalid rest are merged as one
        piece. Special tokens' text is ordinary text.

        >>> tok = Tokenizer.from_merges([(104, 105)], pretokenizer="gpt2")
        >>> tok._encode_bytes(b"hi hi\\xff")
        [256, 32, 256, 255]
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"_encode_bytes takes bytes, not {type(data).__name__}")
        return self._core.encode_bytes(bytes(data))

    def encode_single_token(self, text_or_bytes: str | bytes) -> int:
        """The id of one token given as text or bytes (special tokens included); raises
        :class:`~tokforge.errors.UnknownTokenError` (a ``KeyError``) otherwise."""
        return self._core.encode_single_token(_as_bytes(text_or_bytes, "surrogatepass"))

    def _encode_single_piece(self, text_or_bytes: str | bytes) -> list[int]:
        return self._core.encode_single_piece(_as_bytes(text_or_bytes, "strict"))

    def _encode_only_native_bpe(self, text: str) -> list[int]:
        out: list[int] = []
        for piece in self.split(text):
            out.extend(self._encode_single_piece(piece))
        return out

    def merge_parts(self, token: int | bytes) -> list[int]:
        """The two tokens an ordinary token was merged from (the parts its bytes end in when only
        merges of lower rank apply); a single byte or base character gives itself.

        >>> tok = Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="whitespace")
        >>> tok.merge_parts(257)
        [256, 119]
        """
        if isinstance(token, (bytes, bytearray)):
            data = bytes(token)
            rank = self.encode_single_token(data)
        else:
            rank = _as_id(token)
            data = self.decode_single_token_bytes(rank)
        if self.token_kind(rank) != "ordinary":
            return [rank]
        if self._core.hf_json is not None:
            # A merge-list model: the first merge that makes the token (none: a base symbol).
            return list(self._hf_parts.get(rank, (rank,)))
        return self._core.merge_parts_below(data, rank)

    @functools.cached_property
    def _hf_parts(self) -> dict[int, tuple[int, int]]:
        parts: dict[int, tuple[int, int]] = {}
        for a, b, new in self._core.hf_merges or ():
            parts.setdefault(new, (a, b))
        return parts

    def explain(self, text: str) -> Explanation:
        """Each token of ``text``: id, bytes, printable form and character span, with terminal,
        table, JSON, HTML and notebook views (see :mod:`tokforge.inspect`)."""
        return explain(self, text)

    def lineage(self, token: int | bytes | str) -> Lineage:
        """How a token was built from bytes, merge by merge (see :mod:`tokforge.inspect`)."""
        return lineage(self, token)

    def split(self, text: str) -> list[str]:
        """The pretokenizer's pieces of ``text`` (special tokens not cut out)."""
        return _text_call(self._core.split, text)

    # ----------------------------------------------------------------- decoding

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        """The bytes of ``tokens`` concatenated. Unknown ids raise
        :class:`~tokforge.errors.UnknownTokenError` (a ``KeyError``) naming the id."""
        packed = _array_ids_le32(tokens)
        if packed is not None:
            return self._core.decode_bytes_le32(packed)
        ids = _as_id_list(tokens)
        try:
            return self._core.decode_bytes(ids)
        except OverflowError:
            raise _huge_id_error(ids) from None

    def decode(self, tokens: Sequence[int], errors: str = "replace") -> str:
        """Decodes ``tokens`` to text; invalid UTF-8 is replaced (``errors="replace"``, lossy, as
        in tiktoken) or raises (``errors="strict"``)."""
        return self.decode_bytes(tokens).decode("utf-8", errors=errors)

    def decode_single_token_bytes(self, token: int) -> bytes:
        """The bytes of one token (special tokens decode to their text)."""
        return self._core.decode_single_token_bytes(_as_id(token))

    def decode_tokens_bytes(self, tokens: Sequence[int]) -> list[bytes]:
        """The bytes of each token, for seeing a tokenization."""
        ids = _as_id_list(tokens)
        try:
            return self._core.decode_tokens_bytes(ids)
        except OverflowError:
            raise _huge_id_error(ids) from None

    def decode_with_offsets(self, tokens: Sequence[int]) -> tuple[str, list[int]]:
        """The text and, for each token, the index of the first character holding its bytes
        (as tiktoken computes it). Raises on invalid UTF-8."""
        token_bytes = self.decode_tokens_bytes(tokens)
        text_len = 0
        offsets = []
        for token in token_bytes:
            offsets.append(max(0, text_len - (0x80 <= token[0] < 0xC0)))
            text_len += sum(1 for c in token if not 0x80 <= c < 0xC0)
        return b"".join(token_bytes).decode("utf-8", errors="strict"), offsets

    def decode_batch(
        self,
        batch: Sequence[Sequence[int]],
        *,
        errors: str = "replace",
        num_threads: int = _DEFAULT_THREADS,
    ) -> list[str]:
        """Decodes many token lists in parallel."""
        return [
            b.decode("utf-8", errors=errors)
            for b in self.decode_bytes_batch(batch, num_threads=num_threads)
        ]

    def decode_bytes_batch(
        self, batch: Sequence[Sequence[int]], *, num_threads: int = _DEFAULT_THREADS
    ) -> list[bytes]:
        """Decodes many token lists to bytes in parallel."""
        lists = [_as_id_list(t) for t in batch]
        try:
            return self._core.decode_bytes_batch(lists, _check_threads(num_threads))
        except OverflowError:
            raise _huge_id_error([i for ids in lists for i in ids]) from None

    def decoder_stream(self, errors: str = "replace") -> StreamDecoder:
        """A decoder for token streams: ``push(id)`` returns only complete UTF-8 text, ``finish()``
        the rest. ``errors`` is ``"replace"`` or ``"strict"``."""
        if errors not in ("replace", "strict"):
            raise TokforgeError(f"errors must be 'replace' or 'strict', not {errors!r}")
        return StreamDecoder(self._core.stream_decoder(errors == "strict"))

    # ----------------------------------------------------------------- vocabulary

    def token_byte_values(self) -> list[bytes]:
        """Every ordinary token's bytes, sorted."""
        return self._core.token_byte_values()

    def token_to_id(self, token: str | bytes) -> int:
        """Alias of :meth:`encode_single_token`."""
        return self.encode_single_token(token)

    def id_to_token(self, token: int) -> bytes:
        """Alias of :meth:`decode_single_token_bytes`."""
        return self.decode_single_token_bytes(token)

    def is_special_token(self, token: int) -> bool:
        """Whether ``token`` is a special token's id."""
        return token in self._special_values

    def token_kind(self, token: int) -> str:
        """``"ordinary"``, ``"special"``, ``"byte_fallback"`` or ``"unused"``."""
        return self._core.token_kind(_as_id(token))

    @property
    def name(self) -> str:
        """The tokenizer's name."""
        return self._core.name

    @property
    def eot_token(self) -> int:
        """The id of ``<|endoftext|>`` (``KeyError`` when there is none)."""
        return self._special_tokens["<|endoftext|>"]

    @functools.cached_property
    def special_tokens_set(self) -> set[str]:
        """The special tokens' texts."""
        return set(self._special_tokens)

    @property
    def special_tokens(self) -> dict[str, int]:
        """Special token text -> id."""
        return dict(self._special_tokens)

    @property
    def n_vocab(self) -> int:
        """One more than the largest id (tiktoken's definition)."""
        return self.max_token_value + 1

    @property
    def max_token_value(self) -> int:
        """The largest id, ordinary or special."""
        return self._core.n_ids - 1

    @property
    def pattern(self) -> str | None:
        """The pretokenizer regex, when it is a regex."""
        return self._core.pattern

    @property
    def _pat_str(self) -> str | None:
        return self._core.pattern

    @property
    def pretokenizer(self) -> str | Callable[[str], list[str]]:
        """The preset name, ``"regex"`` for a custom pattern, ``"whitespace"``, ``"none"``, or
        the callable."""
        if self._callable is not None:
            return self._callable
        kind, preset = self._core.pretokenizer_kind
        return preset or kind

    @functools.cached_property
    def _mergeable_ranks(self) -> dict[bytes, int]:
        return self._core.mergeable_ranks()

    @property
    def mergeable_ranks(self) -> dict[bytes, int]:
        """``{token bytes: rank}`` of the ordinary tokens (a new dict each call)."""
        return dict(self._mergeable_ranks)

    @property
    def merges(self) -> list[tuple[int, int]] | None:
        """The merges, for a byte-level vocabulary defined by them (trained by tokforge): merge
        ``k`` makes id ``256 + k``. ``None`` otherwise; a tokenizer read from tokenizer.json
        has :attr:`hf_merges` instead."""
        return self._core.merges

    @property
    def hf_merges(self) -> list[tuple[int, int, int]] | None:
        """For a tokenizer read from tokenizer.json (or SentencePiece / GPT-2 files): its merge
        list, in priority order, as ``(left, right, merged)`` ids."""
        return self._core.hf_merges

    @property
    def byte_fallback(self) -> list[int] | None:
        """Ids of ``<0x00>``..``<0xFF>`` when the vocabulary has byte fallback."""
        return self._core.byte_fallback

    @property
    def metadata(self) -> dict[str, Any]:
        """Free-form metadata saved with the tokenizer."""
        value = json.loads(self._core.metadata_json)
        return value if isinstance(value, dict) else {}


class StreamDecoder:
    """Decodes a token stream incrementally; see :meth:`Tokenizer.decoder_stream`.

    >>> from tokforge import Tokenizer
    >>> tok = Tokenizer.from_merges([], pretokenizer="none")
    >>> d = tok.decoder_stream()
    >>> [d.push(b) for b in "€".encode()]
    ['', '', '€']
    """

    def __init__(self, core: _core.StreamDecoder) -> None:
        self._core = core

    def push(self, token: int) -> str:
        """Adds one id; returns the text completed by it (often ``""`` mid-character)."""
        return self._core.push(_as_id(token))

    def finish(self) -> str:
        """Ends the stream and returns what is left."""
        return self._core.finish()

    @property
    def pending(self) -> bytes:
        """Bytes received that do not yet form a complete character."""
        return self._core.pending


@functools.lru_cache(maxsize=8)
def _registered(name: str, path: str) -> Tokenizer:
    """Encoding ``name`` (a key of the registry) from the rank file at ``path``, which must have
    the published SHA-256; one object per (name, path)."""
    tok = Tokenizer._from_core(registry.encoding_core(name, path))
    tok._registered_as = (name, path)
    return tok


def _unpickle_registered(name: str, sha256: str, path: str) -> Tokenizer:
    spec = registry.ENCODINGS.get(name)
    if spec is None:
        raise TokforgeError(f"cannot unpickle encoding {name!r}: this tokforge does not know it")
    if spec.sha256 != sha256:
        raise TokforgeError(
            f"cannot unpickle {name}: it was pickled with a rank file of SHA-256 {sha256}, "
            f"this tokforge's {name} has {spec.sha256}"
        )
    p = Path(path)
    if not p.is_file():
        p = registry.find_rank_file(name)
    return _registered(name, str(p.resolve()))


def _unpickle(data: bytes, func: Callable[[str], list[str]] | None) -> Tokenizer:
    return Tokenizer.from_json_bytes(data, pretokenizer=func)


def _unpickle_hf(data: bytes, name: str, sentencepiece: bool = False) -> Tokenizer:
    return Tokenizer._wrap(
        formats.from_hf_bytes(data, path="<pickle>", name=name, sentencepiece=sentencepiece)
    )


def _as_bytes(value: Any, errors: str) -> bytes:
    """``value`` as bytes: str is UTF-8 encoded, bytes-like objects are copied. An int is a
    TypeError, not ``bytes(n)``: that would allocate n zero bytes (a fuzzed 2**32 once took the
    test run out of memory)."""
    if isinstance(value, str):
        return value.encode("utf-8", errors)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"expected str or bytes, not {type(value).__name__}")


def _as_id(token: Any) -> int:
    if isinstance(token, bool) or not hasattr(token, "__index__"):
        raise TypeError(f"token ids are int, not {type(token).__name__}")
    value: int = token.__index__()
    if not -(2**63) <= value < 2**63:
        raise UnknownTokenError(f"unknown token id {value}")
    return value


def _huge_id_error(ids: Sequence[Any]) -> Exception:
    """The error for a list the core refused with OverflowError: the first id beyond 64 bits
    is unknown (tiktoken would overflow; tokforge names the id)."""
    for t in ids:
        if isinstance(t, int) and not -(2**63) <= t < 2**63:
            return UnknownTokenError(f"unknown token id {t}")
    return TypeError("token ids must be integers")


def _array_ids_le32(tokens: Any) -> bytes | None:
    """A one-dimensional NumPy integer array's ids as little-endian u32 bytes, range-checked
    without a Python list (4 bytes an id instead of a list's ~36); ``None`` for anything else,
    which goes through a list."""
    if not hasattr(tokens, "dtype") or getattr(tokens, "ndim", None) != 1:
        return None
    import numpy as np

    arr = np.asarray(tokens)
    if arr.dtype.kind not in "iu":
        return None
    if arr.size and (arr.min() < 0 or arr.max() > 0xFFFFFFFF):
        bad = arr[np.flatnonzero((arr < 0) | (arr > 0xFFFFFFFF))[0]]
        raise UnknownTokenError(f"unknown token id {int(bad)}")
    return arr.astype("<u4", copy=False).tobytes()


def _as_id_list(tokens: Any) -> list[int]:
    if isinstance(tokens, (str, bytes)):
        raise TypeError(f"token ids must be a sequence of int, not {type(tokens).__name__}")
    if hasattr(tokens, "tolist") and hasattr(tokens, "dtype"):
        out = tokens.tolist()
        return out if isinstance(out, list) else [out]
    if isinstance(tokens, list):
        return tokens
    return [_as_id(t) for t in tokens]


def _str_set(value: Any, what: str) -> frozenset[str]:
    """``value`` (any iterable of str, iterated once) as a frozenset."""
    try:
        out = frozenset(value)
    except TypeError:
        raise TypeError(
            f"{what} takes 'all' or a collection of str, not {type(value).__name__}"
        ) from None
    if not all(isinstance(t, str) for t in out):
        raise TypeError(f"{what} takes 'all' or a collection of str")
    return out


@functools.lru_cache(maxsize=64)
def _search_any(strings: frozenset[str]) -> Callable[[str], re.Match[str] | None]:
    """The ``search`` of a regex matching any of ``strings`` (the leftmost, then the longest)."""
    alternatives = sorted(strings, key=lambda t: (-len(t), t))
    return re.compile("|".join(re.escape(t) for t in alternatives)).search


def _as_text_list(text: Any) -> list[str]:
    if isinstance(text, str):
        raise TypeError("encode_batch takes a list of str, not a single str")
    return list(text)


def _check_threads(num_threads: int) -> int:
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise TokforgeError(f"num_threads must be a positive int, not {num_threads!r}")
    return num_threads
