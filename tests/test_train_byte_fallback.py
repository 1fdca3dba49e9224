"""Character-level BPE training with byte fallback (``train(..., byte_fallback=True)``,
``tokforge train --byte-fallback``): round trips, rare characters as ``<0xNN>`` tokens, identical
ids in Hugging Face ``tokenizers``, merges equal to a plain-Python oracle, CLI and errors."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise

import pytest
from conftest import CORPORA, corpus_text, documents, require_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokforge import _core
from tokforge.cli import main
from tokforge.errors import TokforgeError
from tokforge.training import coverage_alphabet, train, train_merges

SLICE = 200_000
SPECIAL = "<|endoftext|>"

# name -> (corpora mixed in the training text, coverage, pretokenizer)
CONFIGS = {
    "en_ru_zh_9995": (["en_docs", "man_ru", "man_zh_CN"], 0.9995, "cl100k"),
    "ja_code_de_98": (["man_ja", "code_py", "man_de"], 0.98, "o200k"),
    "zh_ja_98_ws": (["man_zh_CN", "man_ja"], 0.98, "whitespace"),
}


def _training_text(names: Sequence[str]) -> str:
    """About SLICE characters' worth of text, an equal slice of each corpus."""
    return "".join(corpus_text(n)[: SLICE // len(names)] for n in names)


_TOKS: dict[str, object] = {}


def _trained(config: str):
    if config not in _TOKS:
        names, coverage, pre = CONFIGS[config]
        _TOKS[config] = train(
            [_training_text(names)],
            2000,
            byte_fallback=True,
            character_coverage=coverage,
            pretokenizer=pre,
            special_tokens=[SPECIAL],
            progress=False,
            name=config,
        )
    return _TOKS[config]


def _expected_alphabet(text: str, coverage: float) -> list[str]:
    """The coverage set computed from the raw text: every character of it is in some pretoken
    (the presets and whitespace leave nothing out), so character counts are the text's."""
    counts = Counter(text)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(counts.values())
    out, acc = [], 0
    for ch, n in ranked:
        if acc >= coverage * total:
            break
        acc += n
        out.append(ch)
    return out


def _vocab(tok) -> dict[str, int]:
    return tok.to_hf_dict()["model"]["vocab"]


# ------------------------------------------------------------------------------------------
# (1) round trips, (2) rare characters are bytes


@pytest.mark.parametrize("config", list(CONFIGS))
def test_round_trip_every_corpus(config):
    tok = _trained(config)
    for name in CORPORA:
        docs = documents(corpus_text(name))
        for doc, ids in zip(docs, tok.encode_batch(docs), strict=True):
            assert tok.decode(ids) == doc, (config, name)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(st.characters(exclude_categories=["Cs"]), max_size=200))
def test_round_trip_hypothesis_unseen_characters(text):
    for config in ("en_ru_zh_9995", "ja_code_de_98"):
        tok = _trained(config)
        ids = tok.encode(text, disallowed_special=())
        assert tok.decode(ids) == text
        assert tok.decode_bytes(ids) == text.encode()


@pytest.mark.parametrize("config", list(CONFIGS))
def test_alphabet_and_rare_characters_are_bytes(config):
    names, coverage, _ = CONFIGS[config]
    tok = _trained(config)
    text = _training_text(names)
    alphabet = _expected_alphabet(text, coverage)
    vocab = _vocab(tok)
    by_id = {i: s for s, i in vocab.items()}
    assert [by_id[i] for i in range(256)] == [f"<0x{b:02X}>" for b in range(256)]
    assert [by_id[256 + i] for i in range(len(alphabet))] == alphabet
    assert tok.n_vocab == 2000 and vocab[SPECIAL] == 1999
    covered = set(alphabet)
    rare = sorted(set(text) - covered)
    assert rare, "the coverage leaves some characters out"
    for ch in rare[:300]:
        assert tok.encode(ch) == list(ch.encode()), repr(ch)
    # In running text, byte tokens are exactly the uncovered characters' bytes.
    for name in CORPORA:
        doc = corpus_text(name)[:20_000]
        ids = tok.encode(doc)
        assert sum(1 for i in ids if i < 256) == sum(
            len(c.encode()) for c in doc if c not in covered
        ), name
        # No merged token holds an uncovered character.
    merged = [s for s, i in vocab.items() if 256 + len(alphabet) <= i < 1999]
    assert all(set(s) <= covered for s in merged)


# ------------------------------------------------------------------------------------------
# (3) Hugging Face tokenizers gives the same ids


@pytest.mark.slow
@pytest.mark.parametrize("config", list(CONFIGS))
def test_hf_tokenizers_identical_ids(config, tmp_path):
    tokenizers = require_module("tokenizers")
    tok = _trained(config)
    path = tmp_path / "tokenizer.json"
    tok.to_hf(path)
    hf = tokenizers.Tokenizer.from_file(str(path))
    for name in CORPORA:
        docs = documents(corpus_text(name))
        ours = tok.encode_batch(docs)
        theirs = [e.ids for e in hf.encode_batch(docs, add_special_tokens=False)]
        for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert a == b, (config, name, k)
    text = f"a{SPECIAL}b \u0800\U0001f980"
    assert tok.encode(text, allowed_special="all") == hf.encode(text).ids
    assert hf.decode(tok.encode("abc \u00e9")) == "abc \u00e9"


# ------------------------------------------------------------------------------------------
# (4) the merges equal a plain-Python oracle


def oracle(
    counts: Iterable[tuple[bytes, int]],
    alphabet: Sequence[str],
    num_merges: int,
    *,
    min_frequency: int = 2,
    max_token_bytes: int | None = None,
    reserved: Iterable[str] = (),
) -> list[tuple[tuple[int, int], int]]:
    """Byte-fallback BPE training spelled out: recount every pair before every merge. Symbols
    are ids: the alphabet from 256; an uncovered character cuts the pretoken in two."""
    index = {c: 256 + i for i, c in enumerate(alphabet)}
    tokens = {i: c for c, i in index.items()}
    words: list[tuple[list[int], int]] = []
    for pre, n in counts:
        seg: list[int] = []
        for ch in pre.decode():
            if ch in index:
                seg.append(index[ch])
            else:
                words.append((seg, n))
                seg = []
        words.append((seg, n))
    existing = set(alphabet) | {f"<0x{b:02X}>" for b in range(256)} | set(reserved)
    out: list[tuple[tuple[int, int], int]] = []
    next_id = 256 + len(alphabet)
    while len(out) < num_merges:
        pairs: Counter[tuple[int, int]] = Counter()
        for w, n in words:
            for p in pairwise(w):
                pairs[p] += n
        eligible = [
            (c, p)
            for p, c in pairs.items()
            if (s := tokens[p[0]] + tokens[p[1]]) not in existing
            and (max_token_bytes is None or len(s.encode()) <= max_token_bytes)
        ]
        if not eligible:
            break
        count, (a, b) = max(eligible, key=lambda e: (e[0], -e[1][0], -e[1][1]))
        if count < min_frequency:
            break
        tokens[next_id] = tokens[a] + tokens[b]
        existing.add(tokens[next_id])
        for k, (w, n) in enumerate(words):
            new, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    new.append(next_id)
                    i += 2
                else:
                    new.append(w[i])
                    i += 1
            words[k] = (new, n)
        out.append(((a, b), count))
        next_id += 1
    return out


_SMALL = st.text(st.sampled_from("aab bc\u00e9\u00e9\u65e5\u672c\n<0x4>1zq\U0001f980"), max_size=80)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(_SMALL, min_size=1, max_size=6),
    coverage=st.sampled_from([1.0, 0.99, 0.9, 0.7, 0.5]),
    pre=st.sampled_from(["whitespace", "cl100k", "none"]),
    min_frequency=st.sampled_from([1, 2]),
    max_token_bytes=st.sampled_from([None, 4]),
)
def test_merges_equal_oracle(texts, coverage, pre, min_frequency, max_token_bytes):
    if not "".join(texts):
        return
    r = train_merges(
        texts,
        60,
        byte_fallback=True,
        character_coverage=coverage,
        pretokenizer=pre,
        special_tokens=["zq"],
        min_frequency=min_frequency,
        max_token_bytes=max_token_bytes,
        progress=False,
    )
    counter = _core.PretokenCounter(preset=pre, special_tokens=["zq"])
    counter.add_texts(texts)
    chars: Counter[str] = Counter()
    for pre_bytes, n in counter.counts():
        for ch in pre_bytes.decode():
            chars[ch] += n
    assert r.alphabet == coverage_alphabet(
        sorted(chars.items(), key=lambda kv: (-kv[1], kv[0])), coverage
    )
    expected = oracle(
        counter.counts(),
        r.alphabet,
        60,
        min_frequency=min_frequency,
        max_token_bytes=max_token_bytes,
        reserved=["zq"],
    )
    assert list(zip(r.merges, r.counts, strict=True)) == expected
    tok = r.tokenizer()
    joined = "".join(texts).replace("zq", "")
    assert tok.decode(tok.encode(joined)) == joined


