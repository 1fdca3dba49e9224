"""tokforge -> HF ``tokenizer.json`` export: HF ``tokenizers`` and ``transformers`` load the
exported dict and encode every text to tiktoken's ids (the reference: tiktoken built from the
same rank file, pattern and special tokens), on the shared corpora, special tokens, edge cases,
every code point and hypothesis text; tokenizers trained by tokforge export too."""

from __future__ import annotations

import json
import os
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tokforge
from conftest import (
    CORPORA,
    ENCODING_NAMES,
    corpus_text,
    documents,
    require_module,
    tiktoken_encoding,
    tokforge_encoding,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokforge.errors import PatternError, PretokenizerError, VocabError
from tokforge.interop.hf_export import to_hf_dict, to_oniguruma
from tokforge.training import train


def _require(module: str) -> Any:
    """The module, or skip; under TOKFORGE_REQUIRE_SHARED=1 (CI) a missing one fails, so CI
    cannot pass by skipping (they belong in the ``test`` extra)."""
    if os.environ.get("TOKFORGE_REQUIRE_SHARED") == "1":
        try:
            return __import__(module)
        except ImportError:
            pytest.fail(f"{module} is not installed: the HF export tests need it")
    return require_module(module)


_HF: dict[str, Any] = {}


def hf_tokenizer(name: str) -> Any:
    """``tokenizers.Tokenizer`` loaded from the exported dict of encoding ``name`` (cached)."""
    tokenizers = _require("tokenizers")
    if name not in _HF:
        _HF[name] = tokenizers.Tokenizer.from_str(json.dumps(to_hf_dict(tokforge_encoding(name))))
    return _HF[name]


def hf_ids(hf: Any, text: str) -> list[int]:
    return hf.encode(text, add_special_tokens=False).ids


def hf_batch_ids(hf: Any, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]


SPECIALS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"]

EDGE_CASES = [
    "",
    " ",
    "  ",
    "\n",
    "\r\n",
    "\r\n\r\n \r\n",
    "\r",
    "\n\n\n",
    " \n \n\n  x",
    "a  \nb",  # `\s+$`: `$` is end of line in Oniguruma, end of text in tiktoken
    "a  \n  \nb  \n",
    "x\t\t\n\t ",
    "hello world",
    "Hello  world   ",
    "trailing spaces   ",
    "trailing newline\n",
    "x" + " " * 50 + "y",
    " " * 3000 + "z",
    "don't WE'LL they've I'M",
    "'S 'T 'RE 'VE 'M 'LL 'D 's 't 're 've 'm 'll 'd",
    "IT'S HE'D I'LL WE'RE THEY'VE",
    "'ſ 'K 'ﬅ 'ǅ",  # case folding: long s, Kelvin sign, ligature st, titlecase dz
    "’s ’S ‘ll",
    "0",
    "12",
    "123",
    "1234567",
    "12345678901234567890",
    "1" * 3000,
    "a1b22c333d4444",
    "3.14159 + 2.71828 = 5.85987",
    "٣٤٥٦ ४५६७ ½² Ⅻ①",
    "\u00a0\u2003\u3000\u1680\u2028\u2029\u0085\u180e\u200b\ufeff end",
    "a\u00a0b \u00a0c\u00a0 d",
    "e\u0301 a\u0300\u0323 n\u0303 \u0301\u0301x",
    "\u0915\u094d\u0937 \u0e01\u0e34 \u05e9\u05c1",
    "👩‍💻 👨‍👩‍👧‍👦 🇩🇪 🏳️‍🌈 👍🏽 😀😀😀",
    "日本語のテキスト、句読点。",
    "Привет, МИР! ǅungla Ǆ ǆ ᾈ ß ẞ",
    "def f(x):\n    return x ** 2\n\n\n",
    "path/to/file.txt\n// comment\r\n/* x */",
    "\u0000\u0001\u007f\u0080\u00ff",
    "\U0010ffff\U0001f600\U000e0001",
    "A" * 3000,
    "<|endoftext",  # (a whole special token is always special to HF: see the specials test)
]


# ----------------------------------------------------------------- the OpenAI encodings


@pytest.mark.parametrize("name", ENCODING_NAMES)
@pytest.mark.parametrize("corpus", CORPORA)
def test_corpus_documents_identical(name: str, corpus: str) -> None:
    docs = documents(corpus_text(corpus))
    ref = tiktoken_encoding(name)
    assert hf_batch_ids(hf_tokenizer(name), docs) == ref.encode_ordinary_batch(docs)


@pytest.mark.slow
@pytest.mark.parametrize("corpus", CORPORA)
def test_whole_corpus_identical(corpus: str) -> None:
    text = corpus_text(corpus)
    for name in ENCODING_NAMES:
        assert hf_ids(hf_tokenizer(name), text) == tiktoken_encoding(name).encode_ordinary(text)


@pytest.mark.parametrize("name", ENCODING_NAMES)
def test_decode_corpus_documents(name: str) -> None:
    hf = hf_tokenizer(name)
    for corpus in CORPORA:
        docs = documents(corpus_text(corpus))[:100]
        assert hf.decode_batch(hf_batch_ids(hf, docs)) == docs


@pytest.mark.parametrize("name", ENCODING_NAMES)
def test_edge_cases_identical(name: str) -> None:
    hf, ref = hf_tokenizer(name), tiktoken_encoding(name)
    for text in EDGE_CASES:
        ids = ref.encode_ordinary(text)
        assert hf_ids(hf, text) == ids, text
        assert hf.decode(ids) == text


@pytest.mark.slow
@pytest.mark.parametrize("name", ENCODING_NAMES)
def test_every_code_point_identical(name: str) -> None:
    # All code points but surrogates, in order and each after a space and a letter: HF's regex
    # engine (Oniguruma) and tiktoken's (Rust regex) agree on the classes of every one, the
    # code points Python's (older) unicodedata calls "Cn" included.
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    hf, ref = hf_tokenizer(name), tiktoken_encoding(name)
    texts = ["".join(chars), "".join(f" a{c}" for c in chars[::7])]
    assert hf_batch_ids(hf, texts) == ref.encode_ordinary_batch(texts)


@pytest.mark.parametrize("name", ENCODING_NAMES)
def test_special_tokens_identical(name: str) -> None:
    hf, ref = hf_tokenizer(name), tiktoken_encoding(name)
    specials = sorted(ref.special_tokens_set)
    pieces = ["", " ", "x", "\n", "hello world", "  ", "<|", "|>", "日本", "123", "<|endoftext"]
    texts = [
        "".join(specials),
        " ".join(specials),
        *(a + s + b for s in specials for a in pieces for b in pieces[:4]),
        "<|endoftext|><|endoftext|>x<|endoftext|",
        "<|<|endoftext|>|>",
    ]
    docs = documents(corpus_text("code_py"))[:50] + documents(corpus_text("man_ja"))[:50]
    texts += [SPECIALS[i % len(SPECIALS)].join(d.split("\n", 3)) for i, d in enumerate(docs)]
    for text in texts:
        ids = ref.encode(text, allowed_special="all")
        assert hf_ids(hf, text) == ids, text
        assert hf.decode(ids, skip_special_tokens=False) == text


def test_export_layout() -> None:
    d = to_hf_dict(tokforge_encoding("cl100k_base"))
    ref = tiktoken_encoding("cl100k_base")
    model = d["model"]
    assert model["type"] == "BPE" and model["ignore_merges"] is True
    ids = [*ref._mergeable_ranks.values(), *ref._special_tokens.values()]
    assert sorted(model["vocab"].values()) == sorted(ids)
    assert len(model["merges"]) == sum(len(b) > 1 for b in ref._mergeable_ranks)
    assert all(isinstance(m, list) and len(m) == 2 for m in model["merges"])
    assert {(t["content"], t["id"]) for t in d["added_tokens"]} == set(ref._special_tokens.items())
    assert all(t["special"] and not t["normalized"] for t in d["added_tokens"])


# ----------------------------------------------------------------- the pattern rewrites


def _split_hf(pattern: str, text: str) -> list[str]:
    tokenizers = _require("tokenizers")
    split = tokenizers.pre_tokenizers.Split(tokenizers.Regex(pattern), behavior="isolated")
    return [piece for piece, _ in split.pre_tokenize_str(text)]


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        # a possessive interval is `(?:X{1,3})+` in Oniguruma's Ruby syntax
        (r"\p{N}{1,3}+|\D+", "1234567 x"),
        # `$` is end of line in Oniguruma, end of text in tiktoken
        (r"\s+$|\S+|\s", "a  \nb  "),
        (r"^\s+|\S+|\s", " a\n  b"),
        (r"(?P<w>\S+)|\s+", "ab  cd"),
    ],
)
def test_rewrites_are_needed_and_sufficient(pattern: str, text: str) -> None:
    reference = tokforge.Tokenizer.from_merges([], pattern=pattern)  # tiktoken's regex engine
    expected = reference.split(text)
    assert _split_hf(to_oniguruma(pattern), text) == expected
    if "(?P<" not in pattern:  # (the named group only fails to compile in Oniguruma)
        assert _split_hf(pattern, text) != expected, "Oniguruma now reads it as Rust does"


