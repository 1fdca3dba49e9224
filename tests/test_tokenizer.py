"""The Tokenizer API beyond parity: construction, files, pickling, threads, errors, decoding."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import numpy as np
import pytest
import tokforge
from hypothesis import given, settings
from hypothesis import strategies as st
from tokforge.errors import (
    DisallowedSpecialTokenError,
    TokforgeError,
    TokforgeIOError,
    UnknownTokenError,
    VocabError,
    VocabFileError,
)

# A tiny byte-level BPE: "lo", "low", "er", "lower" and one special token.
MERGES = [(108, 111), (256, 119), (101, 114), (257, 258)]


@pytest.fixture
def small() -> tokforge.Tokenizer:
    return tokforge.Tokenizer.from_merges(
        MERGES, pretokenizer="gpt2", special_tokens={"<|eot|>": 260}, name="small"
    )


def test_from_merges_encodes_by_rank(small):
    assert small.encode("lower") == [259]
    assert small.encode("low") == [257]
    assert small.encode(" lower") == [32, 259]
    assert small.decode_tokens_bytes(small.encode("lowest")) == [b"low", b"e", b"s", b"t"]
    assert small.n_vocab == 261
    assert small.special_tokens == {"<|eot|>": 260}
    with pytest.raises(KeyError):
        _ = small.eot_token
    assert small.merges == MERGES


def test_tiktoken_constructor_signature():
    ranks = {bytes([b]): b for b in range(256)}
    ranks[b"ab"] = 256
    tok = tokforge.Tokenizer(
        "t", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 257}
    )
    assert tok.encode("ab abc") == [256, 32, 256, 99]
    assert tok.eot_token == 257
    assert tok.encode("<|endoftext|>", allowed_special="all") == [257]
    with pytest.raises(TokforgeError):
        tokforge.Tokenizer("t", pat_str="x", mergeable_ranks=ranks, explicit_n_vocab=5)


def test_special_tokens_semantics(small):
    with pytest.raises(DisallowedSpecialTokenError) as e:
        small.encode("a<|eot|>")
    assert isinstance(e.value, ValueError)
    assert "'<|eot|>'" in str(e.value)
    assert small.encode("a<|eot|>", allowed_special={"<|eot|>"}) == [97, 260]
    assert small.encode("a<|eot|>", allowed_special="all") == [97, 260]
    plain = small.encode("a<|eot|>", disallowed_special=())
    assert 260 not in plain and small.decode(plain) == "a<|eot|>"
    assert small.encode_ordinary("<|eot|>") == plain[1:]
    assert small.is_special_token(260) and not small.is_special_token(97)
    assert small.encode_single_token("<|eot|>") == 260
    assert small.token_kind(260) == "special"


def test_unknown_ids_raise_keyerror_naming_the_id(small):
    for bad in (261, 9999, -1, 2**40):
        with pytest.raises(UnknownTokenError) as e:
            small.decode([97, bad])
        assert isinstance(e.value, KeyError)
        assert str(bad) in str(e.value)
    with pytest.raises(UnknownTokenError):
        small.decode_single_token_bytes(5000)
    with pytest.raises(UnknownTokenError):
        small.encode_single_token(b"zzz")
    with pytest.raises(TypeError):
        small.decode("abc")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        small.decode([1.5])  # type: ignore[list-item]


def test_decode_errors_modes(small):
    ids = [0xE2, 0x82]  # an incomplete euro sign
    assert small.decode(ids) == "\ufffd"
    with pytest.raises(UnicodeDecodeError):
        small.decode(ids, errors="strict")
    assert small.decode_bytes(ids) == b"\xe2\x82"
    assert small.decode(np.array([108, 111], dtype=np.uint32)) == "lo"


def test_stream_decoder(small):
    text = "l€w 😀 lower"
    ids = small.encode(text)
    d = small.decoder_stream()
    pieces = [d.push(i) for i in ids]
    assert "".join(pieces) + d.finish() == text
    assert all("\ufffd" not in p for p in pieces)
    d = small.decoder_stream()
    assert d.push(0xF0) == "" and d.pending == b"\xf0"
    assert d.finish() == "\ufffd"
    strict = small.decoder_stream(errors="strict")
    with pytest.raises(TokforgeError):
        strict.push(0xFF)
    with pytest.raises(TokforgeError):
        small.decoder_stream(errors="ignore")


def test_decode_with_offsets(small):
    text, offsets = small.decode_with_offsets(small.encode("lo €x"))
    assert text == "lo €x"
    assert offsets == [0, 2, 3, 3, 3, 4]


def test_batch_equals_single_and_flat_numpy(small):
    texts = [f"lower {i} " * (i % 7) for i in range(200)]
    single = [small.encode(t) for t in texts]
    assert small.encode_batch(texts, num_threads=4) == single
    assert small.encode_ordinary_batch(texts, num_threads=1) == single
    ids, offsets = small.encode_batch_to_numpy(texts, num_threads=3)
    assert ids.dtype == np.uint32 and offsets.dtype == np.uint64
    assert len(offsets) == len(texts) + 1
    for i, s in enumerate(single):
        assert ids[offsets[i] : offsets[i + 1]].tolist() == s
    assert small.decode_batch(single) == texts
    with pytest.raises(TypeError):
        small.encode_batch("not a list")  # type: ignore[arg-type]
    with pytest.raises(TokforgeError):
        small.encode_batch(texts, num_threads=0)


def test_save_load_round_trip(small, tmp_path: Path):
    p = tmp_path / "small.json"
    small.save(p)
    again = tokforge.Tokenizer.load(p)
    assert again.encode("lower lowest <|eot|>", allowed_special="all") == small.encode(
        "lower lowest <|eot|>", allowed_special="all"
    )
    assert again.merges == MERGES
    assert again.name == "small"
    assert again.pretokenizer == "gpt2"
    assert [f.name for f in tmp_path.iterdir()] == ["small.json"]  # no temp file left


def test_tiktoken_file_round_trip(small, tmp_path: Path):
    p = tmp_path / "small.tiktoken"
    small.to_tiktoken(p)
    loaded = tokforge.Tokenizer.from_tiktoken(
        p, pretokenizer="gpt2", special_tokens={"<|eot|>": 260}
    )
    assert loaded.encode("lower lowest") == small.encode("lower lowest")
    with pytest.raises(TokforgeError, match="pattern"):
        tokforge.Tokenizer.load(p)
    assert tokforge.Tokenizer.load(p, pretokenizer="gpt2").encode("lower") == [259]


def test_save_is_atomic_and_errors_name_the_path(small, tmp_path: Path):
    target = tmp_path / "tok.json"
    target.write_text("old content")
    small.save(target)
    assert tokforge.Tokenizer.load(target).encode("low") == [257]
    missing = tmp_path / "no" / "such" / "dir" / "tok.json"
    with pytest.raises(TokforgeIOError) as e:
        small.save(missing)
    assert isinstance(e.value, OSError)
    assert "tok.json" in str(e.value)
    assert not missing.parent.exists()
    with pytest.raises(TokforgeIOError):
        tokforge.Tokenizer.load(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("content", "line", "what"),
    [
        (b"YQ== 0\nYg== 1\nnot-base64!! 2\n", 3, "base64"),
        (b"YQ== 0\nYg== x\n", 2, "rank"),
        (b"YQ== 0\nYQ== 1\n", 2, "twice"),
        (b"YQ== 0\nYg== 0\n", 2, "twice"),
        (b"YQ== 0 extra\n", 1, "expected"),
        (b"", 0, "no tokens"),
    ],
)
def test_malformed_rank_files_name_file_and_line(tmp_path: Path, content, line, what):
    p = tmp_path / "bad.tiktoken"
    p.write_bytes(content)
    with pytest.raises(VocabFileError) as e:
        tokforge.Tokenizer.from_tiktoken(p)
    assert f"bad.tiktoken:{line}:" in str(e.value)
    assert what in str(e.value)


def test_malformed_json_files(tmp_path: Path, small):
    p = tmp_path / "bad.json"
    good = small.to_json_bytes().decode()
    p.write_text(good.replace('"version":1', '"version":7'))
    with pytest.raises(VocabFileError, match="version 7"):
        tokforge.Tokenizer.load(p)
    p.write_text(good[: len(good) // 2])
    with pytest.raises(VocabFileError, match=r"bad\.json"):
        tokforge.Tokenizer.load(p)
    p.write_text(
        '{"format": "tokforge", "version": 1,\n "pretokenizer": {"type": "none"},\n'
        ' "model": {"type": "merges", "merges": [[1, 999]]}}'
    )
    with pytest.raises(VocabFileError, match="not yet defined"):
        tokforge.Tokenizer.load(p)


def test_invalid_vocabularies():
    with pytest.raises(VocabError, match="twice"):
        tokforge.Tokenizer("x", pat_str="x", mergeable_ranks={b"a": 0, b"b": 0})
    with pytest.raises(VocabError, match="empty"):
        tokforge.Tokenizer("x", pat_str="x", mergeable_ranks={b"": 0})
    with pytest.raises(VocabError, match="used twice"):
        tokforge.Tokenizer("x", pat_str="x", mergeable_ranks={b"a": 0}, special_tokens={"<s>": 0})
    with pytest.raises(VocabError):
        tokforge.Tokenizer("x", pat_str="x", mergeable_ranks={b"a": -1})


def test_pickle_round_trip_small(small):
    data = pickle.dumps(small)
    again = pickle.loads(data)
    assert again.encode("lower <|eot|>", allowed_special="all") == small.encode(
        "lower <|eot|>", allowed_special="all"
    )
    assert len(data) < 5000  # the file bytes, not an object graph


def test_pickle_with_callable_pretokenizer():
    tok = tokforge.Tokenizer.from_merges([(97, 98)], pretokenizer=_split_chars_pairs)
    again = pickle.loads(pickle.dumps(tok))
    assert again.encode("abab") == tok.encode("abab") == [256, 256]


def _split_chars_pairs(text: str) -> list[str]:
    return [text[i : i + 2] for i in range(0, len(text), 2)]


def test_threads_share_one_tokenizer(small):
    texts = [f"lower {i} lowest {'x' * i}" for i in range(300)]
    expected = [small.encode(t) for t in texts]
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for j in range(k, len(texts), 8):
                assert small.encode(texts[j]) == expected[j]
                assert small.decode(expected[j]) == texts[j]
            assert small.encode_batch(texts[:50], num_threads=2) == expected[:50]
            assert pickle.loads(pickle.dumps(small)).encode(texts[k]) == expected[k]
        except BaseException as e:  # collected and re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_byte_fallback_on_a_character_vocabulary():
    # Character-level vocabulary: ids 0..255 are <0x00>..<0xFF>; then characters and merges.
    ranks = {b"a": 256, b"b": 257, "é".encode(): 258, b"ab": 259}
    tok = tokforge.Tokenizer(
        "chars", pat_str=r"\S+|\s+", mergeable_ranks=ranks, byte_fallback=list(range(256))
    )
    ids = tok.encode("abé€b")
    assert ids == [259, 258, 0xE2, 0x82, 0xAC, 257]
    assert tok.decode(ids) == "abé€b"
    assert tok.token_kind(0xE2) == "byte_fallback"
    assert tok.byte_fallback == list(range(256))


def test_byte_level_vocab_falls_back_to_single_bytes(small):
    text = "日本 ☃ \x00"
    ids = small.encode(text)
    assert all(i < 256 or i == 32 for i in ids)
    assert small.decode(ids) == text


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_decode_encode_round_trip(text):
    tok = tokforge.Tokenizer.from_merges(MERGES, pretokenizer="cl100k")
    assert tok.decode(tok.encode_ordinary(text)) == text
    assert tok.decode_bytes(tok.encode_ordinary(text)) == text.encode("utf-8")


LONG_PIECES = [
    "a" * 200_000,
    "1" * 100_000,
    "日" * 50_000,
    " " * 100_000 + "y",
    "ab" * 80_000,
    "\U0001f600" * 30_000,
    "e\u0301" * 40_000,
    "^" * 150_000,
    "\r\n" * 60_000,
    "x" * 131_072 + "y" * 131_071,
]


def test_long_pieces_equal_tiktoken(encoding_pair):
    """Pieces of 100-300 KB (one regex match each, or a few): tiktoken's ids, not only a round
    trip. Sized so tiktoken's own quadratic merge stays well under a second."""
    tok, tt = encoding_pair
    for text in LONG_PIECES:
        ids = tok.encode_ordinary(text)
        assert ids == tt.encode_ordinary(text), text[:3]
        assert tok.decode(ids) == text


def test_repr_and_properties(small):
    r = repr(small)
    assert "small" in r and "n_vocab=261" in r
    assert small.pattern is not None and small._pat_str == small.pattern
    assert small.mergeable_ranks[b"lo"] == 256
    assert small.token_byte_values()[:2] == [b"\x00", b"\x01"]
    assert small.id_to_token(259) == b"lower" and small.token_to_id(b"lower") == 259
