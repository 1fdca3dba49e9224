"""Read SentencePiece ``.model`` files and convert BPE models to HF ``tokenizer.json`` dicts.

A ``.model`` file is a serialized ``sentencepiece.ModelProto`` (proto2). This module decodes
the protobuf wire format itself, so the ``sentencepiece`` package is not needed at run time.
Field numbers and defaults follow ``src/sentencepiece_model.proto`` of google/sentencepiece.

Every malformed input raises :class:`~tokforge.errors.VocabFileError` naming the file and the
byte offset; models this module cannot convert exactly raise
:class:`~tokforge.errors.TokforgeError` saying why.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import TokforgeError, VocabFileError
from ..files import read_bytes
from .hf_json import added_token, bpe_model, document

__all__ = [
    "BPE",
    "BYTE",
    "CHAR",
    "CONTROL",
    "NORMAL",
    "UNIGRAM",
    "UNKNOWN",
    "UNUSED",
    "USER_DEFINED",
    "WORD",
    "NormalizerSpec",
    "Piece",
    "SentencePieceModel",
    "TrainerSpec",
    "merge_list_conflict",
    "read_model",
    "to_hf_dict",
    "to_vocab_text",
]

# ModelProto.SentencePiece.Type
NORMAL = 1
UNKNOWN = 2
CONTROL = 3
USER_DEFINED = 4
UNUSED = 5
BYTE = 6
_PIECE_TYPES = {NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE}

# TrainerSpec.ModelType
UNIGRAM = 1
BPE = 2
WORD = 3
CHAR = 4
_MODEL_TYPE_NAMES = {UNIGRAM: "UNIGRAM", BPE: "BPE", WORD: "WORD", CHAR: "CHAR"}

SPACE_SYMBOL = "\u2581"  # "▁", SentencePiece's kSpaceSymbol

# Protobuf wire types.
_VARINT = 0
_I64 = 1
_LEN = 2
_I32 = 5


class Piece(NamedTuple):
    """One vocabulary entry: the piece, its score and its ``ModelProto.SentencePiece.Type``."""

    piece: str
    score: float
    type: int


@dataclass(frozen=True)
class TrainerSpec:
    """The ``TrainerSpec`` fields that matter for encoding, with proto2 defaults."""

    model_type: int = UNIGRAM
    vocab_size: int = 8000
    character_coverage: float = 0.9995
    split_by_whitespace: bool = True
    treat_whitespace_as_suffix: bool = False
    allow_whitespace_only_pieces: bool = False
    split_digits: bool = False
    byte_fallback: bool = False
    vocabulary_output_piece_score: bool = True
    unk_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    pad_id: int = -1
    unk_piece: str = "<unk>"
    bos_piece: str = "<s>"
    eos_piece: str = "</s>"
    pad_piece: str = "<pad>"
    unk_surface: str = " \u2047 "


@dataclass(frozen=True)
class NormalizerSpec:
    """A ``NormalizerSpec`` (also used for the denormalizer), with proto2 defaults."""

    name: str = ""
    precompiled_charsmap: bytes = b""
    add_dummy_prefix: bool = True
    remove_extra_whitespaces: bool = True
    escape_whitespaces: bool = True
    normalization_rule_tsv: str = ""


@dataclass(frozen=True)
class SentencePieceModel:
    """A decoded ``ModelProto``: pieces in id order, trainer and normalizer specs."""

    pieces: tuple[Piece, ...]
    trainer_spec: TrainerSpec = field(default_factory=TrainerSpec)
    normalizer_spec: NormalizerSpec = field(default_factory=NormalizerSpec)
    denormalizer_spec: NormalizerSpec | None = None
    source: str = "<bytes>"


# --------------------------------------------------------------------------------------------
# Protobuf wire format


class _Reader:
    """Decodes protobuf fields from ``data[start:end]``; errors name the source and offset."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.source = source

    def error(self, offset: int, what: str) -> VocabFileError:
        return VocabFileError(f"{self.source}: byte {offset}: {what}")

    def varint(self, pos: int, end: int) -> tuple[int, int]:
        """The unsigned varint at ``pos`` and the position after it."""
        start = pos
        value = 0
        shift = 0
        while True:
            if pos >= end:
                raise self.error(start, "truncated varint")
            if shift >= 70:
                raise self.error(start, "varint longer than 10 bytes")
            b = self.data[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if value >= 1 << 64:
            raise self.error(start, "varint does not fit in 64 bits")
        return value, pos

    def fields(self, start: int, end: int) -> Iterator[tuple[int, int, int, Any]]:
        """Yields ``(field_number, wire_type, offset, value)`` for each field of a message.

        ``value`` is an int for varints, ``bytes`` for fixed64/fixed32 and a ``(start, end)``
        range for length-delimited fields."""
        pos = start
        while pos < end:
            offset = pos
            key, pos = self.varint(pos, end)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise self.error(offset, "field number 0")
            value: Any
            if wire == _VARINT:
                value, pos = self.varint(pos, end)
            elif wire == _I64:
                if pos + 8 > end:
                    raise self.error(offset, f"field {number}: truncated 64-bit value")
                value, pos = self.data[pos : pos + 8], pos + 8
            elif wire == _LEN:
                length, pos = self.varint(pos, end)
                if length > end - pos:
                    raise self.error(
                        offset, f"field {number}: length {length} runs past the end of its message"
                    )
                value, pos = (pos, pos + length), pos + length
            elif wire == _I32:
                if pos + 4 > end:
                    raise self.error(offset, f"field {number}: truncated 32-bit value")
                value, pos = self.data[pos : pos + 4], pos + 4
            else:
                raise self.error(offset, f"field {number}: unsupported wire type {wire}")
            yield number, wire, offset, value

    def expect(self, number: int, wire: int, offset: int, want: int) -> None:
        if wire != want:
            raise self.error(
                offset, f"field {number}: wire type {wire}, expected {want} for this field"
            )

    def string(self, rng: tuple[int, int], number: int, offset: int) -> str:
        try:
            return self.data[rng[0] : rng[1]].decode("utf-8")
        except UnicodeDecodeError as e:
            raise self.error(rng[0] + e.start, f"field {number}: invalid UTF-8") from None


def _int32(value: int) -> int:
    """A varint read as a proto ``int32``/``int64`` (negative numbers are 10-byte varints)."""
    if value >= 1 << 63:
        value -= 1 << 64
    return value


def _float(raw: bytes) -> float:
    return float(struct.unpack("<f", raw)[0])


_TRAINER_INT = {
    3: "model_type",
    4: "vocab_size",
    40: "unk_id",
    41: "bos_id",
    42: "eos_id",
    43: "pad_id",
}
_TRAINER_BOOL = {
    22: "split_by_whitespace",
    24: "treat_whitespace_as_suffix",
    25: "split_digits",
    26: "allow_whitespace_only_pieces",
    32: "vocabulary_output_piece_score",
    35: "byte_fallback",
}
_TRAINER_STR = {
    44: "unk_surface",
    45: "unk_piece",
    46: "bos_piece",
    47: "eos_piece",
    48: "pad_piece",
}


def _trainer_spec(r: _Reader, start: int, end: int) -> TrainerSpec:
    kw: dict[str, Any] = {}
    for number, wire, offset, value in r.fields(start, end):
        if number in _TRAINER_INT:
            r.expect(number, wire, offset, _VARINT)
            kw[_TRAINER_INT[number]] = _int32(value)
        elif number in _TRAINER_BOOL:
            r.expect(number, wire, offset, _VARINT)
            kw[_TRAINER_BOOL[number]] = value != 0
        elif number in _TRAINER_STR:
            r.expect(number, wire, offset, _LEN)
            kw[_TRAINER_STR[number]] = r.string(value, number, offset)
        elif number == 10:
            r.expect(number, wire, offset, _I32)
            kw["character_coverage"] = _float(value)
    return TrainerSpec(**kw)


def _normalizer_spec(r: _Reader, start: int, end: int) -> NormalizerSpec:
    kw: dict[str, Any] = {}
    for number, wire, offset, value in r.fields(start, end):
        if number in (1, 6):
            r.expect(number, wire, offset, _LEN)
            name = "name" if number == 1 else "normalization_rule_tsv"
            kw[name] = r.string(value, number, offset)
        elif number == 2:
            r.expect(number, wire, offset, _LEN)
            kw["precompiled_charsmap"] = r.data[value[0] : value[1]]
        elif number in (3, 4, 5):
            r.expect(number, wire, offset, _VARINT)
            flags = {3: "add_dummy_prefix", 4: "remove_extra_whitespaces", 5: "escape_whitespaces"}
            kw[flags[number]] = value != 0
    return NormalizerSpec(**kw)


def _piece(r: _Reader, start: int, end: int, msg_offset: int) -> Piece:
    piece: str | None = None
    score = 0.0
    ptype = NORMAL
    for number, wire, offset, value in r.fields(start, end):
        if number == 1:
            r.expect(number, wire, offset, _LEN)
            piece = r.string(value, number, offset)
        elif number == 2:
            r.expect(number, wire, offset, _I32)
            score = _float(value)
        elif number == 3:
            r.expect(number, wire, offset, _VARINT)
            ptype = _int32(value)
            if ptype not in _PIECE_TYPES:
                raise r.error(offset, f"piece type {ptype} is not one of 1..6")
    if not piece:
        raise r.error(msg_offset, "a piece is missing or empty")
    return Piece(piece, score, ptype)


def _load_bytes(path_or_bytes: str | os.PathLike[str] | bytes) -> tuple[bytes, str]:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "<bytes>"
    source = os.fspath(path_or_bytes)
    return read_bytes(source), source


def read_model(path_or_bytes: str | os.PathLike[str] | bytes) -> SentencePieceModel:
    """Decode a SentencePiece ``.model`` file (a path, or its bytes) into a model.

    Unknown fields are skipped; malformed input raises
    :class:`~tokforge.errors.VocabFileError` with the file name and byte offset."""
    data, source = _load_bytes(path_or_bytes)
    r = _Reader(data, source)
    pieces: list[Piece] = []
    trainer = TrainerSpec()
    normalizer = NormalizerSpec()
    denormalizer: NormalizerSpec | None = None
    seen: dict[str, int] = {}
    for number, wire, offset, value in r.fields(0, len(data)):
        if number == 1:
            r.expect(number, wire, offset, _LEN)
            p = _piece(r, value[0], value[1], offset)
            if p.piece in seen:
                raise r.error(offset, f"piece {p.piece!r} repeats id {seen[p.piece]}")
            seen[p.piece] = len(pieces)
            pieces.append(p)
        elif number == 2:
            r.expect(number, wire, offset, _LEN)
            trainer = _trainer_spec(r, *value)
        elif number == 3:
            r.expect(number, wire, offset, _LEN)
            normalizer = _normalizer_spec(r, *value)
        elif number == 5:
            r.expect(number, wire, offset, _LEN)
            denormalizer = _normalizer_spec(r, *value)
    if not pieces:
        raise VocabFileError(f"{source}: byte 0: the model has no pieces")
    return SentencePieceModel(tuple(pieces), trainer, normalizer, denormalizer, source)


# --------------------------------------------------------------------------------------------
# Conversion


def to_vocab_text(model: SentencePieceModel) -> str:
    """The ``.vocab`` text SentencePiece writes next to a model: ``piece<TAB>score`` lines.

    Scores are formatted like C++ ``std::ostream << float`` (``%g``); without
    ``vocabulary_output_piece_score`` the lines hold the pieces alone."""
    if not model.trainer_spec.vocabulary_output_piece_score:
        return "".join(f"{p.piece}\n" for p in model.pieces)
    return "".join(f"{p.piece}\t{p.score:g}\n" for p in model.pieces)


def _merges(model: SentencePieceModel) -> tuple[list[list[str]], list[int]]:
    """Every split (a, b) of every NORMAL piece whose parts are NORMAL pieces, ordered by the
    score of a+b (highest first), then by the ids of a and b, with the priority of each: the
    rank of its piece's score among the distinct scores. SentencePiece merges the adjacent pair
    whose merged piece scores highest, leftmost among equal scores, whatever the pair is; a
    merge list ranks two different pairs of equal score by their places in the list instead, so
    only the priorities are exact when different pieces score the same."""
    ids = {p.piece: i for i, p in enumerate(model.pieces) if p.type == NORMAL}
    found: list[tuple[float, int, int, str, str]] = []
    for piece, i in ids.items():
        score = model.pieces[i].score
        for k in range(1, len(piece)):
            left, right = piece[:k], piece[k:]
            li, ri = ids.get(left), ids.get(right)
            if li is not None and ri is not None:
                found.append((-score, li, ri, left, right))
    found.sort()
    rank = {s: r for r, s in enumerate(sorted({f[0] for f in found}))}
    return [[left, right] for _, _, _, left, right in found], [rank[f[0]] for f in found]


def merge_list_conflict(model: SentencePieceModel) -> str | None:
    """Why HF's merge list cannot reproduce the model's merge order, or ``None``: two different
    merged pieces with the same score (SentencePiece takes the leftmost of their pairs, a merge
    list the one listed first). One piece made by two pairs that can overlap (``a|aa`` and
    ``aa|a``) is the same question in small; it is not refused (the ids and list order the
    differential tests check agree on the shared corpora)."""
    merges, prio = _merges(model)
    by_prio: dict[int, list[list[str]]] = {}
    for m, p in zip(merges, prio, strict=False):
        by_prio.setdefault(p, []).append(m)
    for group in by_prio.values():
        pieces = {a + b for a, b in group}
        if len(pieces) > 1:
            a, b = sorted(pieces)[:2]
            return f"the pieces {a!r} and {b!r} have the same score"
    return None


def _regex(pattern: str) -> dict[str, str]:
    return {"Regex": pattern}


def _replace(pattern: str | dict[str, str], content: str) -> dict[str, Any]:
    pat = pattern if isinstance(pattern, dict) else {"String": pattern}
    return {"type": "Replace", "pattern": pat, "content": content}


def _check_convertible(model: SentencePieceModel) -> None:
    ts, ns = model.trainer_spec, model.normalizer_spec
    where = model.source
    if ts.model_type != BPE:
        name = _MODEL_TYPE_NAMES.get(ts.model_type, str(ts.model_type))
        raise TokforgeError(
            f"{where}: a SentencePiece {name} model cannot be converted: "
            "only BPE models (model_type=bpe) are supported"
        )
    if ts.treat_whitespace_as_suffix:
        raise TokforgeError(f"{where}: treat_whitespace_as_suffix=true is not supported")
    if not ns.escape_whitespaces:
        raise TokforgeError(f"{where}: escape_whitespaces=false is not supported")
    if model.denormalizer_spec is not None and model.denormalizer_spec.precompiled_charsmap:
        raise TokforgeError(f"{where}: a denormalizer (decode-time charsmap) is not supported")
    if any(p.type == UNUSED for p in model.pieces):
        raise TokforgeError(f"{where}: UNUSED pieces are not supported")
    unk = [p.piece for p in model.pieces if p.type == UNKNOWN]
    if len(unk) != 1:
        raise TokforgeError(f"{where}: expected exactly one UNKNOWN piece, found {len(unk)}")


def _normalizer(ns: NormalizerSpec) -> dict[str, Any] | None:
    steps: list[dict[str, Any]] = []
    if ns.precompiled_charsmap:
        steps.append(
            {
                "type": "Precompiled",
                "precompiled_charsmap": base64.b64encode(ns.precompiled_charsmap).decode("ascii"),
            }
        )
    if ns.remove_extra_whitespaces:
        # SentencePiece drops leading spaces and collapses runs of spaces (only U+0020, after
        # the charsmap) ...
        steps.append(_replace(_regex(r"\A +"), ""))
        steps.append(_replace(_regex(" {2,}"), " "))
    if ns.add_dummy_prefix:
        steps.append({"type": "Prepend", "prepend": SPACE_SYMBOL})
    steps.append(_replace(" ", SPACE_SYMBOL))
    if ns.remove_extra_whitespaces:
        # ... and, after escaping, every trailing "▁", a literal one in the text included.
        steps.append(_replace(_regex(SPACE_SYMBOL + r"+\z"), ""))
    return {"type": "Sequence", "normalizers": steps}


def _decoder(model: SentencePieceModel) -> dict[str, Any]:
    normal = [p.piece for p in model.pieces if p.type in (NORMAL, USER_DEFINED)]
    steps: list[dict[str, Any]] = []
    # SentencePiece renders CONTROL pieces as nothing and <unk> as unk_surface. HF's Replace
    # decoder works on each token's text: a plain pattern is exact when no other piece
    # contains it, else the pattern is anchored to the whole token.
    for p in model.pieces:
        if p.type not in (CONTROL, UNKNOWN):
            continue
        content = "" if p.type == CONTROL else model.trainer_spec.unk_surface
        if any(p.piece in other for other in normal):
            steps.append(_replace(_regex(r"\A" + _onig_escape(p.piece) + r"\z"), content))
        else:
            steps.append(_replace(p.piece, content))
    steps.append(_replace(SPACE_SYMBOL, " "))
    if model.trainer_spec.byte_fallback:
        steps.append({"type": "ByteFallback"})
    steps.append({"type": "Fuse"})
    ns = model.normalizer_spec
    if ns.add_dummy_prefix or ns.remove_extra_whitespaces:
        steps.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    return {"type": "Sequence", "decoders": steps}


def _onig_escape(text: str) -> str:
    return "".join("\\" + c if c in r"\^$.|?*+()[]{}-/" else c for c in text)


def to_hf_dict(model: SentencePieceModel, *, tokforge_keys: bool = False) -> dict[str, Any]:
    """An HF ``tokenizer.json`` dict that encodes and decodes like the SentencePiece BPE model.

    CONTROL and UNKNOWN pieces become special added tokens (``normalized`` false). HF cannot
    express two SentencePiece rules, so a model needing them raises
    :class:`~tokforge.errors.TokforgeError` unless ``tokforge_keys`` is true, which writes
    keys only tokforge reads (HF ignores them): ``model.tokforge_merge_priorities`` (equal
    priorities merge leftmost first: SentencePiece's rule when different pieces score the
    same) and USER_DEFINED pieces as added tokens with ``tokforge_literal`` (matched in the
    normalized text as they are; HF would normalize the token too, prepending "▁").
    Unigram, word and char models, and the options listed in the errors, raise."""
    _check_convertible(model)
    if not tokforge_keys:
        conflict = merge_list_conflict(model)
        if conflict is not None:
            raise TokforgeError(
                f"{model.source}: an HF merge list cannot reproduce this model's merge order: "
                f"{conflict}, and SentencePiece merges the leftmost pair among equal scores"
            )
        if any(p.type == USER_DEFINED for p in model.pieces):
            raise TokforgeError(
                f"{model.source}: USER_DEFINED pieces cannot be written exactly as HF added "
                "tokens (SentencePiece matches them in the normalized text as they are; HF "
                "normalizes a normalized added token too, or cuts a non-normalized one out "
                "before normalizing)"
            )
    ts = model.trainer_spec
    added: list[dict[str, Any]] = []
    for i, p in enumerate(model.pieces):
        if p.type in (CONTROL, UNKNOWN):
            added.append(added_token(p.piece, i))
        elif p.type == USER_DEFINED:
            tok = added_token(p.piece, i, special=False)
            tok["normalized"] = True
            tok["tokforge_literal"] = True
            added.append(tok)
    unk = next(p.piece for p in model.pieces if p.type == UNKNOWN)
    merges, priorities = _merges(model)
    bpe = bpe_model(
        {p.piece: i for i, p in enumerate(model.pieces)},
        merges,
        byte_fallback=ts.byte_fallback,
        unk_token=unk,
        fuse_unk=True,
    )
    if tokforge_keys:
        bpe["tokforge_merge_priorities"] = priorities
    return document(
        added=added,
        normalizer=_normalizer(model.normalizer_spec),
        decoder=_decoder(model),
        model=bpe,
    )