@pytest.mark.parametrize(
    "pattern", [r"\w+|\s", r"\b\S+", r"[[:space:]]+|\S", r"(?m)\S+$", r"(?s).", r"(a)\1"]
)
def test_unverified_constructs_refused(pattern: str) -> None:
    with pytest.raises(PatternError):
        to_oniguruma(pattern)


# ----------------------------------------------------------------- hypothesis


def _not_unassigned(c: str) -> bool:
    # Python's unicodedata (Unicode 14 on 3.11) calls code points "Cn" that Oniguruma and
    # Rust's regex (both newer) have assigned; the two engines agree on those too
    # (test_every_code_point_identical), but keep hypothesis to what Python can classify.
    return unicodedata.category(c) != "Cn"


_alphabet = st.sampled_from(
    list(" \t\n\r\u00a0\u2009\u3000\u0085'’sdmtlvreSDMTLVREſK0123456789٣४aZéÉßǅ")
    + list("日本ーあアÀ\u0301.,!?-_/\\()[]{}<|>😀👍🏽\u200d")
)
_pieces = [t for t in EDGE_CASES if len(t) < 100 and all(map(_not_unassigned, t))] + SPECIALS
_text = st.one_of(
    st.text(st.characters(exclude_categories=["Cs", "Cn"])),
    st.text(alphabet=_alphabet),
    st.lists(st.sampled_from(_pieces)).map("".join),
)


