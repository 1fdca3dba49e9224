"""The presets' hand-written scanners (rust/src/pretokenize/scan) split exactly like the preset
regexes in the `regex` module, on hypothesis text over the hard cases and over every assigned
character, and on the 1 MB worst cases, where they must also stay fast (fancy-regex and tiktoken
overflow their backtracking stack on ``"x" + " " * 1_000_000 + "y"``).

The Rust tests in rust/src/pretokenize/scan/tests.rs hold the same scanners against fancy-regex on
the whole shared corpora; tests/test_pretokenize.py does so from Python against `regex`."""

from __future__ import annotations

import random
import unicodedata

import pytest
import tokforge
from conftest import require_module
from hypothesis import given, settings
from hypothesis import strategies as st
from tokforge import _core

regex = require_module("regex")
PRESETS = ["gpt2", "cl100k", "o200k"]
# Patterns that are not presets but have a scanner too (Llama 3's and Qwen 2's tokenizer.json
# Split patterns): a custom pattern equal to one of them is served by the scanner.
LLAMA3 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2 = LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")
_SOURCES = {**{p: _core.preset_pattern(p) for p in PRESETS}, "llama3": LLAMA3, "qwen2": QWEN2}
_PATTERNS = {p: regex.compile(src) for p, src in _SOURCES.items()}
_SPLITTERS = {
    **{p: tokforge.Tokenizer.from_merges([], pretokenizer=p) for p in PRESETS},
    "llama3": tokforge.Tokenizer.from_merges([], pattern=LLAMA3),
    "qwen2": tokforge.Tokenizer.from_merges([], pattern=QWEN2),
}


def _check(text: str) -> None:
    for name in _SPLITTERS:
        expected = _PATTERNS[name].findall(text)
        assert _SPLITTERS[name].split(text) == expected, name


def test_llama3_and_qwen2_patterns_use_a_scanner() -> None:
    """Only a scanner survives this input (fancy-regex's backtracking stack overflows)."""
    huge = "x" + " " * 300_000 + "y"
    for name in ("llama3", "qwen2"):
        assert _SPLITTERS[name].split(huge) == ["x", " " * 299_999, " y"], name


# Everything the patterns treat specially, as fragments to concatenate.
FRAGMENTS = [
    # whitespace of every kind, and newline mixes
    " ", "  ", "\t", "\n", "\r", "\r\n", "\n\n", "\n \n", " \r\n ", "\u00a0", "\u2009",
    "\u3000", "\u0085", "\x0b", "\x0c", "\u1680", "\u2028", "\u2029", "\u202f", "\u205f",
    # look like whitespace, are not White_Space
    "\u200b", "\u180e", "\ufeff", "\x1c", "\x1f",
    # contractions in every case, long s, Kelvin sign, near misses
    "'", "'s", "'S", "'d", "'D", "'m", "'M", "'t", "'T", "'ll", "'LL", "'Ll", "'lL", "'ve",
    "'VE", "'vE", "'re", "'RE", "'Re", "'\u017f", "'\u212a", "'l", "'v", "'r", "''", "s",
    "\u017f", "\u212a", "S", "t", "d", "m", "l", "e", "v", "r", "ll", "re",
    # letters: Lu, Ll, Lt, Lm, Lo in several scripts
    "a", "Z", "hello", "World", "ABC", "xY", "ǅ", "ǈ", "ᾼ", "ʰ", "ˆ", "ー", "ª", "日本", "中",
    "ひらがな", "カタカナ", "한국어", "é", "É", "ß", "İ", "ı", "Ω", "ς", "Привет", "ДОМ", "ﬁ",
    "𝐀", "𝐚", "א", "ع",
    # combining marks (Mn, Mc, Me)
    "\u0301", "\u0300\u0301", "\u20dd", "\u0903", "\u064b", "\ufe0f",
    # numbers of several scripts and kinds
    "0", "7", "12", "123", "4567", "٣", "१२", "５", "Ⅻ", "ⅻ", "①", "½", "²", "𝟙", "〇",
    # symbols, punctuation, emoji, controls, private use
    "Ⓐ", "ⓐ", "!", ".", ",", "/", "//", "-", "_", "@", "#", "(", ")", '"', "`", "...", "😀",
    "👍🏽", "€", "—", "…", "。", "、", "\x00", "\x7f", "\ue000",
]  # fmt: skip

