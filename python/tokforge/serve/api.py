"""What the playground's page asks for, as plain functions: a request dict in, a response dict
out, no sockets. :class:`Playground` holds the tokenizers (built-in encodings, files given on the
command line, uploaded files; each loaded on first use) and answers:

- :meth:`~Playground.tokenizers`: the picker's list;
- :meth:`~Playground.tokenize`: one text under several tokenizers, token by token (id, byte
  range, character range, printable text, colour), with counts and the cost per 1k characters;
- :meth:`~Playground.upload`: a tokenizer file in any format :meth:`Tokenizer.load` reads;
- :meth:`~Playground.artifacts`: the gallery of classic surprises
  (:mod:`tokforge.inspect.artifacts`) plus byte fragments and the user's own strings;
- :meth:`~Playground.vocab` and :meth:`~Playground.lineage`: the vocabulary browser;
- :meth:`~Playground.model`: the prompt through :mod:`tokforge.nn`, attention per layer and
  head, and the next-token distribution.

:func:`handle` runs one of them by name and turns every exception into ``(status, {"error":
message})``, so a server built on it answers every request.

>>> pg = Playground([], builtins=False)
>>> status, body = handle(pg, "tokenize", {"text": "hi", "tokenizers": ["nope"]})
>>> status, body["error"]
(404, "unknown tokenizer 'nope'; known: (none)")
"""

from __future__ import annotations

import base64
import binascii
import itertools
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..encodings import get_encoding, resolve_tokenizer
from ..errors import TokforgeError
from ..files import write_atomic
from ..inspect import explain, find_tokens, lineage, longest_tokens
from ..inspect.artifacts import artifacts as build_artifacts
from ..inspect.viz import SPECIAL_CSS, alternate_rgb, printable, token_rgb
from ..nn import Config, Transformer, init_params, sampling_distribution
from ..nn.trace import record
from ..registry import find_rank_file, list_encoding_names
from ..tokenizer import Tokenizer

__all__ = [
    "MAX_TEXT_BYTES",
    "MAX_UPLOAD_BYTES",
    "Playground",
    "RequestError",
    "handle",
]

log = logging.getLogger("tokforge.serve")

#: The longest text :meth:`Playground.tokenize` accepts, in UTF-8 bytes (1 MB). A 1 MB text
#: under cl100k_base and o200k_base is answered in about 0.3 s (see docs/serve.md); longer ones
#: are refused with a message rather than left to slow the page down.
MAX_TEXT_BYTES = 1_000_000
#: The largest tokenizer upload, all files together, after base64 decoding.
MAX_UPLOAD_BYTES = 48_000_000
#: Tokenizers in one request (the page shows them side by side).
MAX_TOKENIZERS = 8
#: Prompt tokens the transformer view runs (attention is n x n per head: keep it drawable).
MAX_MODEL_TOKENS = 64
#: Uploaded tokenizers kept (each holds its vocabulary in memory).
MAX_UPLOADS = 32
#: Strings the user may add to the artifact gallery, and their length in characters.
MAX_EXTRA_STRINGS = 20
MAX_EXTRA_CHARS = 2000
#: Entries one vocabulary query returns.
MAX_VOCAB_RESULTS = 500

# Special tokens are drawn white on dark; two in a row alternate between these two.
_SPECIAL_COLOURS = SPECIAL_CSS
_PRESETS = ("gpt2", "cl100k", "o200k", "whitespace", "none")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