@pytest.mark.slow
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_text)
def test_hypothesis_identical(text: str) -> None:
    for name in ENCODING_NAMES:
        hf, ref = hf_tokenizer(name), tiktoken_encoding(name)
        ids = ref.encode(text, allowed_special="all")
        assert hf_ids(hf, text) == ids
        assert hf.decode(ids, skip_special_tokens=False) == text
        assert hf.decode(ref.encode_ordinary(text)) == text


# ----------------------------------------------------------------- transformers


@pytest.mark.parametrize("name", ENCODING_NAMES)
def test_transformers_fast_tokenizer_identical(name: str, tmp_path: Path) -> None:
    transformers = _require("transformers")
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(to_hf_dict(tokforge_encoding(name))), encoding="utf-8")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_file=str(path))
    ref = tiktoken_encoding(name)
    docs = [d for c in CORPORA for d in documents(corpus_text(c))[:20]]
    for text in EDGE_CASES + docs:
        assert fast.encode(text, add_special_tokens=False) == ref.encode_ordinary(text), text
    for text in ["a<|endoftext|>b", "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>"]:
        ids = ref.encode(text, allowed_special="all")
        assert fast.encode(text, add_special_tokens=False) == ids
        assert fast.decode(ids, clean_up_tokenization_spaces=False) == text


