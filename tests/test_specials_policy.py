"""The special-token policy: one check shared by every encode entry point, tiktoken's rule that a
disallowed special token anywhere in the text raises (even inside an allowed one), tokforge's
leftmost-longest choice among overlapping allowed ones, ``_encode_bytes``, lone surrogates, and
long special tokens. Ids marked "by hand" are derived in the comments, not taken from tokforge."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import pytest
from conftest import require_module, require_shared, tiktoken_encoding, tokforge_encoding
from hypothesis import given, settings
from hypothesis import strategies as st
from tokforge import Tokenizer
from tokforge.errors import DisallowedSpecialTokenError, TokforgeError

EOT = "<|endoftext|>"
FIM = "<|fim|>"
# A byte-level vocabulary with two merges and specials; shared by tokforge and tiktoken.
PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
RANKS = {bytes([b]): b for b in range(256)} | {b"he": 256, b"hel": 257}
# "ab" and "bc" overlap (one's end is the other's start) but never start at the same place, so
# tiktoken's result does not depend on its hash map's order: it can be an oracle for them.
SPECIALS = {EOT: 1000, FIM: 1001, "ab": 1002, "bc": 1003}


def tok_and_ref() -> tuple[Tokenizer, Any]:
    tok = Tokenizer("t", pat_str=PAT, mergeable_ranks=RANKS, special_tokens=SPECIALS)
    require_module("tiktoken")
    import tiktoken

    ref = tiktoken.Encoding("t", pat_str=PAT, mergeable_ranks=RANKS, special_tokens=SPECIALS)
    return tok, ref


# Each policy form as a factory: iterators must be fresh for every call.
ALLOWED: dict[str, Callable[[], Any]] = {
    "default": lambda: None,
    "empty set": lambda: set(),
    "all": lambda: "all",
    "{EOT}": lambda: {EOT},
    "frozenset{bc}": lambda: frozenset({"bc"}),
    "{EOT, ab, bc}": lambda: {EOT, "ab", "bc"},
    "iter[EOT]": lambda: iter([EOT]),
    "dict keys": lambda: {FIM: 0}.keys(),
}
DISALLOWED: dict[str, Callable[[], Any]] = {
    "default": lambda: None,
    "all": lambda: "all",
    "()": lambda: (),
    "None": lambda: "NONE",
    "{EOT}": lambda: {EOT},
    "list[FIM, ab]": lambda: [FIM, "ab"],
    "iter[EOT]": lambda: iter([EOT]),
    "{zz}": lambda: {"zz"},
    "tuple(zz, EOT)": lambda: ("zz", EOT),
}
TEXTS = [
    "",
    "hello",
    "hello zz",
    f"a{EOT}b",
    f"{FIM}x{EOT}",
    "abc",
    "xbc",
    "zabz",
    f"he{EOT}hel zz bc",
]


def kwargs(a: str, d: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if a != "default":
        out["allowed_special"] = ALLOWED[a]()
    if d != "default":
        v = DISALLOWED[d]()
        out["disallowed_special"] = None if v == "NONE" else v
    return out


def run_all(tok: Tokenizer, text: str, a: str, d: str) -> dict[str, Any]:
    """The ids of ``text`` through every encode entry point, each with fresh policy arguments;
    ``"raises"`` where the call raised a ValueError."""

    def go(f: Callable[[dict[str, Any]], Any]) -> Any:
        try:
            return f(kwargs(a, d))
        except ValueError:
            return "raises"

    return {
        "encode": go(lambda kw: tok.encode(text, **kw)),
        "encode_to_numpy": go(lambda kw: tok.encode_to_numpy(text, **kw).tolist()),
        "encode_batch": go(lambda kw: tok.encode_batch([text, "he"], **kw)[0]),
        "encode_batch_to_numpy": go(
            lambda kw: _second(*tok.encode_batch_to_numpy(["he", text], **kw))
        ),
        # its ids are not encode's (stable tokens and completions): here whether it raises,
        # its ids against tiktoken's in the test
        "encode_with_unstable": go(lambda kw: tok.encode_with_unstable(text, **kw) and "ok"),
    }


def _second(ids: Any, offsets: Any) -> list[int]:
    return list(ids[offsets[1] : offsets[2]].tolist())


@pytest.mark.parametrize("a", list(ALLOWED))
@pytest.mark.parametrize("d", list(DISALLOWED))
def test_every_entry_point_every_policy_form_agrees_with_tiktoken(a: str, d: str) -> None:
    tok, ref = tok_and_ref()
    for text in TEXTS:
        got = run_all(tok, text, a, d)
        # against each other: every entry point raises or returns the same ids
        ids = {k: v for k, v in got.items() if k != "encode_with_unstable"}
        assert len({repr(v) for v in ids.values()}) == 1, (text, got)
        assert (got["encode_with_unstable"] == "raises") == (got["encode"] == "raises"), text
        # against tiktoken (its encode_batch refuses None with a TypeError: skipped there; an
        # empty iterator of disallowed tokens makes tiktoken raise on every text: not used)
        try:
            expected: Any = ref.encode(text, **kwargs(a, d))
        except TypeError:
            # tiktoken cannot take this form (an iterator or dict keys as allowed_special:
            # it subtracts it from a set, or hands it to Rust as a set); tokforge takes any
            # iterable. Compare with the same tokens as a set.
            fixed = kwargs(a, d)
            if "allowed_special" in fixed and not isinstance(fixed["allowed_special"], str):
                fixed["allowed_special"] = set(fixed["allowed_special"])
            try:
                expected = ref.encode(text, **fixed)
            except ValueError:
                expected = "raises"
        except ValueError:
            expected = "raises"
        assert got["encode"] == expected, (text, a, d)
        if expected != "raises":
            try:
                want = ref.encode_with_unstable(text, **_as_sets(kwargs(a, d)))
            except ValueError:
                pytest.fail(f"tiktoken's encode_with_unstable raised where encode did not: {text}")
            stable, completions = tok.encode_with_unstable(text, **kwargs(a, d))
            assert stable == want[0]
            assert sorted(completions) == sorted(list(c) for c in want[1])


def _as_sets(kw: dict[str, Any]) -> dict[str, Any]:
    if "allowed_special" in kw and not isinstance(kw["allowed_special"], str):
        kw["allowed_special"] = set(kw["allowed_special"])
    return kw


def test_an_iterator_of_disallowed_tokens_is_read_once_and_honoured() -> None:
    tok, _ = tok_and_ref()
    with pytest.raises(DisallowedSpecialTokenError, match="endoftext"):
        tok.encode(f"x{EOT}", disallowed_special=iter([EOT]))
    with pytest.raises(DisallowedSpecialTokenError, match="zz"):
        tok.encode_batch_to_numpy(["zz"], disallowed_special={"zz"})
    with pytest.raises(DisallowedSpecialTokenError, match="zz"):
        tok.encode_batch(["ok", "a zz"], disallowed_special=iter(["zz"]))
    with pytest.raises(TypeError, match="allowed_special"):
        tok.encode("x", allowed_special="some")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="disallowed_special"):
        tok.encode("x", disallowed_special=[1])  # type: ignore[list-item]


def test_disallowed_wins_over_allowed() -> None:
    tok, ref = tok_and_ref()
    for f in (tok.encode, tok.encode_to_numpy, tok.encode_with_unstable, ref.encode):
        with pytest.raises(ValueError, match="endoftext"):
            f(EOT, allowed_special={EOT}, disallowed_special={EOT})
    with pytest.raises(ValueError, match="endoftext"):
        tok.encode_batch(["x", EOT], allowed_special={EOT}, disallowed_special={EOT})


# ---------------------------------------------------------------- overlapping special tokens

# "<s>" = 256 and "<s><s>" = 257 over bare bytes (no merges): "<" = 60, "s" = 115, ">" = 62.
S, SS = 256, 257
LT_S_GT = [60, 115, 62]
NESTED = Tokenizer.from_merges([], pretokenizer="none", special_tokens={"<s>": S, "<s><s>": SS})


@pytest.mark.parametrize(
    ("text", "allowed", "disallowed", "expected"),
    [
        # both allowed: leftmost, then longest: "<s><s>" at 0..6
        ("<s><s>", "all", "all", [SS]),
        # then "<s>" at 6..9
        ("<s><s><s>", "all", "all", [SS, S]),
        # tiktoken's rule: "<s>" is disallowed (the default: all not allowed) and occurs
        # inside the allowed "<s><s>": raises
        ("<s><s>", {"<s><s>"}, "all", "raises"),
        # "<s><s>" disallowed and present: raises, though "<s>" is allowed
        ("<s><s>", {"<s>"}, "all", "raises"),
        # only "<s><s>" allowed, nothing disallowed: 0..6 is the special token
        ("<s><s>", {"<s><s>"}, (), [SS]),
        # 0..6 special, then "<s>" at 6..9 is plain text
        ("<s><s><s>", {"<s><s>"}, (), [SS, *LT_S_GT]),
        # only "<s>" allowed: the longest match at 0 is "<s><s>", not allowed, so it is text
        # and the search resumes at 0 + 1; the next match starts at 3, "<s>" (3..6): special.
        # (Resuming at the match's end, 6, would find nothing: all text.)
        ("<s><s>", {"<s>"}, (), [*LT_S_GT, S]),
        # matches at 0 ("<s><s>", text, resume at 1) and at 3 ("<s><s>" 3..9, text, resume at
        # 4), then "<s>" at 6..9: special
        ("<s><s><s>", {"<s>"}, (), [*LT_S_GT, *LT_S_GT, S]),
        # nothing allowed, nothing disallowed: bytes
        ("<s><s>", set(), (), LT_S_GT * 2),
        # nothing allowed, only one of them disallowed: either occurs, so raises
        ("<s><s>", set(), {"<s>"}, "raises"),
        ("<s><s>", set(), {"<s><s>"}, "raises"),
        # a lone "<s>" with "<s><s>" disallowed: does not occur, "<s>" allowed
        ("x<s>", {"<s>"}, {"<s><s>"}, [120, S]),
    ],
)
def test_overlapping_specials_by_hand(
    text: str, allowed: Any, disallowed: Any, expected: Any
) -> None:
    calls: list[Callable[[], Any]] = [
        lambda: NESTED.encode(text, allowed_special=allowed, disallowed_special=disallowed),
        lambda: NESTED.encode_to_numpy(
            text, allowed_special=allowed, disallowed_special=disallowed
        ).tolist(),
        lambda: NESTED.encode_batch([text], allowed_special=allowed, disallowed_special=disallowed)[
            0
        ],
        lambda: NESTED.encode_batch_to_numpy(
            [text], allowed_special=allowed, disallowed_special=disallowed
        )[0].tolist(),
    ]
    for call in calls:
        if expected == "raises":
            with pytest.raises(DisallowedSpecialTokenError):
                call()
        else:
            assert call() == expected


def test_search_resumes_one_byte_after_a_plain_match_as_tiktoken() -> None:
    # "ab" (1002) is plain text here, "bc" (1003) allowed. The match "ab" at 0 is text; the
    # search resumes at 1 and finds "bc" at 1..3: [97 ('a'), 1003]. Resuming at the end of "ab"
    # (2) would miss it: [97, 98, 99].
    tok, ref = tok_and_ref()
    assert tok.encode("abc", allowed_special={"bc"}, disallowed_special=()) == [97, 1003]
    assert ref.encode("abc", allowed_special={"bc"}, disallowed_special=()) == [97, 1003]


def test_nested_disallowed_raise_agrees_with_tiktoken() -> None:
    require_module("tiktoken")
    import tiktoken

    specials = {"<s>": 256, "<s><s>": 257, "s><": 258}
    ranks = {bytes([b]): b for b in range(256)}
    tok = Tokenizer("n", pat_str=PAT, mergeable_ranks=ranks, special_tokens=specials)
    ref = tiktoken.Encoding("n", pat_str=PAT, mergeable_ranks=ranks, special_tokens=specials)
    names = list(specials)
    subsets = [{n for i, n in enumerate(names) if m >> i & 1} for m in range(8)]
    for text in ["<s>", "<s><s>", "a<s><s>b", "s><", "<s", "x<s><s><s>"]:
        for allowed in subsets:
            for disallowed in subsets:
                kw = {"allowed_special": allowed, "disallowed_special": disallowed}
                try:
                    ref.encode(text, **kw)
                    ref_raises = False
                except ValueError:
                    ref_raises = True
                try:
                    tok.encode(text, **kw)
                    tok_raises = False
                except DisallowedSpecialTokenError:
                    tok_raises = True
                assert tok_raises == ref_raises, (text, allowed, disallowed)


# ---------------------------------------------------------------- _encode_bytes, surrogates


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=40),
        st.lists(
            st.sampled_from(
                [b"a", b" ", b"\n", b"hello", b"\xe2\x82", b"\xac", b"\xff", b"\xc3", b"  ", b"1"]
            ),
            max_size=12,
        ).map(b"".join),
        st.text(max_size=20).map(lambda t: t.encode() + b"\x80"),
    )
)
def test_encode_bytes_equals_tiktoken(name: str, data: bytes) -> None:
    tok, ref = tokforge_encoding(name), tiktoken_encoding(name)
    assert tok._encode_bytes(data) == ref._encode_bytes(data)


def test_encode_bytes_refuses_str() -> None:
    with pytest.raises(TypeError):
        NESTED._encode_bytes("text")  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["encode_to_numpy", "encode_with_unstable"])
def test_lone_surrogate_raises_where_tiktoken_raises(method: str) -> None:
    tok, ref = tok_and_ref()
    with pytest.raises(UnicodeEncodeError):
        getattr(ref, method)("a\ud800b")
    with pytest.raises(UnicodeEncodeError):
        getattr(tok, method)("a\ud800b")
    # encode repairs it in both
    assert tok.encode("a\ud800b") == ref.encode("a\ud800b")


# ---------------------------------------------------------------- long special tokens


def test_long_special_tokens_construct_and_train() -> None:
    # A DFA over one 100 000-byte token took half a minute to build; the NFA used above 1 KB
    # of special-token text builds in linear time (the Rust test pins the automaton's kind).
    long = "y" * 100_000
    tok = Tokenizer.from_merges([], pretokenizer="none", special_tokens={long: 256})
    assert tok.encode(f"a{long}b", allowed_special="all") == [97, 256, 98]
    from tokforge import train

    trained = train(["hello world " * 20], 260, special_tokens=["y" * 50_000])
    assert trained.special_tokens == {"y" * 50_000: 259}


# ---------------------------------------------------------------- pickling


def test_known_encoding_pickles_by_name_and_hash() -> None:
    import tokforge

    require_shared("vocabs", "cl100k_base.tiktoken")
    enc = tokforge.get_encoding("cl100k_base")
    data = pickle.dumps(enc)
    assert len(data) < 400
    assert pickle.loads(data) is enc
    # another file under the recorded path, or another hash, is refused
    from tokforge.tokenizer import _unpickle_registered

    with pytest.raises(TokforgeError, match="SHA-256"):
        _unpickle_registered("cl100k_base", "0" * 64, enc._registered_as[1])  # type: ignore[index]


def test_known_encoding_pickle_refuses_a_different_file(tmp_path: Any) -> None:
    from tokforge.registry import ENCODINGS
    from tokforge.tokenizer import _unpickle_registered

    other = tmp_path / "cl100k_base.tiktoken"
    other.write_bytes(b"YQ== 0\n")
    with pytest.raises(TokforgeError, match="SHA-256"):
        _unpickle_registered("cl100k_base", ENCODINGS["cl100k_base"].sha256, str(other))


def test_custom_tokenizer_pickles_as_bytes() -> None:
    tok = Tokenizer.from_merges([(104, 105)], pretokenizer="gpt2", special_tokens={EOT: 300})
    back = pickle.loads(pickle.dumps(tok))
    assert back.encode(f"hi {EOT}", allowed_special="all") == [256, 32, 300]