class RequestError(TokforgeError):
    """A request the playground cannot answer, with the HTTP status to send and a message for
    the page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------------------- request fields


def _field(req: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = req.get(key, default)
    if value is default:
        return value
    if (
        isinstance(value, bool)
        and kind is not bool
        and bool not in (kind if isinstance(kind, tuple) else (kind,))
    ):
        raise RequestError(f"{key!r} must be {_kind_name(kind)}, not a boolean")
    if not isinstance(value, kind):
        raise RequestError(f"{key!r} must be {_kind_name(kind)}, not {type(value).__name__}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", bool: "true or false", list: "a list"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _int(req: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value: int = _field(req, key, int, default)
    if not lo <= value <= hi:
        raise RequestError(f"{key!r} must be between {lo} and {hi}, not {value}")
    return value


def _clean_text(text: str) -> str:
    """The text as valid Unicode: lone surrogates (which JSON can carry) become U+FFFD, as
    :meth:`Tokenizer.encode` treats them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def _text(req: dict[str, Any], key: str = "text") -> str:
    text: str = _field(req, key, str, "")
    text = _clean_text(text)
    size = len(text.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        raise RequestError(
            f"the text is {size:,} bytes; the playground takes up to {MAX_TEXT_BYTES:,} bytes "
            "(1 MB). Use `tokforge encode` or the Python API for longer texts.",
            413,
        )
    return text


# ---------------------------------------------------------------------------- colours


def _css(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def token_colours(token_id: int, special: bool) -> tuple[str, str]:
    """``(main, alternate)`` CSS colours of a token: the main one is the colour tokforge gives
    the id everywhere (:func:`tokforge.inspect.viz.token_rgb`); the alternate is used when the token
    before it has the same main colour, so that neighbours never look like one token.

    >>> token_colours(15717, False)[0] == "#%02x%02x%02x" % token_rgb(15717)
    True
    >>> len(set(token_colours(15717, False)))
    2
    """
    if special:
        return _SPECIAL_COLOURS
    rgb = token_rgb(token_id)
    return _css(rgb), _css(alternate_rgb(rgb))


def _colour(ids: Sequence[int], specials: set[int]) -> tuple[dict[str, list[str]], list[int]]:
    """The palette (``{id: [main, alternate]}``) of ``ids`` and the positions that take the
    alternate colour: those whose main colour equals the colour drawn just before them."""
    palette: dict[int, tuple[str, str]] = {}
    alt_at: list[int] = []
    previous = ""
    for i, t in enumerate(ids):
        pair = palette.get(t)
        if pair is None:
            pair = palette[t] = token_colours(t, t in specials)
        if pair[0] == previous:
            alt_at.append(i)
            previous = pair[1]
        else:
            previous = pair[0]
    return {str(t): list(p) for t, p in palette.items()}, alt_at


def _char_ranges(joined: bytes, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The character span ``[start, end)`` of each token (the same as
    :func:`tokforge.explain`'s: tokens holding bytes of one character share it), from the
    tokens' byte boundaries ``offsets`` in ``joined``.

    >>> s, e = _char_ranges("a€b".encode(), np.array([0, 1, 3, 4, 5]))
    >>> list(zip(s.tolist(), e.tolist()))
    [(0, 1), (1, 2), (1, 2), (2, 3)]
    """
    starts, ends = offsets[:-1], offsets[1:]  # [n_tokens] each
    raw = np.frombuffer(joined, dtype=np.uint8)  # [n_bytes]
    # characters started up to and including each byte (a byte not 10xxxxxx starts one)
    started = np.cumsum((raw & 0xC0) != 0x80)  # [n_bytes]
    if not len(raw):
        zeros = np.zeros(len(starts), dtype=np.int64)
        return zeros, zeros
    nonempty = ends > starts
    first = np.minimum(starts, len(raw) - 1)
    c_start = np.where(nonempty, np.maximum(started[first] - 1, 0), 0)
    c_end = np.where(nonempty, started[np.maximum(ends - 1, 0)], c_start)
    return c_start, c_end


def _colour_array(
    distinct: np.ndarray, inverse: np.ndarray, specials: set[int]
) -> tuple[dict[str, list[str]], list[int]]:
    """:func:`_colour` for a long sequence: only the positions whose main colour equals their
    left neighbour's main or alternate colour can need the alternate, so only those are
    visited in Python, left to right (the colour drawn at ``i - 1`` is final by then)."""
    pairs = [token_colours(int(t), int(t) in specials) for t in distinct]
    names = sorted({c for pair in pairs for c in pair})
    code = {c: k for k, c in enumerate(names)}
    main = np.array([code[p[0]] for p in pairs], dtype=np.int64)[inverse]  # [n_tokens]
    alt = np.array([code[p[1]] for p in pairs], dtype=np.int64)[inverse]  # [n_tokens]
    drawn = main.copy()
    candidates = np.flatnonzero((main[1:] == main[:-1]) | (main[1:] == alt[:-1])) + 1
    alt_at = []
    for i in candidates.tolist():
        if main[i] == drawn[i - 1]:
            drawn[i] = alt[i]
            alt_at.append(i)
    palette = {str(int(t)): list(p) for t, p in zip(distinct, pairs, strict=True)}
    return palette, alt_at


# ---------------------------------------------------------------------------- tokenizers


@dataclass
class _Entry:
    key: str
    label: str
    source: str  # "built-in", "file" or "upload"
    spec: str  # encoding name or path
    tokenizer: Tokenizer | None = None
    error: str | None = None
    checked: bool = False


def _readable(e: BaseException, *replace: tuple[str, str]) -> str:
    message = str(e).strip() or type(e).__name__
    if isinstance(e, KeyError) and not isinstance(e, TokforgeError) and e.args:
        message = str(e.args[0])
    for old, new in replace:
        if old:
            message = message.replace(old, new)
    return message.splitlines()[0] if len(message) > 600 else message


class Playground:
    """The state behind the page: the tokenizers (loaded on first use), uploads, and the
    transformer models. Every public method takes a request dict and returns a response dict;
    bad requests raise :class:`RequestError` (or another :class:`TokforgeError`).

    ``tokenizers`` are ``--tokenizer`` specs (an encoding name or a file); ``builtins`` adds
    cl100k_base and o200k_base to the list; ``weights`` is a ``.npz`` written by
    :mod:`tokforge.nn` (or a GPT-2 ``.safetensors``) for the transformer view, used with the
    tokenizers whose vocabulary size it matches; uploads are written under ``upload_dir``
    (default: a temporary folder removed by :meth:`close`).
    """

    def __init__(
        self,
        tokenizers: Sequence[str] = (),
        *,
        builtins: bool = True,
        weights: str | os.PathLike[str] | None = None,
        upload_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._defaults: list[str] = []
        if builtins:
            for name in list_encoding_names():
                self._entries[name] = _Entry(name, name, "built-in", name)
        for spec in tokenizers:
            self._defaults.append(self._add_spec(spec))
        self._weights = None if weights is None else Path(weights)
        if self._weights is not None and not self._weights.is_file():
            raise TokforgeError(f"{self._weights}: no such weights file")
        self._upload_root = None if upload_dir is None else Path(upload_dir)
        self._own_upload_root = upload_dir is None
        self._n_uploads = 0
        self._models: dict[str, tuple[Transformer, str]] = {}
        self._trained: Transformer | None = None
        self._vocab_cache: dict[tuple[str, int, str], list[dict[str, Any]]] = {}

    def _add_spec(self, spec: str) -> str:
        from ..registry import ENCODINGS

        aliases = {"cl100k": "cl100k_base", "o200k": "o200k_base"}
        name = aliases.get(spec, spec)
        if name in ENCODINGS and not Path(spec).is_file():
            self._entries.setdefault(name, _Entry(name, name, "built-in", name))
            return name
        path = Path(spec)
        if not path.exists():
            raise TokforgeError(
                f"{spec}: neither a known encoding ({', '.join(list_encoding_names())}) nor an "
                "existing file"
            )
        label = path.name if path.is_dir() else path.stem
        key = self._unique_key(f"file:{label}")
        self._entries[key] = _Entry(key, label, "file", str(path))
        return key

    def _unique_key(self, key: str) -> str:
        if key not in self._entries:
            return key
        for n in itertools.count(2):
            if f"{key}-{n}" not in self._entries:
                return f"{key}-{n}"
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Removes the uploads folder when the playground made it."""
        with self._lock:
            if self._own_upload_root and self._upload_root is not None:
                shutil.rmtree(self._upload_root, ignore_errors=True)
                self._upload_root = None

    def _check(self, entry: _Entry) -> None:
        """Whether a built-in encoding's rank file is present (hashing it, once), without
        building the tokenizer."""
        if entry.checked:
            return
        entry.checked = True
        if entry.source == "built-in" and entry.tokenizer is None:
            try:
                find_rank_file(entry.spec)
            except TokforgeError as e:
                entry.error = _readable(e)

    def get(self, key: str) -> Tokenizer:
        """The tokenizer called ``key`` in :meth:`tokenizers`, loading it on first use."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                known = ", ".join(self._entries) or "(none)"
                raise RequestError(f"unknown tokenizer {key!r}; known: {known}", 404)
            if entry.tokenizer is not None:
                return entry.tokenizer
            if entry.error is not None:
                raise RequestError(f"{entry.label}: {entry.error}", 409)
            try:
                if entry.source == "built-in":
                    tok = get_encoding(entry.spec)
                else:
                    tok = resolve_tokenizer(entry.spec)
            except Exception as e:  # any failure to read a file is the file's problem
                entry.error = _readable(e)
                entry.checked = True
                raise RequestError(f"{entry.label}: {entry.error}", 409) from None
            entry.tokenizer = tok
            entry.checked = True
            return tok

    def _label(self, key: str) -> str:
        return self._entries[key].label

    def _keys(self, req: dict[str, Any]) -> list[str]:
        keys = _field(req, "tokenizers", list, None)
        if keys is None:
            keys = self.default_keys()
        if not keys:
            raise RequestError("choose at least one tokenizer")
        if len(keys) > MAX_TOKENIZERS:
            raise RequestError(f"at most {MAX_TOKENIZERS} tokenizers at once, not {len(keys)}")
        if not all(isinstance(k, str) for k in keys):
            raise RequestError("'tokenizers' must be a list of tokenizer names")
        return list(dict.fromkeys(keys))

    def default_keys(self) -> list[str]:
        """The tokenizers the page starts with: those given on the command line, else the
        built-in encodings whose rank files are present."""
        if self._defaults:
            return list(self._defaults)
        with self._lock:
            out = []
            for entry in self._entries.values():
                self._check(entry)
                if entry.source == "built-in" and entry.error is None:
                    out.append(entry.key)
            return out

    # ------------------------------------------------------------------------ endpoints

    def tokenizers(self, req: dict[str, Any] | None = None) -> dict[str, Any]:
        """The picker's list: ``{"tokenizers": [{key, label, source, loaded, available,
        error, n_vocab}], "defaults": [...], "limits": {...}}``."""
        with self._lock:
            rows = []
            for entry in self._entries.values():
                self._check(entry)
                tok = entry.tokenizer
                rows.append(
                    {
                        "key": entry.key,
                        "label": entry.label,
                        "source": entry.source,
                        "loaded": tok is not None,
                        "available": entry.error is None,
                        "error": entry.error,
                        "n_vocab": None if tok is None else tok.n_vocab,
                    }
                )
        return {
            "tokenizers": rows,
            "defaults": self.default_keys(),
            "limits": {
                "text_bytes": MAX_TEXT_BYTES,
                "upload_bytes": MAX_UPLOAD_BYTES,
                "tokenizers": MAX_TOKENIZERS,
                "model_tokens": MAX_MODEL_TOKENS,
            },
            "weights": None if self._weights is None else self._weights.name,
        }

    def tokenize(self, req: dict[str, Any]) -> dict[str, Any]:
        """``{"text": str, "tokenizers": [key, ...], "specials": "all" | "none"}`` -> per
        tokenizer: ``ids``; ``byte_offsets`` (token ``i`` is bytes ``offsets[i]:offsets[i+1]``
        of the tokens' UTF-8); ``char_starts``/``char_ends`` (each token's characters, as
        :func:`tokforge.explain` gives them); ``pieces`` (``{id: printable text}``: ``·`` for
        a space, ``<0xE2>`` for part of a character); ``partial_ids`` and ``special_ids``;
        ``palette`` (``{id: [main, alternate]}``) and ``alt_at`` (the positions drawn in the
        alternate colour, see :func:`token_colours`); counts and ``tokens_per_1k_chars``.
        With ``specials="all"`` (the default, as :func:`tokforge.explain` does) special
        tokens written in the text count as such; with ``"none"`` they are ordinary text.
        Per-token data is in flat lists and per-id data in tables: a 1 MB text has about 240k
        tokens but only some 20k distinct ids. ``detail_limit`` (default: all) keeps the
        per-token details (offsets, characters, colours, and the tables of the ids among them)
        to the first ``n_detailed`` tokens; ``ids`` and the counts always cover the whole
        text. The page asks for what it draws."""
        text = _text(req)
        specials = _field(req, "specials", str, "all")
        if specials not in ("all", "none"):
            raise RequestError("'specials' must be 'all' or 'none'")
        detail = _field(req, "detail_limit", int, None)
        if detail is not None and detail < 0:
            raise RequestError("'detail_limit' must be 0 or more")
        keys = self._keys(req)
        results = [self._split(key, text, specials == "all", detail) for key in keys]
        return {
            "n_chars": len(text),
            "n_bytes": len(text.encode("utf-8")),
            "results": results,
        }

    def _split(
        self, key: str, text: str, allow_special: bool, detail: int | None
    ) -> dict[str, Any]:
        # Vectorised: a 1 MB text is about 240k tokens, and a Python step per token costs more
        # than the encoding. Work per token is NumPy; Python only loops over distinct ids.
        tok = self.get(key)
        if allow_special:
            ids = tok.encode(text, allowed_special="all", disallowed_special=())
        else:
            ids = tok.encode(text, allowed_special=set(), disallowed_special=())
        shown = ids if detail is None else ids[:detail]
        ids_arr = np.asarray(shown, dtype=np.int64)  # [n_shown]
        distinct, inverse = np.unique(ids_arr, return_inverse=True)  # [n_distinct], [n_shown]
        special_ids = set(tok.special_tokens.values())
        data = [tok.decode_single_token_bytes(int(t)) for t in distinct]  # [n_distinct]
        lengths = np.array([len(d) for d in data], dtype=np.int64)[inverse]  # [n_shown]
        offsets = np.concatenate([[0], np.cumsum(lengths)])  # [n_shown + 1] byte boundaries
        c_start, c_end = _char_ranges(tok.decode_bytes(shown), offsets)
        pieces = {str(t): printable(d) for t, d in zip(distinct.tolist(), data, strict=True)}
        partial = [int(t) for t, d in zip(distinct, data, strict=True) if _is_partial(d)]
        palette, alt_at = _colour_array(distinct, inverse, special_ids)
        n_chars = len(text)
        n_bytes = len(text.encode("utf-8"))
        return {
            "key": key,
            "label": self._label(key),
            "n_tokens": len(ids),
            "n_chars": n_chars,
            "n_bytes": n_bytes,
            "tokens_per_1k_chars": round(1000 * len(ids) / n_chars, 2) if n_chars else 0.0,
            "chars_per_token": round(n_chars / len(ids), 3) if ids else 0.0,
            # a normalizing tokenizer (SentencePiece's ▁, NFKC) gives tokens whose bytes are
            # not the text's: the ranges are then in the tokens' own bytes
            "bytes_are_text": tok.decode_bytes(ids) == text.encode("utf-8"),
            "ids": ids,
            "n_detailed": len(shown),
            "byte_offsets": offsets.tolist(),
            "char_starts": c_start.tolist(),
            "char_ends": c_end.tolist(),
            "pieces": pieces,
            "partial_ids": partial,
            "special_ids": sorted(int(t) for t in distinct if int(t) in special_ids),
            "palette": palette,
            "alt_at": alt_at,
        }

    def upload(self, req: dict[str, Any]) -> dict[str, Any]:
        """``{"files": [{"name": str, "data": base64}], "pretokenizer": preset?}`` -> the new
        tokenizer's entry. One file is read with :meth:`Tokenizer.load` (any format it
        recognises); several are put in one folder and read as a folder (GPT-2's
        ``vocab.json`` with ``merges.txt``). ``pretokenizer`` names the preset of a
        ``.tiktoken`` rank file that is not cl100k_base or o200k_base. A file that cannot be
        read gives a :class:`RequestError` whose message says why."""
        files = _field(req, "files", list, None)
        if not files:
            raise RequestError("no file: send {'files': [{'name': ..., 'data': base64}]}")
        if len(files) > 4:
            raise RequestError("at most 4 files in one upload")
        preset = _field(req, "pretokenizer", str, None)
        if preset is not None and preset not in _PRESETS:
            raise RequestError(f"'pretokenizer' must be one of {', '.join(_PRESETS)}")
        decoded: list[tuple[str, bytes]] = []
        total = 0
        for f in files:
            if not isinstance(f, dict):
                raise RequestError("each file must be {'name': ..., 'data': base64}")
            name = _safe_name(_field(f, "name", str, ""))
            data_b64 = _field(f, "data", str, "")
            try:
                data = base64.b64decode(data_b64, validate=True)
            except (binascii.Error, ValueError):
                raise RequestError(f"{name}: the data is not valid base64") from None
            total += len(data)
            if total > MAX_UPLOAD_BYTES:
                raise RequestError(
                    f"the upload is over {MAX_UPLOAD_BYTES // 1_000_000} MB; pass big tokenizer "
                    "files on the command line (tokforge serve --tokenizer FILE)",
                    413,
                )
            if not data.strip():
                raise RequestError(f"{name}: the file is empty")
            decoded.append((name, data))
        if len({n for n, _ in decoded}) != len(decoded):
            raise RequestError("two files with the same name")
        with self._lock:
            if self._n_uploads >= MAX_UPLOADS:
                raise RequestError(f"at most {MAX_UPLOADS} uploads; restart the server", 409)
            self._n_uploads += 1
            folder = self._upload_folder() / str(self._n_uploads)
        folder.mkdir(parents=True)
        for name, data in decoded:
            write_atomic(folder / name, data)
        target = folder / decoded[0][0] if len(decoded) == 1 else folder
        shown = decoded[0][0] if len(decoded) == 1 else "+".join(n for n, _ in decoded)
        try:
            if preset is not None and target.is_file():
                tok = Tokenizer.load(target, pretokenizer=preset)
            else:
                tok = Tokenizer.load(target)
            tok.encode("probe", disallowed_special=())
        except Exception as e:  # a malformed file may fail anywhere: report, never crash
            shutil.rmtree(folder, ignore_errors=True)
            message = _readable(e, (str(target), shown), (str(folder), "the upload"))
            raise RequestError(f"{shown}: could not read it as a tokenizer: {message}") from None
        label = Path(shown).stem if len(decoded) == 1 else Path(decoded[0][0]).stem
        with self._lock:
            key = self._unique_key(f"upload:{label}")
            self._entries[key] = _Entry(key, label, "upload", str(target), tok, None, True)
        return {"key": key, "label": label, "n_vocab": tok.n_vocab, "name": tok.name}

    def _upload_folder(self) -> Path:
        if self._upload_root is None:
            self._upload_root = Path(tempfile.mkdtemp(prefix="tokforge-serve-"))
            self._own_upload_root = True
        return self._upload_root

    def artifacts(self, req: dict[str, Any]) -> dict[str, Any]:
        """``{"tokenizers": [...], "strings": [str, ...]}`` -> the gallery: each artifact of
        :mod:`tokforge.inspect.artifacts` (strawberry, numbers, acronyms, case and leading spaces,
        trailing whitespace, indentation, languages), then byte fragments (characters split
        across tokens), then the user's strings; every row with ids, pieces, a note, and
        colours."""
        keys = self._keys(req)
        strings = _field(req, "strings", list, [])
        if len(strings) > MAX_EXTRA_STRINGS:
            raise RequestError(f"at most {MAX_EXTRA_STRINGS} strings")
        extra: list[str] = []
        for s in strings:
            if not isinstance(s, str):
                raise RequestError("'strings' must be a list of strings")
            if len(s) > MAX_EXTRA_CHARS:
                raise RequestError(f"each string may have up to {MAX_EXTRA_CHARS} characters")
            if s.strip():
                extra.append(_clean_text(s))
        toks = [self.get(k) for k in keys]
        labels = [self._label(k) for k in keys]
        report = build_artifacts(toks, extra, names=labels).to_dict()
        sections = report["artifacts"]
        fragments = _fragments_section(toks, labels)
        # the byte fragments go before the user's strings, which stay last
        at = len(sections) - 1 if extra else len(sections)
        sections.insert(at, fragments)
        for section in sections:
            for row in section["rows"]:
                tok = toks[labels.index(row["tokenizer"])]
                palette, alt_at = _colour(row["ids"], set(tok.special_tokens.values()))
                row["palette"] = palette
                row["alt_at"] = alt_at
        return {"tokenizers": labels, "artifacts": sections}

    def vocab(self, req: dict[str, Any]) -> dict[str, Any]:
        """``{"tokenizer": key, "mode": "search" | "longest", "query": str, "regex": bool,
        "ignore_case": bool, "by": "bytes" | "chars", "limit": n}`` -> ``{"entries": [{id,
        text, hex, n_bytes}], "truncated": bool}``: tokens containing ``query`` (a substring
        or a regular expression), or the longest tokens."""
        key = _field(req, "tokenizer", str, None)
        if key is None:
            raise RequestError("'tokenizer' is missing")
        tok = self.get(key)
        mode = _field(req, "mode", str, "search")
        limit = _int(req, "limit", 100, 1, MAX_VOCAB_RESULTS)
        if mode == "longest":
            by = _field(req, "by", str, "bytes")
            if by not in ("bytes", "chars"):
                raise RequestError("'by' must be 'bytes' or 'chars'")
            cache_key = (key, limit, by)
            with self._lock:
                cached = self._vocab_cache.get(cache_key)
            if cached is None:
                cached = [_entry(e.id, e.bytes) for e in longest_tokens(tok, limit, by=by)]
                with self._lock:
                    self._vocab_cache[cache_key] = cached
            return {"tokenizer": key, "mode": mode, "entries": cached, "truncated": False}
        if mode != "search":
            raise RequestError("'mode' must be 'search' or 'longest'")
        query = _field(req, "query", str, "")
        if not query:
            raise RequestError("type something to search for")
        if len(query) > 200:
            raise RequestError("the query may have up to 200 characters")
        regex = _field(req, "regex", bool, False)
        ignore_case = _field(req, "ignore_case", bool, False)
        found = find_tokens(tok, query, regex=regex, ignore_case=ignore_case, limit=limit + 1)
        entries = [_entry(e.id, e.bytes) for e in found[:limit]]
        return {
            "tokenizer": key,
            "mode": mode,
            "entries": entries,
            "truncated": len(found) > limit,
        }

    def lineage(self, req: dict[str, Any]) -> dict[str, Any]:
        """``{"tokenizer": key, "token": id | text}`` -> how the token was built, merge by
        merge: ``tree`` (nested ``{id, text, hex, parts}``), ``steps`` (``[lo][w] -> [low]
        257`` lines), ``tree_text``, ``kind``, ``source`` (recorded merges or ranks)."""
        key = _field(req, "tokenizer", str, None)
        if key is None:
            raise RequestError("'tokenizer' is missing")
        token = req.get("token")
        if isinstance(token, bool) or not isinstance(token, (int, str)):
            raise RequestError("'token' must be a token id or a token's text")
        tok = self.get(key)
        if isinstance(token, int) and not 0 <= token < 1 << 32:
            raise RequestError(f"{token} is not a token id of {self._label(key)}", 404)
        try:
            found = lineage(tok, token)
        except KeyError as e:  # UnknownTokenError: a readable message
            raise RequestError(_readable(e), 404) from None
        data = found.to_dict()
        return {
            "tokenizer": key,
            "token": found.root.id,
            "text": printable(found.root.bytes),
            "hex": found.root.bytes.hex(" "),
            "kind": found.kind,
            "source": found.source,
            "depth": found.depth,
            "steps": found.to_text().splitlines(),
            "tree_text": found.to_tree(),
            "tree": data["tree"],
        }

    def model(self, req: dict[str, Any]) -> dict[str, Any]:
        """``{"tokenizer": key, "text": str}`` -> the prompt's first :data:`MAX_MODEL_TOKENS`
        tokens through :mod:`tokforge.nn`: ``attention`` (``[layer][head][query][key]``
        weights), ``next`` (the ten likeliest next tokens with their probabilities at
        temperature 1), the config, and ``weights``, which says whether they are random."""
        key = _field(req, "tokenizer", str, None)
        if key is None:
            raise RequestError("'tokenizer' is missing")
        text = _text(req)
        if not text:
            raise RequestError("type a prompt first")
        tok = self.get(key)
        ids = tok.encode(text, allowed_special="all", disallowed_special=())
        truncated = len(ids) > MAX_MODEL_TOKENS
        ids = ids[:MAX_MODEL_TOKENS]
        model, weights = self._model(key, tok)
        if max(ids) >= model.config.vocab_size:
            raise RequestError(
                f"the model's vocabulary ({model.config.vocab_size}) does not hold id {max(ids)}"
            )
        rec = record(model, ids)
        attention = rec.attention_weights()  # [n_layers, n_heads, n_seq, n_seq]
        probs = sampling_distribution(rec.logits[-1], 1.0)  # [n_vocab]
        top = np.argsort(-probs, kind="stable")[:10]
        c = model.config
        return {
            "tokenizer": key,
            "ids": ids,
            "pieces": [printable(tok.decode_single_token_bytes(t)) for t in ids],
            "truncated": truncated,
            "weights": weights,
            "random": weights.startswith("random"),
            "config": {
                "vocab_size": c.vocab_size,
                "d_model": c.d_model,
                "n_layers": c.n_layers,
                "n_heads": c.n_heads,
                "positional": c.positional,
            },
            "attention": np.round(attention, 4).tolist(),
            "next": [
                {"id": int(t), "text": _model_piece(model, int(t)), "p": float(probs[t])}
                for t in top
            ],
        }

    def _model(self, key: str, tok: Tokenizer) -> tuple[Transformer, str]:
        with self._lock:
            if key in self._models:
                return self._models[key]
            if self._weights is not None:
                trained = self._load_weights(tok)
                if trained.config.vocab_size == tok.n_vocab:
                    found = (trained, f"trained: {self._weights.name}")
                    self._models[key] = found
                    return found
            config = Config.from_tokenizer(
                tok, d_model=64, n_layers=2, n_heads=4, max_seq_len=MAX_MODEL_TOKENS
            )
            # float32 halves the memory of a 200k-token embedding table; random either way
            params = init_params(config, seed=0, dtype=np.float32)
            model = Transformer(config, params=params, tokenizer=tok)
            note = "random weights (seed 0): the predictions are noise, the mechanics are real"
            if self._weights is not None:
                note += (
                    f"; {self._weights.name} has a vocabulary of "
                    f"{self._load_weights(tok).config.vocab_size}, this tokenizer {tok.n_vocab}"
                )
            self._models[key] = (model, note)
            return model, note

    def _load_weights(self, tok: Tokenizer) -> Transformer:
        path = self._weights
        if self._trained is None and path is not None:
            try:
                if path.suffix == ".safetensors":
                    self._trained = Transformer.from_gpt2(path)
                else:
                    self._trained = Transformer.load(path)
            except Exception as e:  # any unreadable weights file: say so on the page
                raise RequestError(f"{path}: {_readable(e)}", 409) from None
        if self._trained is None:
            raise RequestError("no weights file was given (tokforge serve --weights FILE)", 409)
        return self._trained


def _entry(token_id: int, data: bytes) -> dict[str, Any]:
    return {"id": token_id, "text": printable(data), "hex": data.hex(" "), "n_bytes": len(data)}


def _is_partial(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _model_piece(model: Transformer, token: int) -> str:
    return printable(model.token_bytes(token)) if model.tokenizer is not None else f"#{token}"


def _safe_name(name: str) -> str:
    """A file name safe to write in the uploads folder: its last path component, with
    characters other than letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``.

    >>> _safe_name("../../etc/passwd"), _safe_name("C:\\\\x\\\\tokenizer.json")
    ('passwd', 'tokenizer.json')
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _SAFE_NAME.sub("_", base)[:120].lstrip(".")
    return base or "tokenizer"


