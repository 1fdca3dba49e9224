"""Export a byte-level tokforge tokenizer as a Hugging Face ``tokenizer.json`` dict.

The result loads with ``tokenizers.Tokenizer.from_str(json.dumps(d))`` and
``transformers.PreTrainedTokenizerFast(tokenizer_file=...)``, and encodes every text to the ids
tiktoken gives (``tests/test_interop_hf_export.py`` checks this on the shared corpora, on edge
cases and on hypothesis text). Token id == tiktoken rank; special tokens become added tokens.

What makes the ids equal:

* the pretokenizer: HF ``Split`` (``Isolated``) with the pattern rewritten for Oniguruma, HF's
  regex engine, which reads a few constructs of tiktoken's (Rust ``fancy-regex``) syntax
  differently; see :func:`to_oniguruma`. ``ByteLevel`` (no regex, no prefix space) then maps
  the bytes of each piece to GPT-2's printable alphabet.
* special tokens: added tokens that are also in the model's vocabulary (HF takes an added
  token's id from there, not from ``added_tokens``).
* the model: BPE with ``ignore_merges`` (a piece that is a whole token is that token, as in
  tiktoken) and one merge per multi-byte token, ``merge_parts(id)``: the two tokens its bytes
  end in when only merges of lower rank apply, ordered by the rank of the merged token.

>>> import tokforge
>>> tok = tokforge.Tokenizer.from_merges([(104, 105)], pretokenizer="gpt2")
>>> d = to_hf_dict(tok)
>>> d["model"]["merges"], d["model"]["vocab"]["hi"]
([['h', 'i']], 256)
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ..errors import PatternError, PretokenizerError, VocabError
from ..protocol import TokenizerLike as Tokenizer
from .hf_json import BYTE_LEVEL_DECODER, add_specials, added_token, bpe_model, document

__all__ = ["bytes_to_unicode", "to_hf_dict", "to_oniguruma", "without_tokforge_keys"]

#: The ``whitespace`` preset (alternating runs of Unicode ``White_Space`` and of everything
#: else) as a regex; Oniguruma's ``\s``/``\S`` hold the same 25 code points as Rust's.
WHITESPACE_PATTERN = r"\s+|\S+"

# Escapes whose meaning Oniguruma (Ruby syntax, UTF-8) and Rust's regex share for every code
# point: classes checked over all of Unicode, and plain character escapes.
_SAFE_CLASS_ESCAPES = frozenset("sSdDpP")
_SAFE_CHAR_ESCAPES = frozenset("rntfvaAzx")
_INTERVAL = re.compile(r"\{(\d+)(,(\d*))?\}")
_FLAGS_GROUP = re.compile(r"\(\?([a-zA-Z-]*)(:|\))")


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character (the ``ByteLevel`` alphabet).

    >>> bytes_to_unicode()[32], bytes_to_unicode()[ord("a")]
    ('Ġ', 'a')
    """
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars, strict=True)}


def _escape_end(pattern: str, i: int) -> int:
    """The index just past the escape starting at ``pattern[i] == "\\"``."""
    if i + 1 >= len(pattern):
        raise PatternError(f"pattern ends in a lone backslash: {pattern!r}")
    c = pattern[i + 1]
    if c in "pPx" and pattern.startswith("{", i + 2):
        end = pattern.find("}", i + 2)
        if end < 0:
            raise PatternError(f"unclosed \\{c}{{ at {i} in {pattern!r}")
        return end + 1
    if c in "pP":
        return i + 3  # one-letter class name: \pL
    if c == "x":
        return i + 4  # \xHH
    return i + 2


def _check_escape(esc: str, pattern: str) -> None:
    c = esc[1]
    if c.isalnum() and c not in _SAFE_CLASS_ESCAPES and c not in _SAFE_CHAR_ESCAPES:
        raise PatternError(
            f"cannot export {esc!r} (in {pattern!r}) to an HF tokenizer: its meaning in "
            "Oniguruma has not been checked against tiktoken's regex (\\w, for one, differs "
            "on 8 code points; \\b, \\h, backreferences differ or do not exist in one of them)"
        )


def _class_end(pattern: str, i: int) -> int:
    """The index just past the (possibly nested) character class starting at ``i``."""
    depth = 0
    j = i
    n = len(pattern)
    while j < n:
        c = pattern[j]
        if c == "\\":
            esc_end = _escape_end(pattern, j)
            _check_escape(pattern[j:esc_end], pattern)
            j = esc_end
            continue
        if c == "[":
            if pattern.startswith("[:", j):
                raise PatternError(
                    f"cannot export the POSIX class at {j} in {pattern!r}: Rust's are ASCII "
                    "only, Oniguruma's are Unicode"
                )
            depth += 1
            j += 1
            # a ']' right after '[' or '[^' is a literal in both syntaxes
            if pattern.startswith("^", j):
                j += 1
            if pattern.startswith("]", j):
                j += 1
            continue
        if c == "]":
            depth -= 1
            j += 1
            if depth == 0:
                return j
            continue
        if pattern.startswith(("--", "~~"), j):
            raise PatternError(
                f"cannot export the class set operation {pattern[j : j + 2]!r} in {pattern!r}: "
                "Oniguruma has only '&&'"
            )
        j += 1
    raise PatternError(f"unclosed character class at {i} in {pattern!r}")