_fragment_text = st.lists(
    st.sampled_from(FRAGMENTS) | st.sampled_from(FRAGMENTS).map(lambda f: f * 17),
    max_size=40,
).map("".join)

# The `regex` module may carry a newer Unicode than the Rust `regex` crate tables that the
# scanners (and fancy-regex, and tiktoken) use: a character assigned only in the newer version
# is a letter for one and "other" for the other. Characters that this Python's unicodedata
# (Unicode 14 on 3.11, older than both engines) calls unassigned are left out, so the comparison
# is made where both engines know the character.
_known = st.characters(codec="utf-8").filter(lambda c: unicodedata.category(c) != "Cn")


@settings(max_examples=1500, deadline=None)
@given(_fragment_text)
def test_scanners_equal_regex_on_tricky_text(text):
    _check(text)


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=_known))
def test_scanners_equal_regex_on_any_assigned_text(text):
    _check(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(_fragment_text | st.text(alphabet=_known, max_size=8), max_size=6).map("".join))
def test_scanners_equal_regex_on_mixed_text(text):
    _check(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I'LL 'ſ", {"gpt2": ["I", "'", "LL", " '", "ſ"], "cl100k": ["I", "'LL", " '", "ſ"]}),
        ("a'ſ", {"cl100k": ["a", "'ſ"], "o200k": ["a'ſ"]}),
        ("x  \n\n  ", {"cl100k": ["x", "  \n\n  "], "o200k": ["x", "  \n\n", "  "]}),
        ("aⅫbⓐ", {"cl100k": ["a", "Ⅻ", "b", "ⓐ"], "o200k": ["a", "Ⅻ", "b", "ⓐ"]}),
        ("\u3000word", {"gpt2": ["\u3000", "word"], "cl100k": ["\u3000word"]}),
    ],
)
def test_known_splits(text, expected):
    for preset, pieces in expected.items():
        assert _SPLITTERS[preset].split(text) == pieces, preset
    _check(text)


def _worst_cases() -> dict[str, str]:
    n = 1_000_000
    rng = random.Random(6)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéßДжΩ日ǅʰ"
    return {
        "a": "a" * n,
        "random letters": "".join(rng.choice(letters) for _ in range(n)),
        "digits": "".join(rng.choice("0123456789") for _ in range(n)),
        "cjk": "".join(chr(0x4E00 + rng.randrange(0x5000)) for _ in range(n // 3)),
        "spaces": " " * n,
        "mixed whitespace": "".join(
            rng.choice([" ", "  ", "\n", "\t", "\r\n", "\u3000", "\u00a0"]) for _ in range(n // 2)
        ),
        "x spaces y": "x" + " " * n + "y",
        "x newlines y": "x" + " \n" * (n // 2) + "y",
    }


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_worst_cases(preset):
    tok = _SPLITTERS[preset]
    # Correctness on inputs that make backtracking regexes slow; their speed (linear time) is
    # measured, with numbers, by benches/encode_bench.py --worst-cases --scaling.
    for case, text in _worst_cases().items():
        pieces = tok.split(text)
        assert pieces == _PATTERNS[preset].findall(text), case
        assert "".join(pieces) == text
        if case == "x spaces y":
            assert pieces == ["x", " " * 999_999, " y"]
        if case in ("a", "cjk", "spaces"):
            assert pieces == [text]
        assert tok.decode(tok.encode(text)) == text, case