#: Texts whose characters some vocabularies split into bytes (an ideograph, an emoji, a
#: family emoji made of several code points joined by U+200D, a rare script).
_FRAGMENT_TEXTS = (
    ("Japanese", "日本語の文章"),
    ("emoji", "I 🍓 you 🫠"),
    ("family emoji", "👩‍👩‍👧"),
    ("Tamil", "தமிழ் மொழி"),
    ("accents", "naïve café, Zürich"),
)


def _fragments_section(toks: Sequence[Tokenizer], labels: Sequence[str]) -> dict[str, Any]:
    rows = []
    for label, text in _FRAGMENT_TEXTS:
        for tok, name in zip(toks, labels, strict=True):
            e = explain(tok, text)
            parts = [t for t in e if t.partial]
            note = (
                f"{len(parts)} of {len(e)} tokens hold part of a character: "
                + "".join(f"[{t.text}]" for t in parts[:6])
                + (" ..." if len(parts) > 6 else "")
                if parts
                else f"every token holds whole characters ({len(e)} tokens)"
            )
            rows.append(
                {
                    "tokenizer": name,
                    "label": label,
                    "text": text,
                    "ids": e.ids,
                    "pieces": e.pieces,
                    "note": note,
                }
            )
    return {
        "key": "fragments",
        "title": "Byte fragments: characters split across tokens",
        "why": (
            "A byte-level vocabulary covers any text, but a rare character may have no token of "
            "its own: its UTF-8 bytes are split over several tokens (shown as <0xNN>), none of "
            "which is text on its own, so a model must emit all of them in the right order."
        ),
        "rows": rows,
    }