def to_oniguruma(pattern: str) -> str:
    r"""Rewrites a tiktoken (Rust ``fancy-regex``) pattern into one that Oniguruma, the regex
    engine of HF ``tokenizers``, reads the same way.

    Found empirically (every code point, then the shared corpora and hypothesis text):

    * ``X{n,m}+`` is possessive in Rust but in Oniguruma's Ruby syntax it is ``(?:X{n,m})+``,
      which swallows a run of any length (``\p{N}{1,3}+`` takes ``1234567`` whole instead of
      ``123|456|7``). It becomes the atomic group ``(?>X{n,m})``.
    * ``$`` and ``^`` are end and start of *text* in Rust without ``(?m)``, of *line* in Ruby
      syntax (``\s+$`` on ``"a  \nb"`` matches ``"  "`` there). They become ``\z`` and ``\A``.
    * ``(?P<name>`` is Python/Rust syntax; Oniguruma spells it ``(?<name>``.

    Equal in both, so kept: ``?+ *+ ++`` (possessive in both), ``\p{..}`` and ``\s``/``\S``/``\d``
    (the same code points over all of Unicode), ``(?i:..)`` (the same case folding for the
    letters of the presets' contractions, ``ſ`` and ``K`` included), lookaround, atomic groups.
    Constructs that differ or were not checked (``\w``, ``\b``, POSIX classes, inline flags
    other than ``i``, backreferences) raise :class:`~tokforge.errors.PatternError`.

    >>> to_oniguruma(r"\p{N}{1,3}+|\s++$")
    '(?>\\p{N}{1,3})|\\s++\\z'
    """
    out: list[str] = []
    groups: list[int] = []
    last_atom: int | None = None  # index in ``out`` where the last complete atom starts
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            j = _escape_end(pattern, i)
            esc = pattern[i:j]
            _check_escape(esc, pattern)
            out.append(esc)
            last_atom = None if esc in (r"\A", r"\z") else len(out) - 1
            i = j
        elif c == "[":
            j = _class_end(pattern, i)
            out.append(pattern[i:j])
            last_atom = len(out) - 1
            i = j
        elif c == "(":
            if pattern.startswith("(?", i):
                flags = _FLAGS_GROUP.match(pattern, i)
                if pattern.startswith("(?P<", i):
                    header, i = "(?<", i + 4
                elif pattern.startswith(("(?:", "(?=", "(?!", "(?>"), i):
                    header, i = pattern[i : i + 3], i + 3
                elif pattern.startswith(("(?<=", "(?<!"), i):
                    header, i = pattern[i : i + 4], i + 4
                elif pattern.startswith("(?<", i):
                    header, i = "(?<", i + 3
                elif flags is not None:
                    if set(flags.group(1)) - set("i-"):
                        raise PatternError(
                            f"cannot export the inline flags {flags.group(0)!r} in {pattern!r}: "
                            "only 'i' means the same in Oniguruma (its 'm' is Rust's 's')"
                        )
                    header, i = flags.group(0), flags.end()
                    if header.endswith(")"):  # (?i) applies to the rest of the group
                        out.append(header)
                        last_atom = None
                        continue
                else:
                    raise PatternError(f"cannot export the group at {i} in {pattern!r}")
            else:
                header, i = "(", i + 1
            groups.append(len(out))
            out.append(header)
            last_atom = None
        elif c == ")":
            if not groups:
                raise PatternError(f"unbalanced ')' at {i} in {pattern!r}")
            out.append(")")
            last_atom = groups.pop()
            i += 1
        elif c == "{" and (m := _INTERVAL.match(pattern, i)) is not None:
            if last_atom is None:
                raise PatternError(f"a repetition with nothing to repeat at {i} in {pattern!r}")
            j = m.end()
            if pattern.startswith("+", j):  # possessive interval -> atomic group
                atom = "".join(out[last_atom:])
                del out[last_atom:]
                out.append(f"(?>{atom}{m.group(0)})")
                j += 1
            else:
                out.append(m.group(0))
            last_atom = None
            i = j
        elif c == "$":
            out.append(r"\z")
            last_atom = None
            i += 1
        elif c == "^":
            out.append(r"\A")
            last_atom = None
            i += 1
        elif c in "*+?|":
            out.append(c)
            last_atom = None
            i += 1
        else:
            out.append(c)
            last_atom = len(out) - 1
            i += 1
    if groups:
        raise PatternError(f"unclosed group in {pattern!r}")
    return "".join(out)


