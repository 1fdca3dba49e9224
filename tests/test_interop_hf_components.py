"""tokenizer.json files built and trained by the ``tokenizers`` library itself, one per
pre-tokenizer combination tokforge reads, compared id for id with ``tokenizers`` on the shared
corpora cut in 4 KB documents and on hypothesis text; plus a byte-level vocabulary holding a raw
UTF-8 token (as Command-R's does)."""

from __future__ import annotations

import json

import pytest
import tokforge
from conftest import CORPORA, corpus_text, documents, require_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

tokenizers = require_module("tokenizers")
from tokenizers import Regex, decoders, models, pre_tokenizers, trainers  # noqa: E402

pt = pre_tokenizers
CONFIGS = {
    "punctuation": lambda: pt.Sequence([pt.WhitespaceSplit(), pt.Punctuation()]),
    "punctuation_contiguous": lambda: pt.Sequence([pt.Whitespace(), pt.Punctuation("contiguous")]),
    "bert": lambda: pt.BertPreTokenizer(),
    "char_delimiter": lambda: pt.CharDelimiterSplit("e"),
    "whitespace_fixed_length": lambda: pt.Sequence([pt.WhitespaceSplit(), pt.FixedLength(3)]),
    # Falcon's: ByteLevel first, then Digits and Split on its byte-mapped text.
    "bytelevel_digits_split": lambda: pt.Sequence(
        [
            pt.ByteLevel(add_prefix_space=False, use_regex=True),
            pt.Digits(individual_digits=False),
            pt.Split(Regex(r"[0-9][0-9][0-9]"), "isolated"),
        ]
    ),
    "bytelevel_punctuation": lambda: pt.Sequence(
        [pt.ByteLevel(add_prefix_space=True, use_regex=False), pt.Punctuation()]
    ),
    "split_then_bytelevel": lambda: pt.Sequence(
        [
            pt.Split(Regex(r"\s+|\p{L}+|\p{N}"), "isolated"),
            pt.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    ),
}


def training_text() -> list[str]:
    out: list[str] = []
    for name in CORPORA:
        out += documents(corpus_text(name)[:60_000])
    return out


_BUILT: dict[str, tuple[object, tokforge.Tokenizer]] = {}


def built(config: str):
    if config not in _BUILT:
        tok = tokenizers.Tokenizer(models.BPE())
        tok.pre_tokenizer = CONFIGS[config]()
        byte_level = "bytelevel" in config
        if byte_level:
            tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=1500,
            show_progress=False,
            initial_alphabet=pt.ByteLevel.alphabet() if byte_level else [],
        )
        tok.train_from_iterator(training_text(), trainer=trainer)
        doc = json.loads(tok.to_str())
        _BUILT[config] = (tok, tokforge.Tokenizer.from_hf_dict(doc))
    return _BUILT[config]


def known_chars(config: str, text: str) -> bool:
    """Without byte-level or an unknown token, characters outside the trained alphabet have no
    id in either library: keep the texts made of known characters (or of ones the
    pre-tokenizer removes)."""
    hf, _ = built(config)
    if "bytelevel" in config:
        return True
    removed = {"e"} if config == "char_delimiter" else {c for c in set(text) if c.isspace()}
    return all(hf.token_to_id(c) is not None for c in set(text) - removed)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_corpus_documents_match_tokenizers(config):
    hf, tok = built(config)
    n = 0
    for name in CORPORA:
        for doc in documents(corpus_text(name)[:60_000]):
            if not known_chars(config, doc):
                continue
            n += 1
            want = hf.encode(doc, add_special_tokens=False).ids
            assert tok.encode_ordinary(doc) == want, doc[:80]
            if "bytelevel" in config:
                assert tok.decode(want) == hf.decode(want)
    assert n > 10


@pytest.mark.parametrize("config", list(CONFIGS))
@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(st.sampled_from(list("ab e1234567890.,;!?-'\"()[]$^²³½٣ 　\n\téü中")), max_size=40))
def test_hypothesis_text_matches_tokenizers(config, text):
    hf, tok = built(config)
    if known_chars(config, text):
        assert tok.encode_ordinary(text) == hf.encode(text, add_special_tokens=False).ids


def test_raw_utf8_token_in_a_byte_level_vocabulary():
    hf, _ = built("bytelevel_digits_split")
    doc = json.loads(hf.to_str())
    vocab = doc["model"]["vocab"]
    flag = "🇸"
    mapped = "".join(pt.ByteLevel.alphabet() and _byte_char(b) for b in flag.encode("utf-8"))
    # the byte-level token for the flag, built by merges, and the raw one
    parts = [_byte_char(b) for b in flag.encode("utf-8")]
    merges = doc["model"]["merges"]
    acc = parts[0]
    for p in parts[1:]:
        if acc + p not in vocab:
            vocab[acc + p] = len(vocab)
        merges.append([acc, p])
        acc += p
    assert acc == mapped
    raw_id = len(vocab)
    vocab[flag] = raw_id
    ref = tokenizers.Tokenizer.from_str(json.dumps(doc))
    tok = tokforge.Tokenizer.from_hf_dict(doc)
    for text in [flag, "a " + flag * 3, flag + "1234"]:
        want = ref.encode(text, add_special_tokens=False).ids
        assert raw_id not in want
        assert tok.encode_ordinary(text) == want
    assert tok.decode([raw_id]) == ref.decode([raw_id]) == flag
    assert tok.decode([vocab[mapped]]) == flag


def _byte_char(b: int) -> str:
    from tokforge.interop.hf_export import bytes_to_unicode

    return bytes_to_unicode()[b]


nm = tokenizers.normalizers
NORMALIZERS = {
    "nfd_strip_accents": lambda: nm.Sequence([nm.NFD(), nm.StripAccents(), nm.Lowercase()]),
    "nmt_nfkc": lambda: nm.Sequence([nm.Nmt(), nm.NFKC()]),
    "byte_level": lambda: nm.ByteLevel(),
}


_NORM: dict[str, tuple[object, tokforge.Tokenizer]] = {}


def built_normalizer(config: str):
    if config not in _NORM:
        tok = tokenizers.Tokenizer(models.BPE())
        tok.normalizer = NORMALIZERS[config]()
        tok.pre_tokenizer = pt.Split(Regex(r"\s+|[^\s]+"), "isolated")
        alphabet = pt.ByteLevel.alphabet() if config == "byte_level" else []
        if config == "byte_level":
            tok.pre_tokenizer = pt.Split(Regex("Ġ|[^Ġ]+"), "isolated")
            tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=1500, show_progress=False, initial_alphabet=alphabet
        )
        tok.train_from_iterator(training_text(), trainer=trainer)
        _NORM[config] = (tok, tokforge.Tokenizer.from_hf_dict(json.loads(tok.to_str())))
    return _NORM[config]


@pytest.mark.parametrize("config", list(NORMALIZERS))
def test_normalizers_match_tokenizers(config):
    hf, tok = built_normalizer(config)
    texts = [d for name in CORPORA for d in documents(corpus_text(name)[:60_000])]
    texts += ["Ça\u0301 va\u200b\x07\tbien\ufeff", "x\x01y\r\nz\u2581", "ﬁ ½ Ⅻ"]
    n = 0
    for text in texts:
        normalized = hf.normalizer.normalize_str(text)
        if any(hf.token_to_id(c) is None for c in set(normalized)):
            continue
        n += 1
        want = hf.encode(text, add_special_tokens=False).ids
        assert tok.encode_ordinary(text) == want, text[:80]
    assert n > 10