# ---------------------------------------------------------------------------- dispatch

Endpoint = Callable[[Playground, dict[str, Any]], dict[str, Any]]

ENDPOINTS: dict[str, Endpoint] = {
    "tokenizers": Playground.tokenizers,
    "tokenize": Playground.tokenize,
    "upload": Playground.upload,
    "artifacts": Playground.artifacts,
    "vocab": Playground.vocab,
    "lineage": Playground.lineage,
    "model": Playground.model,
}


def handle(playground: Playground, endpoint: str, request: Any) -> tuple[int, dict[str, Any]]:
    """Runs ``endpoint`` on ``request`` (the parsed JSON body) and returns ``(HTTP status,
    response)``. Never raises: a bad request is ``(4xx, {"error": message})``, and anything
    unexpected is logged with its traceback and answered ``(500, {"error": ...})``."""
    fn = ENDPOINTS.get(endpoint)
    if fn is None:
        return 404, {"error": f"no such endpoint: {endpoint!r}"}
    if not isinstance(request, dict):
        return 400, {"error": "the request body must be a JSON object"}
    try:
        return 200, fn(playground, request)
    except RequestError as e:
        return e.status, {"error": str(e)}
    except TokforgeError as e:
        return 400, {"error": _readable(e)}
    except RecursionError:
        return 400, {"error": "the request is nested too deeply"}
    except MemoryError:
        return 503, {"error": "out of memory for this request"}
    except Exception as e:
        log.exception("%s failed", endpoint)
        return 500, {"error": f"internal error in {endpoint}: {type(e).__name__}: {e}"}
