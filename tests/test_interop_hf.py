"""Hugging Face ``tokenizer.json`` reading: tokforge must give the ids ``tokenizers``
gives, on every shared corpus and on hypothesis text, for both families of BPE tokenizer.json.

The fixtures are trained here, offline, with ``tokenizers``' own BPE trainer on slices of the
shared corpora, in the configurations real models use:

- ``gpt2``: ByteLevel pre-tokenizer with its regex (GPT-2, RoBERTa);
- ``llama3``: a ``Split`` regex then ByteLevel without regex, ``ignore_merges`` (Llama 3, Qwen);
- ``llama2``: ``Prepend("▁")`` + ``Replace(" ", "▁")`` normalizers, no pre-tokenizer, byte
  fallback, ``<unk>`` with ``fuse_unk``, decoders Replace/ByteFallback/Fuse/Strip (Llama 2);
- ``mistral``: the ``Metaspace`` pre-tokenizer with ``prepend_scheme: first`` and its decoder;
- ``crossing``: Llama 2's layout trained without any pre-tokenizer, so merges join across
  ``▁`` (tokforge must then not cut words before ``▁``, which it does for the others).

``limit_alphabet`` keeps rare characters out of the SentencePiece-style vocabularies, so byte
fallback and unknown tokens are exercised on the Japanese and Chinese corpora."""

from __future__ import annotations

import json
import pickle
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import tokforge
from conftest import CORPORA, corpus_text, documents, require_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokforge.errors import TokforgeError, VocabFileError

tokenizers = require_module("tokenizers")
from tokenizers import (  # noqa: E402
    Regex,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    trainers,
)

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIALS = ["<unk>", "<s>", "</s>", "<|endoftext|>"]
FAMILIES = ["gpt2", "llama3", "llama2", "mistral", "crossing"]


def training_text() -> list[str]:
    """About 150 KB of each shared corpus, as lines."""
    lines: list[str] = []
    for name in CORPORA:
        lines.extend(corpus_text(name)[:150_000].splitlines())
    return lines


def add_byte_fallback_tokens(doc: dict[str, Any]) -> None:
    """Adds ``<0x00>``..``<0xFF>`` to a trained vocabulary (HF's trainer does not)."""
    vocab = doc["model"]["vocab"]
    next_id = max(vocab.values()) + 1 + len(doc["added_tokens"])
    for b in range(256):
        tok = f"<0x{b:02X}>"
        if tok not in vocab:
            vocab[tok] = next_id
            next_id += 1


