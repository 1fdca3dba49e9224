"""The pure-Python reference BPE (tokforge.reference): its worked examples, the textbook case,
and its agreement with the Rust core where they share a definition (pretokenizers, encoding)."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokforge import reference as ref


def test_docstring_examples_run():
    result = doctest.testmod(ref)
    assert result.attempted > 15
    assert result.failed == 0


def test_textbook_walkthrough():
    # The classic example: "lo" and "ow" both occur 4 times; (l, o) wins the tie as the
    # smaller pair, then "low" (4), then "lowe" (lower, lowest: 2). Everything else occurs once.
    counts = ref.count_pretokens(["low lower lowest lowly"], "whitespace")
    merges = ref.train_merges(counts, 100)
    assert merges == [((108, 111), 4), ((256, 119), 4), ((257, 101), 2)]
    assert ref.trace(merges) == [
        "merge 1: (l, o) -> 'lo'  count 4",
        "merge 2: (lo, w) -> 'low'  count 4",
        "merge 3: (low, e) -> 'lowe'  count 2",
    ]
    ranks = ref.vocab_from_merges([p for p, _ in merges])
    inv = ref.ranks_to_bytes(ranks)
    assert [inv[i] for i in ref.encode_piece(b"lowest", ranks)] == [b"lowe", b"s", b"t"]
    assert [inv[i] for i in ref.encode_piece(b"lowly", ranks)] == [b"low", b"l", b"y"]


def test_min_frequency_one_goes_on_with_smallest_pairs():
    counts = ref.count_pretokens(["low lower lowest lowly"], "whitespace")
    merges = ref.train_merges(counts, 5, min_frequency=1)
    # After "lowe" every pair occurs once, so the smallest pair wins each time: of
    # (lowe, r), (lowe, s), (s, t), (low, l), (l, y) that is (l, y) = (108, 121), then
    # (s, t) = (115, 116).
    assert [p for p, _ in merges][3:] == [(108, 121), (115, 116)]


def test_max_token_bytes():
    # "aaaa" holds (a, a) three times (overlapping occurrences count): 3 x 3 = 9. After the
    # merge it is [aa, aa]; "aaaa" would be 4 bytes, over the cap, so training ends.
    merges = ref.train_merges({b"aaaa": 3}, 10, max_token_bytes=2)
    assert merges == [((97, 97), 9)]


def test_merge_and_pair_counts():
    assert ref.merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert ref.merge([5, 5, 5, 5], (5, 5), 9) == [9, 9]
    assert ref.get_pair_counts({(1, 1, 1): 2}) == {(1, 1): 4}


def test_specials_are_cut_out():
    counts = ref.count_pretokens(["a<|x|>b<|xy|>c"], "none", ["<|x|>", "<|xy|>"])
    assert counts == {b"a": 1, b"b": 1, b"c": 1}


def test_vocab_size_too_small():
    with pytest.raises(ValueError, match="at least 258"):
        ref.train(["abc"], 257, special_tokens=["<a>", "<b>"])


def test_render():
    assert ref.render(b"the") == "the"
    assert ref.render(b" the") == "' the'"
    assert ref.render(b"a,b") == "'a,b'"
    assert ref.render(b"\xe4") == "b'\\xe4'"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab \t\n\u3000\u00a0\x1cx")), max_size=40))
def test_whitespace_pretokenizer_matches_core(text):
    from tokforge import Tokenizer

    tok = Tokenizer.from_merges([], pretokenizer="whitespace")
    assert ref.pretokenize(text, "whitespace") == tok.split(text)


# Characters assigned in this Python's Unicode database: the `regex` module may know newer code
# points (say U+187F8) than the Rust regex tables do, and then \p{L} differs on them.
ASSIGNED_TEXT = st.text(st.characters(exclude_categories=["Cn", "Cs"]), max_size=60)


@settings(max_examples=100, deadline=None)
@given(ASSIGNED_TEXT)
@pytest.mark.parametrize("preset", ["cl100k", "o200k", "gpt2"])
def test_preset_pretokenizers_match_core(preset, text):
    from tokforge import Tokenizer

    tok = Tokenizer.from_merges([], pretokenizer=preset)
    assert ref.pretokenize(text, preset) == tok.split(text)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("abc d")), min_size=1, max_size=80))
def test_reference_encoder_matches_core(text):
    from tokforge import Tokenizer

    merges = ref.train([text, text[::-1]], 256 + 12, pretokenizer="cl100k", min_frequency=1)
    tok = Tokenizer.from_merges(merges, pretokenizer="cl100k")
    ranks = ref.vocab_from_merges(merges)
    assert ref.encode(text, ranks, "cl100k") == tok.encode(text)