def _pre_tokenizer(tok: Tokenizer) -> dict[str, Any]:
    pre = tok.pretokenizer
    if callable(pre):
        raise PretokenizerError(
            "cannot export a tokenizer with a Python callable pretokenizer to an HF "
            "tokenizer.json: HF needs a regex (or a preset: gpt2, cl100k, o200k, whitespace, none)"
        )
    byte_level = {
        "type": "ByteLevel",
        "add_prefix_space": False,
        "trim_offsets": True,
        "use_regex": False,
    }
    if tok.pattern is not None:
        regex: str | None = to_oniguruma(tok.pattern)
    elif pre == "whitespace":
        regex = WHITESPACE_PATTERN
    elif pre == "none":
        regex = None
    else:
        raise PretokenizerError(f"cannot export the pretokenizer {pre!r} to an HF tokenizer.json")
    steps: list[dict[str, Any]] = []
    if regex is not None:
        steps.append(
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}
        )
    steps.append(byte_level)
    return {"type": "Sequence", "pretokenizers": steps}


def to_hf_dict(tok: Tokenizer) -> dict[str, Any]:
    """The HF ``tokenizer.json`` content (a dict for ``json.dumps``) of a byte-level tokenizer.

    Raises :class:`~tokforge.errors.PretokenizerError` for a callable pretokenizer,
    :class:`~tokforge.errors.PatternError` for a regex construct Oniguruma reads differently
    and that has no rewrite, and :class:`~tokforge.errors.VocabError` for a vocabulary with
    byte fallback or a token that is not the merge of two lower-ranked tokens.
    """
    if tok.byte_fallback is not None:
        raise VocabError(
            "cannot export a character vocabulary with byte fallback (<0x00>..<0xFF>) to an "
            "HF tokenizer.json: only byte-level vocabularies are supported"
        )
    pre_tokenizer = _pre_tokenizer(tok)
    b2u = bytes_to_unicode()
    by_rank = sorted(tok.mergeable_ranks.items(), key=lambda kv: kv[1])
    strings = {rank: "".join(b2u[b] for b in data) for data, rank in by_rank}
    merges: list[list[str]] = []
    for data, rank in by_rank:
        if len(data) < 2:
            continue
        parts = tok.merge_parts(rank)
        if len(parts) != 2:
            raise VocabError(
                f"token {rank} ({data!r}) is not the merge of two lower-ranked tokens "
                f"(BPE with the lower ranks ends in {len(parts)} parts: {parts}), so HF's merge "
                "list cannot produce it as tiktoken does"
            )
        merges.append([strings[parts[0]], strings[parts[1]]])
    # HF ignores the ids in ``added_tokens`` for a token the model's vocabulary lacks and numbers
    # it after the vocabulary instead (cl100k's <|endofprompt|> would become 100260, not 100276),
    # so the special tokens go into the vocabulary too, with their ids. HF cuts them out of the
    # text before pretokenizing, so BPE never meets them.
    vocab = {s: rank for rank, s in strings.items()}
    add_specials(vocab, tok.special_tokens, " in HF's byte-level alphabet")
    return document(
        added=[added_token(text, id_) for text, id_ in tok.special_tokens.items()],
        pre_tokenizer=pre_tokenizer,
        decoder=dict(BYTE_LEVEL_DECODER),
        model=bpe_model(vocab, merges, ignore_merges=True),
    )


def without_tokforge_keys(doc: dict[str, Any]) -> dict[str, Any]:
    """A tokenizer.json dict tokforge wrote with its own keys (a SentencePiece model's merge
    priorities, USER_DEFINED pieces matched as they are) made plain for HF, when HF's merge list
    and added tokens give the same ids; else :class:`~tokforge.errors.VocabError` saying why.

    >>> d = {"model": {"merges": [["a", "b"], ["c", "d"]], "tokforge_merge_priorities": [0, 0]}}
    >>> try:
    ...     without_tokforge_keys(d)
    ... except VocabError as e:
    ...     print(str(e)[:80])
    cannot export to an HF tokenizer.json: the merges 'a b' and 'c d' make different
    """
    model = dict(doc.get("model") or {})
    where = "cannot export to an HF tokenizer.json"
    priorities = model.pop("tokforge_merge_priorities", None)
    if priorities is not None:
        merges = [m.split(" ", 1) if isinstance(m, str) else list(m) for m in model["merges"]]
        groups: dict[int, list[list[str]]] = {}
        last = -1
        for m, p in zip(merges, priorities, strict=False):
            if p < last:
                raise VocabError(f"{where}: the merge priorities are not in list order")
            last = p
            groups.setdefault(p, []).append(m)
        for group in groups.values():
            first = group[0]
            for a, b in group:
                if a + b != first[0] + first[1]:
                    raise VocabError(
                        f"{where}: the merges {' '.join(first)!r} and {a + ' ' + b!r} make "
                        "different pieces with the same SentencePiece score (SentencePiece "
                        "merges the leftmost of their pairs, an HF merge list the one listed "
                        "first)"
                    )
    added = doc.get("added_tokens") or []
    for t in added:
        if t.get("tokforge_literal"):
            raise VocabError(
                f"{where}: the USER_DEFINED piece {t.get('content')!r} is matched in the "
                "normalized text as it is; HF normalizes a normalized added token too (or cuts "
                "a non-normalized one out before normalizing)"
            )
    return {**doc, "model": model}