def build(family: str) -> dict[str, Any]:
    """Trains the ``family`` fixture with ``tokenizers`` and returns its tokenizer.json dict."""
    if family in ("gpt2", "llama3"):
        tok = tokenizers.Tokenizer(models.BPE(ignore_merges=family == "llama3"))
        if family == "gpt2":
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        else:
            tok.pre_tokenizer = pre_tokenizers.Sequence(
                [
                    pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
                ]
            )
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=3000,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(training_text(), trainer)
        return json.loads(tok.to_str())
    tok = tokenizers.Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    if family == "crossing":
        tok.normalizer = normalizers.Sequence(
            [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
        )
        # Lines can be long: keep them short so training stays quick.
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(
        vocab_size=3000, special_tokens=SPECIALS[:3], limit_alphabet=400, show_progress=False
    )
    tok.train_from_iterator(training_text(), trainer)
    doc = json.loads(tok.to_str())
    add_byte_fallback_tokens(doc)
    if family in ("llama2", "crossing"):
        doc["normalizer"] = {
            "type": "Sequence",
            "normalizers": [
                {"type": "Prepend", "prepend": "▁"},
                {"type": "Replace", "pattern": {"String": " "}, "content": "▁"},
            ],
        }
        doc["pre_tokenizer"] = None
        doc["decoder"] = {
            "type": "Sequence",
            "decoders": [
                {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Strip", "content": " ", "start": 1, "stop": 0},
            ],
        }
    else:
        doc["decoder"] = {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}
    return doc


_CACHE: dict[str, tuple[Any, tokforge.Tokenizer, dict[str, Any]]] = {}


def pair(family: str) -> tuple[Any, tokforge.Tokenizer, dict[str, Any]]:
    """(tokenizers.Tokenizer, tokforge.Tokenizer, tokenizer.json dict) for ``family``."""
    if family not in _CACHE:
        doc = build(family)
        hf = tokenizers.Tokenizer.from_str(json.dumps(doc))
        _CACHE[family] = (hf, tokforge.Tokenizer.from_hf_dict(doc, name=family), doc)
    return _CACHE[family]


def hf_ids(hf: Any, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("corpus", CORPORA)
def test_ids_equal_tokenizers_on_every_corpus(family: str, corpus: str) -> None:
    hf, tok, _ = pair(family)
    docs = documents(corpus_text(corpus))
    ours = tok.encode_batch(docs, allowed_special="all")
    theirs = hf_ids(hf, docs)
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a == b, f"{family} {corpus} document {k}: first difference at {first_diff(a, b)}"
    # Decoding is exact too.
    for k in range(0, len(docs), 97):
        assert tok.decode(ours[k]) == hf.decode(theirs[k], skip_special_tokens=False)


def first_diff(a: list[int], b: list[int]) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


EDGE_CASES = [
    "",
    " ",
    "  leading spaces",
    "trailing spaces   ",
    "\n\nnew\r\nlines\n",
    "tabs\tand\u00a0nbsp",
    "▁literal▁meta▁space",
    "<s>hello</s> world <unk>",
    "a<s>b",
    " <s> ",
    "<|endoftext|>tail",
    "emoji 🤗🦀 and CJK 漢字かな",
    "digits 1234567890 and 3.14159",
    "It's DON'T we'LL",
    "\u0301combining",
    "\ufffd\U0010fffd",
]


@pytest.mark.parametrize("family", FAMILIES)
def test_edge_cases(family: str) -> None:
    hf, tok, _ = pair(family)
    for text in EDGE_CASES:
        expected = hf.encode(text, add_special_tokens=False)
        ours = tok.encode(text, allowed_special="all")
        assert ours == expected.ids, repr(text)
        assert tok.decode(ours) == hf.decode(expected.ids, skip_special_tokens=False), repr(text)


def assigned(text: str) -> bool:
    # tokenizers' normalizers and regex engine carry their own Unicode versions; code points
    # this Python calls unassigned are where they may legitimately differ.
    return all(unicodedata.category(c) != "Cn" for c in text)


text_strategy = (
    st.lists(
        st.one_of(
            st.characters(codec="utf-8", exclude_categories=["Cs"]),
            st.sampled_from([" ", "▁", "\n", "<s>", "</s>", "'s", "1", "é", "漢", "\u3000"]),
        ),
        max_size=40,
    )
    .map("".join)
    .filter(assigned)
)


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=text_strategy)
def test_hypothesis_text(family: str, text: str) -> None:
    hf, tok, _ = pair(family)
    expected = hf.encode(text, add_special_tokens=False).ids
    assert tok.encode(text, allowed_special="all") == expected
    assert tok.decode(expected) == hf.decode(expected, skip_special_tokens=False)


@pytest.mark.parametrize("family", FAMILIES)
def test_file_round_trips_load_save_pickle(family: str, tmp_path: Path) -> None:
    hf, tok, doc = pair(family)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    sample = "Hello <s>world</s> 漢字 ▁x"
    expected = hf.encode(sample, add_special_tokens=False).ids
    for loaded in (
        tokforge.Tokenizer.from_hf(path),
        tokforge.Tokenizer.from_hf(tmp_path),
        tokforge.Tokenizer.load(path),
        tokforge.Tokenizer.load(tmp_path),
        pickle.loads(pickle.dumps(tok)),
    ):
        assert loaded.encode(sample, allowed_special="all") == expected
    tok.save(tmp_path / "saved.json")
    again = tokforge.Tokenizer.load(tmp_path / "saved.json")
    assert again.encode(sample, allowed_special="all") == expected
    tok.to_hf(tmp_path / "exported.json")
    reread = tokenizers.Tokenizer.from_file(str(tmp_path / "exported.json"))
    assert reread.encode(sample, add_special_tokens=False).ids == expected
    # Added tokens are special tokens with tiktoken's policy.
    assert "<s>" in tok.special_tokens_set or family in ("gpt2", "llama3")
    with pytest.raises(TokforgeError):
        tok.to_tiktoken(tmp_path / "x.tiktoken")


def test_crossing_fixture_really_merges_across_the_meta_space() -> None:
    """The ``crossing`` fixture is only a test of the cut if some merge joins across ``▁``."""
    _, _, doc = pair("crossing")
    merges = doc["model"]["merges"]
    assert any(b.startswith("▁") and a != "▁" for a, b in merges)
    _, _, llama2 = pair("llama2")
    assert not any(b.startswith("▁") for a, b in llama2["model"]["merges"])


# The other normalizers and pre-tokenizers tokforge reads, in configurations no family above
# uses (no unknown-free alphabet either: unseen characters become <unk>).
OTHER_COMPONENTS = {
    "nfkc-lower-strip": (
        lambda: normalizers.Sequence(
            [normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip()]
        ),
        lambda: pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits(individual_digits=True)]
        ),
    ),
    "nfd-replace-whitespace": (
        lambda: normalizers.Sequence([normalizers.NFD(), normalizers.Replace(Regex(r"\s+"), " ")]),
        lambda: pre_tokenizers.Sequence(
            [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=False)]
        ),
    ),
    # Metaspace's other prepend schemes, ByteLevel's prefix space and NFKD: each against tokenizers
    "nfkd-metaspace-always": (
        lambda: normalizers.NFKD(),
        lambda: pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
    ),
    "metaspace-never": (
        lambda: normalizers.NFC(),
        lambda: pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never"),
    ),
    "bytelevel-add-prefix-space": (
        lambda: normalizers.NFKC(),
        lambda: pre_tokenizers.ByteLevel(add_prefix_space=True),
    ),
    "nfc-split-behaviors": (
        lambda: normalizers.NFC(),
        lambda: pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(r"\s+"), behavior="merged_with_next"),
                pre_tokenizers.Split(" ", behavior="contiguous", invert=True),
                pre_tokenizers.Split(Regex(r"[,.]"), behavior="merged_with_previous"),
            ]
        ),
    ),
}