def test_reserved_byte_token_text_is_never_merged():
    # With no pretokenizer the text "<0x41>" could be merged into the byte token's spelling.
    r = train_merges(["<0x41>" * 50], 40, byte_fallback=True, pretokenizer="none", progress=False)
    strings = r.token_strings()
    assert "<0x41>" not in strings[256:]
    tok = r.tokenizer()
    assert tok.decode(tok.encode("<0x41><0x41>")) == "<0x41><0x41>"


def test_textbook_trace(capsys):
    tok = train(
        ["low lower lowest lowly"],
        256 + 10 + 3,
        byte_fallback=True,
        character_coverage=1.0,
        pretokenizer="whitespace",
        trace=3,
        progress=False,
    )
    assert capsys.readouterr().out.splitlines() == [
        "merge 1: (l, o) -> 'lo'  count 4",
        "merge 2: (lo, w) -> 'low'  count 4",
        "merge 3: (low, e) -> 'lowe'  count 2",
    ]
    by_id = {i: s for s, i in _vocab(tok).items()}
    assert [by_id[i] for i in range(256, 256 + 10)][:3] == ["l", "o", "w"]
    assert [by_id[i] for i in tok.encode("lowest")] == ["lowe", "s", "t"]


# ------------------------------------------------------------------------------------------
# (5) CLI and errors