# ----------------------------------------------------------------- trained tokenizers

_TRAINED: dict[str, tokforge.Tokenizer] = {}


def trained(pretokenizer: str) -> tokforge.Tokenizer:
    """A 3000-id tokenizer trained on the first 100 KB of each shared corpus (cached)."""
    if pretokenizer not in _TRAINED:
        text = "".join(corpus_text(c)[:100_000] for c in CORPORA)
        _TRAINED[pretokenizer] = train(
            [text], 3000, pretokenizer=pretokenizer, special_tokens=SPECIALS, progress=False
        )
    return _TRAINED[pretokenizer]


def _check_trained(
    pretokenizer: str, slice_docs: Callable[[list[str]], list[str]], ref_pattern: str | None
) -> None:
    tokenizers = _require("tokenizers")
    tok = trained(pretokenizer)
    hf = tokenizers.Tokenizer.from_str(json.dumps(to_hf_dict(tok)))
    ref = None
    if ref_pattern is not None:  # tiktoken with the same ranks, as a second reference
        tiktoken = _require("tiktoken")
        ref = tiktoken.Encoding(
            "trained",
            pat_str=ref_pattern,
            mergeable_ranks=tok.mergeable_ranks,
            special_tokens=tok.special_tokens,
        )
    for corpus in CORPORA:
        docs = slice_docs(documents(corpus_text(corpus)))
        ids = hf_batch_ids(hf, docs)
        assert ids == tok.encode_ordinary_batch(docs), corpus
        if ref is not None:
            assert ids == ref.encode_ordinary_batch(docs), corpus
    for text in EDGE_CASES:
        assert hf_ids(hf, text) == tok.encode_ordinary(text), text
    text = "x<|endoftext|>y <|fim_prefix|>\n"
    assert hf_ids(hf, text) == tok.encode(text, allowed_special="all")


@pytest.mark.slow
@pytest.mark.parametrize("pretokenizer", ["gpt2", "cl100k"])
def test_trained_tokenizer_identical(pretokenizer: str) -> None:
    _check_trained(pretokenizer, lambda docs: docs, trained(pretokenizer).pattern)


@pytest.mark.parametrize(
    ("pretokenizer", "ref_pattern"), [("whitespace", r"\s+|\S+"), ("none", None)]
)
def test_trained_tokenizer_without_regex_identical(
    pretokenizer: str, ref_pattern: str | None
) -> None:
    _check_trained(pretokenizer, lambda docs: docs[:100], ref_pattern)


# ----------------------------------------------------------------- what cannot be exported


def test_callable_pretokenizer_refused() -> None:
    tok = tokforge.Tokenizer.from_merges([(104, 105)], pretokenizer=lambda s: s.split(" "))
    with pytest.raises(PretokenizerError, match="callable"):
        to_hf_dict(tok)


def test_byte_fallback_vocabulary_refused() -> None:
    ranks = {b"a": 256, b"b": 257, b"ab": 258}
    tok = tokforge.Tokenizer(
        "chars", pat_str=r"\S+|\s+", mergeable_ranks=ranks, byte_fallback=list(range(256))
    )
    with pytest.raises(VocabError, match="byte fallback"):
        to_hf_dict(tok)


def test_token_without_merge_parts_refused() -> None:
    ranks = {bytes([b]): b for b in range(256)} | {b"abc": 256}  # neither "ab" nor "bc"
    tok = tokforge.Tokenizer("odd", pat_str=r"\S+|\s+", mergeable_ranks=ranks)
    with pytest.raises(VocabError, match="not the merge of two"):
        to_hf_dict(tok)


@pytest.mark.parametrize("name", ["tokforge.interop.hf_export", "tokforge.interop.hf_json"])
def test_module_doctests(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0