def build_other(name: str) -> tuple[Any, tokforge.Tokenizer]:
    if name not in _OTHER:
        norm, pre = OTHER_COMPONENTS[name]
        hf = tokenizers.Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=False))
        hf.normalizer = norm()
        hf.pre_tokenizer = pre()
        lines = [line for c in CORPORA for line in corpus_text(c)[:100_000].splitlines()]
        hf.train_from_iterator(
            lines,
            trainers.BpeTrainer(vocab_size=2000, special_tokens=["<unk>"], show_progress=False),
        )
        _OTHER[name] = (hf, tokforge.Tokenizer.from_hf_dict(json.loads(hf.to_str())))
    return _OTHER[name]


_OTHER: dict[str, tuple[Any, tokforge.Tokenizer]] = {}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OTHER_COMPONENTS))
def test_other_components_equal_tokenizers(name: str) -> None:
    hf, tok = build_other(name)
    for corpus in CORPORA:
        docs = documents(corpus_text(corpus))[:300]
        assert tok.encode_batch(docs, allowed_special="all") == hf_ids(hf, docs), corpus

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(text=text_strategy)
    def check(text: str) -> None:
        assert (
            tok.encode(text, allowed_special="all") == hf.encode(text, add_special_tokens=False).ids
        )

    check()


def test_merge_parts_and_lineage_follow_the_merge_list() -> None:
    """``merges`` keeps its meaning (merge k makes id 256 + k) and is None here; the merge list
    is ``hf_merges``, and ``merge_parts``/``lineage`` follow it."""
    doc = {
        "model": {
            "type": "BPE",
            "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4, "abc": 5},
            "merges": [["b", "c"], ["a", "b"], ["a", "bc"]],
        }
    }
    tok = tokforge.Tokenizer.from_hf_dict(doc)
    assert tok.merges is None
    assert tok.hf_merges == [(1, 2, 4), (0, 1, 3), (0, 4, 5)]
    assert [tok.merge_parts(i) for i in range(6)] == [[0], [1], [2], [0, 1], [1, 2], [0, 4]]
    assert str(tok.lineage(5)).splitlines() == ["[b][c] -> [bc] 4", "[a][bc] -> [abc] 5"]
    with pytest.raises(TokforgeError, match="encode_with_unstable"):
        tok.encode_with_unstable("abc")