def test_cli_byte_fallback(tmp_path, capsys):
    tokenizers = require_module("tokenizers")
    corpus = tmp_path / "corpus.txt"
    text = corpus_text("en_docs")[:80_000] + corpus_text("man_ja")[:1_000]
    corpus.write_text(text, encoding="utf-8")
    out = tmp_path / "out.json"
    rc = main(
        [
            "train",
            "--byte-fallback",
            "--character-coverage",
            "0.999",
            "--vocab-size",
            "600",
            str(corpus),
            "-o",
            str(out),
            "--special",
            SPECIAL,
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "600 ids" in err and "256 byte tokens" in err
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["model"]["byte_fallback"] is True and len(doc["model"]["vocab"]) == 600
    assert doc["decoder"]["decoders"] == [{"type": "ByteFallback"}, {"type": "Fuse"}]
    assert doc["added_tokens"][0]["content"] == SPECIAL and doc["added_tokens"][0]["id"] == 599
    hf = tokenizers.Tokenizer.from_file(str(out))
    import tokforge

    tok = tokforge.Tokenizer.load(out)
    sample = text[:5000] + " \u00fe\U0001f980 done"
    assert tok.encode(sample) == hf.encode(sample, add_special_tokens=False).ids
    assert tok.decode(tok.encode(sample)) == sample

    # The same from counts files.
    counts = tmp_path / "c.counts"
    assert main(["count", str(corpus), "-o", str(counts), "--special", SPECIAL, "-q"]) == 0
    out2 = tmp_path / "out2.json"
    rc = main(["train", "--byte-fallback", "--character-coverage", "0.999", "-v", "600",
               "--from-counts", str(counts), "-o", str(out2), "-q"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    assert json.loads(out2.read_text(encoding="utf-8")) == doc


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "tiktoken"], "--format tiktoken cannot hold a byte-fallback"),
        (["--character-coverage", "0"], "character_coverage must be in (0, 1]"),
        (["--character-coverage", "1.5"], "character_coverage must be in (0, 1]"),
        (["--character-coverage", "-0.2"], "character_coverage must be in (0, 1]"),
        (["--character-coverage", "nan"], "character_coverage must be in (0, 1]"),
        (["-v", "300"], "vocab_size 300 is too small"),
    ],
)
def test_cli_errors(tmp_path, capsys, extra, message):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(corpus_text("man_ja")[:30_000], encoding="utf-8")
    out = tmp_path / "out.json"
    args = ["train", "--byte-fallback", str(corpus), "-o", str(out), "-q"]
    if "-v" not in extra:
        args += ["-v", "600"]
    rc = main(args + extra)
    err = capsys.readouterr().err
    assert rc == 1 and message in err, err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_cli_coverage_needs_byte_fallback(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello world\n", encoding="utf-8")
    rc = main(["train", str(corpus), "-v", "300", "-o", str(tmp_path / "o.json"),
               "--character-coverage", "0.9"])  # fmt: skip
    assert rc == 1 and "only with --byte-fallback" in capsys.readouterr().err


@pytest.mark.parametrize("coverage", [0, 0.0, -1, 1.0000001, 2, math.nan, math.inf])
def test_bad_coverage(coverage):
    with pytest.raises(TokforgeError, match=r"character_coverage must be in \(0, 1\]"):
        train(["abc"], 300, byte_fallback=True, character_coverage=coverage, progress=False)


def test_bad_values():
    with pytest.raises(TypeError, match="character_coverage must be a number"):
        train(["abc"], 300, byte_fallback=True, character_coverage="0.9", progress=False)  # type: ignore[arg-type]
    with pytest.raises(TokforgeError, match="only with byte_fallback"):
        train(["abc"], 300, character_coverage=0.9, progress=False)
    text = corpus_text("man_zh_CN")[:50_000]
    n = len(_expected_alphabet(text, 0.9995))
    with pytest.raises(TokforgeError, match=f"too small.*{n} for the base characters"):
        train([text], 256 + n, byte_fallback=True, special_tokens=["<s>"], progress=False)
    tok = train([text], 256 + n + 1, byte_fallback=True, special_tokens=["<s>"], progress=False)
    assert tok.n_vocab == 256 + n + 1
    r = train_merges([text], 10, byte_fallback=True, progress=False)
    with pytest.raises(TokforgeError, match="too small"):
        r.tokenizer(300)
    with pytest.raises(TokforgeError, match="one character"):
        _core.PretokenCounter().train_chars(["ab"], 3)


def test_sizes_share_merges():
    text = _training_text(["en_docs", "man_de"])[:80_000]
    small, big = train([text], [700, 900], byte_fallback=True, progress=False)
    vs, vb = _vocab(small), _vocab(big)
    assert small.n_vocab == 700 and big.n_vocab == 900
    assert {s: i for s, i in vb.items() if i < 700} == vs
    assert (
        big.to_hf_dict()["model"]["merges"][: len(small.to_hf_dict()["model"]["merges"])]
        == (small.to_hf_dict()["model"]["merges"])
    )
