"""GPT-2 ``vocab.json`` + ``merges.txt`` reader: a byte-level BPE trained here with HF
``tokenizers`` on slices of the shared corpora, saved with ``model.save``, read back with
``read_gpt2`` and compared id for id with the trained tokenizer; malformed files must raise
VocabFileError naming file and line.

Expected values come from the HF tokenizer that wrote the files, never from the code under
test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tokforge
from conftest import CORPORA, corpus_text, documents, require_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokforge.errors import TokforgeIOError, VocabFileError
from tokforge.interop.gpt2 import ENDOFTEXT, read_gpt2

tokenizers = require_module("tokenizers")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """(original tokenizer, converted tokenizer, converted dict, folder of the saved files)."""
    lines: list[str] = []
    for name in CORPORA:
        lines += corpus_text(name)[:80_000].split("\n")
    tok = tokenizers.ByteLevelBPETokenizer()
    tok.train_from_iterator(lines, vocab_size=3000, min_frequency=2, special_tokens=[ENDOFTEXT])
    folder = tmp_path_factory.mktemp("gpt2")
    tok._tokenizer.model.save(str(folder))
    d = read_gpt2(folder / "vocab.json", folder / "merges.txt")
    return tok._tokenizer, tokenizers.Tokenizer.from_str(json.dumps(d)), d, folder


@pytest.mark.slow
@pytest.mark.parametrize("corpus", CORPORA)
def test_corpus_ids_match_the_original(pair, corpus):
    original, converted, _, _ = pair
    docs = documents(corpus_text(corpus))
    want = [e.ids for e in original.encode_batch(docs)]
    got = [e.ids for e in converted.encode_batch(docs, add_special_tokens=False)]
    assert got == want
    assert converted.decode_batch(want[:50]) == original.decode_batch(want[:50])
    assert converted.decode_batch(want[:50]) == docs[:50]


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    text=st.lists(
        st.one_of(
            st.sampled_from([" ", "  ", "\n", "\t", ENDOFTEXT, "'s", "éé", "日本"]),
            st.characters(exclude_categories=["Cs"]),
        ),
        max_size=40,
    ).map("".join)
)
def test_hypothesis_text_matches_the_original(pair, text):
    original, converted, _, _ = pair
    want = original.encode(text).ids
    assert converted.encode(text, add_special_tokens=False).ids == want
    assert converted.decode(want) == original.decode(want)


def test_endoftext_is_a_special_added_token(pair):
    original, converted, d, _ = pair
    eot = original.token_to_id("<|endoftext|>")
    assert [t["id"] for t in d["added_tokens"] if t["special"]] == [eot]
    assert converted.encode("a<|endoftext|>b", add_special_tokens=False).ids == (
        original.encode("a<|endoftext|>b").ids
    )


def test_merges_in_file_order_without_header(pair):
    _, _, d, dest = pair
    lines = (dest / "merges.txt").read_text(encoding="utf-8").split("\n")
    assert lines[0].startswith("#version")
    assert [" ".join(m) for m in d["model"]["merges"]] == [x for x in lines[1:] if x]


@pytest.mark.slow
def test_tokforge_reads_the_files_with_identical_ids(pair):
    """tokforge's from_gpt2 and load(vocab.json) against the original HF tokenizer: every
    corpus (4 KB documents), special token text included."""
    original, _, _, dest = pair
    for tok in (
        tokforge.Tokenizer.from_gpt2(dest / "vocab.json", dest / "merges.txt"),
        tokforge.Tokenizer.load(dest / "vocab.json"),
    ):
        for corpus in CORPORA:
            docs = documents(corpus_text(corpus))
            want = [e.ids for e in original.encode_batch(docs)]
            assert tok.encode_batch(docs, allowed_special="all") == want, corpus
        assert tok.decode(want[0]) == docs[0]
        assert tok.encode("a<|endoftext|>b", allowed_special="all") == (
            original.encode("a<|endoftext|>b").ids
        )


# ---------------------------------------------------------------------------------------------
# malformed files

VOCAB = {"a": 0, "b": 1, "ab": 2, "c": 3, "abc": 4}


def write(tmp_path: Path, vocab: object, merges: str | bytes) -> tuple[Path, Path]:
    v, m = tmp_path / "vocab.json", tmp_path / "merges.txt"
    v.write_text(vocab if isinstance(vocab, str) else json.dumps(vocab), encoding="utf-8")
    m.write_bytes(merges if isinstance(merges, bytes) else merges.encode())
    return v, m


def test_small_valid_files(tmp_path):
    d = read_gpt2(*write(tmp_path, VOCAB, "#version: 0.2\na b\nab c\n"))
    assert d["model"]["merges"] == [["a", "b"], ["ab", "c"]]
    assert d["added_tokens"] == []
    hf = tokenizers.Tokenizer.from_str(json.dumps(d))
    assert hf.model.token_to_id("abc") == 4


MERGE_ERRORS = {
    "three parts": ("#version: 0.2\na b\na b c\n", "line 3: expected two tokens"),
    "one part": ("a b\nab\n", "line 2: expected two tokens"),
    "double space": ("a  b\n", "line 1: expected two tokens"),
    "left missing": ("x b\n", "line 1: merge 'x' 'b': the left part 'x'"),
    "right missing": ("a x\n", "line 1: merge 'a' 'x': the right part 'x'"),
    "result missing": ("b a\n", "line 1: merge 'b' 'a': the result 'ba'"),
    "repeated merge": ("a b\nab c\na b\n", "line 3: merge 'a' 'b' repeats line 1"),
    "bad utf-8": (b"a b\n\xff c\n", "line 2: invalid UTF-8"),
}


@pytest.mark.parametrize("case", list(MERGE_ERRORS))
def test_malformed_merges(tmp_path, case):
    merges, message = MERGE_ERRORS[case]
    with pytest.raises(VocabFileError, match=r"merges\.txt: ") as e:
        read_gpt2(*write(tmp_path, VOCAB, merges))
    assert message in str(e.value)


VOCAB_ERRORS = {
    "list": ("[1, 2]", "line 1: expected a JSON object of token -> id, got list"),
    "string": ('"a"', "expected a JSON object"),
    "invalid json": ('{\n"a": 0,\n', "line 3: invalid JSON"),
    "empty": ("{}", "the vocabulary is empty"),
    "string id": ({"a": "0"}, "token 'a': id '0' is not an integer"),
    "float id": ({"a": 0.0}, "is not an integer"),
    "bool id": ({"a": True}, "is not an integer"),
    "negative id": ({"a": -1}, "is not an integer >= 0"),
    "shared id": ({"a": 0, "b": 0}, "tokens 'a' and 'b' share id 0"),
    "empty token": ({"": 0}, "the empty string is not a token"),
}


@pytest.mark.parametrize("case", list(VOCAB_ERRORS))
def test_malformed_vocab(tmp_path, case):
    vocab, message = VOCAB_ERRORS[case]
    with pytest.raises(VocabFileError, match=r"vocab\.json") as e:
        read_gpt2(*write(tmp_path, vocab, ""))
    assert message in str(e.value)


def test_missing_files(tmp_path):
    v, m = write(tmp_path, VOCAB, "a b\n")
    with pytest.raises(TokforgeIOError, match=r"nope\.json"):
        read_gpt2(tmp_path / "nope.json", m)
    with pytest.raises(TokforgeIOError, match=r"nope\.txt"):
        read_gpt2(v, tmp_path / "nope.txt")