def test_merge_list_order_not_ranks_decides() -> None:
    """A vocabulary whose merge list disagrees with its id order: tiktoken's rule (lowest id of
    the merged token) would give ``ab|c``; the merge list says ``(b, c)`` first."""
    doc = {
        "version": "1.0",
        "model": {
            "type": "BPE",
            "vocab": {"a": 0, "b": 1, "c": 2, "ab": 3, "bc": 4},
            "merges": [["b", "c"], ["a", "b"]],
        },
    }
    tok = tokforge.Tokenizer.from_hf_dict(doc)
    hf = tokenizers.Tokenizer.from_str(json.dumps(doc))
    for text in ["abc", "abab", "cabc", "bcab"]:
        assert tok.encode(text) == hf.encode(text).ids
    assert tok.encode("abc") == [0, 4]


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda d: d["model"].update(dropout=0.1), "dropout"),
        (lambda d: d["model"].update(type="WordPiece"), "only BPE"),
        (lambda d: d.update(normalizer={"type": "BertNormalizer"}), "BertNormalizer"),
        (lambda d: d.update(pre_tokenizer={"type": "UnicodeScripts"}), "UnicodeScripts"),
        (lambda d: d.update(decoder={"type": "WordPiece"}), "WordPiece"),
        (lambda d: d["model"]["merges"].append(["zz", "q"]), "not in the vocabulary"),
        (lambda d: d["model"].update(continuing_subword_prefix="##"), "continuing_subword_prefix"),
        (
            lambda d: d["added_tokens"].append(
                {"id": 5, "content": "<m>", "lstrip": True, "special": True}
            ),
            "lstrip",
        ),
    ],
)
def test_unsupported_or_broken_files_are_clear_errors(change: Any, needle: str) -> None:
    doc: dict[str, Any] = {
        "version": "1.0",
        "added_tokens": [],
        "model": {
            "type": "BPE",
            "vocab": {"a": 0, "b": 1, "ab": 2},
            "merges": [["a", "b"]],
        },
    }
    change(doc)
    with pytest.raises(VocabFileError, match=needle):
        tokforge.Tokenizer.from_hf_dict(doc)


def test_unknown_character_without_unk_or_fallback_is_a_clear_error() -> None:
    doc = {"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}
    tok = tokforge.Tokenizer.from_hf_dict(doc)
    assert tok.encode("aa") == [0, 0]
    with pytest.raises(KeyError, match="z"):
        tok.encode("az")


def test_garbage_files(tmp_path: Path) -> None:
    for content in [b"{", b"[]", b'{"model": 3}', b'{"model": {"type": "BPE"}}']:
        p = tmp_path / "tokenizer.json"
        p.write_bytes(content)
        with pytest.raises(VocabFileError, match=r"tokenizer\.json"):
            tokforge.Tokenizer.from_hf(p)
