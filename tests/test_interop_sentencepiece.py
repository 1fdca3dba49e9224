"""SentencePiece ``.model`` reader and HF conversion: models trained here with the
``sentencepiece`` package on slices of the shared corpora, converted, loaded with HF
``tokenizers`` and compared id for id (and decode for decode) with ``sentencepiece`` itself on
the full corpora, hypothesis text and edge cases. Malformed files must raise VocabFileError.

Expected values come from ``sentencepiece`` or from the .proto file, never from the code under
test."""

from __future__ import annotations

import io
import json
import pickle
import struct
import unicodedata

import pytest
import tokforge
from conftest import CORPORA, corpus_text, documents, require_module
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tokforge.errors import TokforgeError, TokforgeIOError, VocabError, VocabFileError
from tokforge.interop import sentencepiece as tsp

spm = require_module("sentencepiece")
tokenizers = require_module("tokenizers")

CONFIGS = {
    # Llama-2 style
    "llama": dict(
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        byte_fallback=True,
        character_coverage=0.9995,
    ),
    # the defaults (nmt_nfkc, remove_extra_whitespaces) with byte fallback
    "nfkc": dict(byte_fallback=True),
    # unknown characters -> <unk>
    "nobf": dict(byte_fallback=False, character_coverage=0.9995),
}
SPECIALS = ("<unk>", "<s>", "</s>")


def training_lines(chars_per_corpus: int = 120_000) -> list[str]:
    lines: list[str] = []
    for name in CORPORA:
        lines += corpus_text(name)[:chars_per_corpus].split("\n")
    return lines


def english_lines(chars: int) -> list[str]:
    """A few lines of one corpus: a small alphabet, for small models."""
    return corpus_text("en_docs")[:chars].split("\n")


def train(lines: list[str], **kw) -> bytes:
    out = io.BytesIO()
    args = dict(model_type="bpe", vocab_size=3000, num_threads=2, minloglevel=2)
    args.update(kw)
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=out, **args)
    return out.getvalue()


_MODELS: dict[str, bytes] = {}


def model_bytes(config: str) -> bytes:
    if config not in _MODELS:
        _MODELS[config] = train(training_lines(), **CONFIGS[config])
    return _MODELS[config]


class Pair:
    """A SentencePiece processor and the HF tokenizer converted from the same model."""

    def __init__(self, data: bytes) -> None:
        self.sp = spm.SentencePieceProcessor(model_proto=data)
        self.hf_dict = tsp.to_hf_dict(tsp.read_model(data))
        self.hf = tokenizers.Tokenizer.from_str(json.dumps(self.hf_dict))
        # tokforge reading the .model itself (sentencepiece's normalization rules) ...
        self.tf = tokforge.Tokenizer.from_sentencepiece(data)
        # ... and reading the converted tokenizer.json (tokenizers' rules).
        self.tf_hf = tokforge.Tokenizer.from_hf_dict(self.hf_dict)

    def hf_ids(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def check(self, text: str) -> None:
        ids = self.sp.encode(text)
        assert self.hf_ids(text) == ids, (text, [self.sp.id_to_piece(i) for i in ids])
        assert self.hf.decode(ids, skip_special_tokens=False) == self.sp.decode(ids), text
        self.check_tokforge(text)

    def check_tokforge(self, text: str) -> None:
        """tokforge equals sentencepiece (from the .model) and HF (from the tokenizer.json)."""
        ids = self.sp.encode(text)
        assert self.tf.encode_ordinary(text) == ids, text
        assert self.tf.decode(ids) == self.sp.decode(ids), text
        hf_ids = self.hf_ids(text)
        assert self.tf_hf.encode(text, allowed_special="all") == hf_ids, text
        assert self.tf_hf.decode(hf_ids) == self.hf.decode(hf_ids, skip_special_tokens=False)


_PAIRS: dict[str, Pair] = {}


@pytest.fixture(params=list(CONFIGS))
def pair(request) -> Pair:
    if request.param not in _PAIRS:
        _PAIRS[request.param] = Pair(model_bytes(request.param))
    return _PAIRS[request.param]


# ---------------------------------------------------------------------------------------------
# exactness


@pytest.mark.slow
@pytest.mark.parametrize("corpus", CORPORA)
def test_corpus_documents_match_sentencepiece(pair, corpus):
    docs = documents(corpus_text(corpus))
    want = pair.sp.encode(docs)
    got = [e.ids for e in pair.hf.encode_batch(docs, add_special_tokens=False)]
    bad = [i for i in range(len(docs)) if got[i] != want[i]]
    assert not bad, f"{len(bad)} of {len(docs)} documents differ, first {docs[bad[0]][:200]!r}"
    decoded = pair.hf.decode_batch(want, skip_special_tokens=False)
    assert decoded == pair.sp.decode(want)
    assert pair.tf.encode_ordinary_batch(docs) == want
    assert pair.tf_hf.encode_batch(docs, allowed_special="all") == got
    assert pair.tf.decode_batch(want) == decoded


@pytest.mark.parametrize("corpus", CORPORA)
def test_corpus_lines_match_sentencepiece(pair, corpus):
    """Lines keep their edges: leading spaces, tabs, empty lines."""
    lines = corpus_text(corpus)[-60_000:].split("\n")
    want = pair.sp.encode(lines)
    got = [e.ids for e in pair.hf.encode_batch(lines, add_special_tokens=False)]
    assert got == want
    assert pair.hf.decode_batch(want, skip_special_tokens=False) == pair.sp.decode(want)
    assert pair.tf.encode_ordinary_batch(lines) == want
    assert pair.tf_hf.encode_batch(lines, allowed_special="all") == got


EDGE_CASES = [
    "",
    " ",
    "  ",
    "\n",
    "\t",
    "a",
    " a",
    "  a",
    "a ",
    "a  ",
    "  a  b  ",
    "a    b",
    "▁",
    "▁▁",
    "▁a",
    "a▁",
    " ▁ a ▁ ",
    "a\nb",
    "\n\na\n\n",
    "\t x\t",
    "x \n y",
    "\u3000a\u3000",
    "a\u00a0b",
    "😀",
    "😀😀 a 😀",
    " ⁇ ",
    "日本語のテキスト",
    "Größe über",
    "ﬁle ① ｱｲｳ",
    "\x00\x01a\x7f",
    "a\u200bb",
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_match_sentencepiece(pair, text):
    pair.check(text)


def _outside_known_divergences(c: str) -> bool:
    # surrogates cannot be encoded at all; combining marks are HF Precompiled's known
    # divergence (see test_precompiled_combining_sequence_divergence)
    return unicodedata.category(c) not in ("Cs", "Mn", "Mc", "Me") and c not in "ﾞﾟ\u200c\u200d"


def hypothesis_text(config: str) -> st.SearchStrategy[str]:
    seen = sorted(set(corpus_text("man_de")[:3000] + corpus_text("man_ja")[:3000]))
    edges = [" ", "  ", "▁", "\n", "\t", "\r", "\u3000", "\u00a0", "😀", "①", "ﬁ", "\x00", "\u2047"]
    # identity normalization has no Precompiled step: every character is fair game there
    anything = st.characters(exclude_categories=["Cs"])
    if config != "llama":
        anything = anything.filter(_outside_known_divergences)
    alphabet = st.one_of(st.sampled_from(seen), st.sampled_from(edges), anything)
    return st.lists(alphabet, max_size=40).map("".join)


@pytest.mark.slow
@pytest.mark.parametrize("config", list(CONFIGS))
def test_hypothesis_text_matches_sentencepiece(config):
    if config not in _PAIRS:
        _PAIRS[config] = Pair(model_bytes(config))
    p = _PAIRS[config]

    @settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(hypothesis_text(config))
    def check(text):
        # literal control/unk strings: see test_literal_special_token_divergence
        assume(not any(s in text for s in SPECIALS))
        p.check(text)

    check()


@pytest.mark.slow
@pytest.mark.parametrize("config", list(CONFIGS))
def test_tokforge_matches_both_on_any_text(config):
    """No exclusions here: tokforge reading the .model follows sentencepiece's longest-rule
    normalization (so combining sequences match sentencepiece), and reading the tokenizer.json
    follows tokenizers' per-grapheme one (so they match HF)."""
    if config not in _PAIRS:
        _PAIRS[config] = Pair(model_bytes(config))
    p = _PAIRS[config]
    seen = sorted(set(corpus_text("man_ja")[:3000]))
    combining = ["\uff9e", "\uff9f", "\u0301", "\u0308", "\u200d", "\u3099", "う", "ｶ", "e"]
    alphabet = st.one_of(
        st.sampled_from(seen),
        st.sampled_from(combining),
        st.characters(exclude_categories=["Cs"]),
    )

    @settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(alphabet, max_size=30).map("".join))
    def check(text):
        # Control pieces' text: sentencepiece reads it as text, so tokforge's encode_ordinary
        # does too; HF's added tokens match it, as tokforge's encode(allowed_special="all").
        p.check_tokforge(text)

    check()


def test_tokforge_reading_the_model_gets_the_combining_case_right():
    """Where HF's Precompiled and sentencepiece disagree, tokforge reading the .model agrees
    with sentencepiece, and reading the converted tokenizer.json agrees with HF."""
    p = Pair(model_bytes("nfkc"))
    text = "う\uff9e"
    assert p.tf.encode_ordinary(text) == p.sp.encode(text)
    assert p.tf_hf.encode_ordinary(text) == p.hf_ids(text)
    assert p.sp.encode(text) != p.hf_ids(text)


def test_precompiled_combining_sequence_divergence():
    """Known and not fixed: HF's Precompiled normalizer looks up grapheme clusters (under 6
    bytes) or single characters, SentencePiece the longest charsmap prefix. The charsmap maps
    "う" + HALFWIDTH KATAKANA VOICED SOUND MARK to "ゔ"; HF maps the mark alone to U+3099."""
    p = Pair(model_bytes("nfkc"))
    text = "う\uff9e"
    assert p.sp.encode(text) != p.hf_ids(text)
    assert p.sp.normalize(text) == "▁ゔ"


def test_literal_special_token_divergence():
    """Known and not fixed: HF matches added tokens in the text, SentencePiece segments the
    text "<s>" into ordinary pieces (control symbols are never read from text)."""
    p = Pair(model_bytes("nobf"))
    assert p.sp.piece_to_id("<s>") not in p.sp.encode("a<s>b")
    assert p.sp.piece_to_id("<s>") in p.hf_ids("a<s>b")


def test_decode_renders_control_and_unk_like_sentencepiece(pair):
    a = pair.sp.piece_to_id("▁a")
    assert a != pair.sp.unk_id()
    ids = [pair.sp.bos_id(), a, pair.sp.eos_id(), pair.sp.unk_id(), a]
    assert pair.hf.decode(ids, skip_special_tokens=False) == pair.sp.decode(ids)


def test_tokforge_loads_model_files_and_round_trips(pair, tmp_path):
    data = model_bytes_for(pair)
    path = tmp_path / "m.model"
    path.write_bytes(data)
    text = "Größe über ｱｲｳ ① 漢字 \t x  y"
    for tok in (
        tokforge.Tokenizer.from_sentencepiece(path),
        tokforge.Tokenizer.load(path),
        pickle.loads(pickle.dumps(pair.tf)),
    ):
        assert tok.encode_ordinary(text) == pair.sp.encode(text)
    # Saved, it is the tokenizer.json that HF reads with identical ids.
    pair.tf.save(tmp_path / "tokenizer.json")
    hf = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    assert hf.encode(text, add_special_tokens=False).ids == pair.sp.encode(text)


# ---------------------------------------------------------------------------------------------
# what the reader reads


def test_read_model_matches_sentencepiece(pair):
    data = model_bytes_for(pair)
    m = tsp.read_model(data)
    sp = pair.sp
    assert len(m.pieces) == sp.get_piece_size()
    for i, p in enumerate(m.pieces):
        assert p.piece == sp.id_to_piece(i)
        assert p.score == sp.get_score(i)
        assert (p.type == tsp.CONTROL) == sp.is_control(i)
        assert (p.type == tsp.UNKNOWN) == sp.is_unknown(i)
        assert (p.type == tsp.BYTE) == sp.is_byte(i)
        assert (p.type == tsp.UNUSED) == sp.is_unused(i)
    ts = m.trainer_spec
    assert ts.model_type == tsp.BPE
    assert (ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id) == (
        sp.unk_id(),
        sp.bos_id(),
        sp.eos_id(),
        sp.pad_id(),
    )


def model_bytes_for(pair: Pair) -> bytes:
    return next(model_bytes(c) for c, p in _PAIRS.items() if p is pair)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_specs_are_the_training_options(config):
    m = tsp.read_model(model_bytes(config))
    opts = CONFIGS[config]
    assert m.trainer_spec.byte_fallback == opts["byte_fallback"]
    assert m.trainer_spec.vocab_size == 3000
    ns = m.normalizer_spec
    assert ns.name == opts.get("normalization_rule_name", "nmt_nfkc")
    assert ns.add_dummy_prefix == opts.get("add_dummy_prefix", True)
    assert ns.remove_extra_whitespaces == opts.get("remove_extra_whitespaces", True)
    assert ns.escape_whitespaces
    assert bool(ns.precompiled_charsmap) == (ns.name != "identity")


def test_vocab_text_is_what_sentencepiece_writes(tmp_path):
    prefix = tmp_path / "m"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(english_lines(40_000)),
        model_prefix=str(prefix),
        model_type="bpe",
        vocab_size=500,
        byte_fallback=True,
        num_threads=2,
        minloglevel=2,
    )
    model = tsp.read_model(tmp_path / "m.model")
    assert tsp.to_vocab_text(model) == (tmp_path / "m.vocab").read_text(encoding="utf-8")


@pytest.mark.parametrize("model_type", ["unigram", "word", "char"])
def test_non_bpe_models_are_refused(model_type):
    data = train(
        english_lines(20_000), model_type=model_type, vocab_size=300, hard_vocab_limit=False
    )
    with pytest.raises(TokforgeError, match=f"{model_type.upper()} model.*only BPE"):
        tsp.to_hf_dict(tsp.read_model(data))


def test_user_defined_symbols_load_exactly_but_do_not_export():
    data = train(english_lines(40_000), vocab_size=600, user_defined_symbols=["<sep>", "ab"])
    model = tsp.read_model(data)
    with pytest.raises(TokforgeError, match="USER_DEFINED piece"):
        tsp.to_hf_dict(model)
    sp = spm.SentencePieceProcessor(model_proto=data)
    tok = tokforge.Tokenizer.from_sentencepiece(data)
    for text in ["plain text", "a<sep>b", " <sep> ", "<sep><sep>x", "cabby ab<sep>ab", "<se"]:
        assert tok.encode_ordinary(text) == sp.encode(text), text
    with pytest.raises(VocabError, match="USER_DEFINED piece '<sep>'"):
        tok.to_hf_dict()


# ---------------------------------------------------------------------------------------------
# protobuf wire format


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number: int, wire: int, payload: bytes) -> bytes:
    key = varint(number << 3 | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def piece_msg(piece: str, score: float = 0.0, ptype: int | None = None) -> bytes:
    body = field(1, 2, piece.encode()) + field(2, 5, struct.pack("<f", score))
    if ptype is not None:
        body += field(3, 0, varint(ptype))
    return field(1, 2, body)


def test_proto2_defaults_when_fields_are_absent():
    """Defaults from sentencepiece_model.proto."""
    m = tsp.read_model(piece_msg("<unk>", 0.0, 2) + piece_msg("a", -1.5))
    assert m.pieces == (("<unk>", 0.0, 2), ("a", -1.5, 1))
    ts = m.trainer_spec
    assert ts.model_type == 1 and ts.vocab_size == 8000 and not ts.byte_fallback
    assert (ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id) == (0, 1, 2, -1)
    assert (ts.unk_piece, ts.bos_piece, ts.eos_piece, ts.pad_piece) == (
        "<unk>",
        "<s>",
        "</s>",
        "<pad>",
    )
    assert ts.unk_surface == " \u2047 "
    assert not ts.treat_whitespace_as_suffix and not ts.split_digits
    ns = m.normalizer_spec
    assert ns.add_dummy_prefix and ns.remove_extra_whitespaces and ns.escape_whitespaces
    assert ns.name == "" and ns.precompiled_charsmap == b""
    assert m.denormalizer_spec is None


def test_negative_int32_and_false_bools():
    trainer = field(3, 0, varint(2)) + field(43, 0, varint(-1)) + field(40, 0, varint(3))
    normalizer = field(1, 2, b"identity") + field(3, 0, varint(0)) + field(4, 0, varint(0))
    data = piece_msg("a") + field(2, 2, trainer) + field(3, 2, normalizer)
    m = tsp.read_model(data)
    assert m.trainer_spec.pad_id == -1 and m.trainer_spec.unk_id == 3
    assert m.trainer_spec.model_type == tsp.BPE
    assert not m.normalizer_spec.add_dummy_prefix
    assert not m.normalizer_spec.remove_extra_whitespaces
    assert m.normalizer_spec.name == "identity"


def test_unknown_fields_of_every_wire_type_are_skipped():
    data = model_bytes("nobf")
    junk = (
        field(99, 0, varint(12345))
        + field(100, 1, b"12345678")
        + field(101, 2, b"anything")
        + field(102, 5, b"1234")
    )
    # and inside a piece: the same pieces plus one more
    extra = field(1, 2, field(1, 2, b"zz") + junk)
    got = tsp.read_model(junk + data + junk + extra)
    want = tsp.read_model(data)
    assert got.pieces == (*want.pieces, ("zz", 0.0, tsp.NORMAL))
    assert got.trainer_spec == want.trainer_spec
    assert got.normalizer_spec == want.normalizer_spec


MALFORMED = {
    "truncated varint": (b"\x0a", "byte 1: truncated varint"),
    "truncated key": (piece_msg("a") + b"\x80", "truncated varint"),
    "length past end": (b"\x0a\x05ab", "length 5 runs past"),
    "group wire type": (b"\x0b", "unsupported wire type 3"),
    "wire type 7": (b"\x0f", "unsupported wire type 7"),
    "field number 0": (b"\x00\x00", "field number 0"),
    "long varint": (b"\x08" + b"\xff" * 11 + b"\x01", "longer than 10 bytes"),
    "pieces as varint": (b"\x08\x01", "field 1: wire type 0"),
    "score as varint": (field(1, 2, field(1, 2, b"a") + field(2, 0, b"\x01")), "field 2"),
    "truncated float": (field(1, 2, field(1, 2, b"a") + b"\x15\x00\x00"), "truncated 32-bit"),
    "truncated double": (b"\x09\x00\x00", "truncated 64-bit"),
    "bad utf-8": (field(1, 2, field(1, 2, b"a\xff")), "invalid UTF-8"),
    "empty piece": (field(1, 2, field(1, 2, b"")), "missing or empty"),
    "missing piece": (field(1, 2, field(3, 0, b"\x01")), "missing or empty"),
    "bad piece type": (field(1, 2, field(1, 2, b"a") + field(3, 0, b"\x09")), "piece type 9"),
    "duplicate piece": (piece_msg("a") + piece_msg("a"), "repeats id 0"),
    "no pieces": (b"", "no pieces"),
    "trainer spec truncated": (piece_msg("a") + field(2, 2, b"\x18"), "truncated varint"),
    "normalizer bool as bytes": (piece_msg("a") + field(3, 2, field(3, 2, b"x")), "field 3"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_bytes_raise_vocab_file_error(case):
    data, message = MALFORMED[case]
    with pytest.raises(VocabFileError, match="<bytes>: byte ") as e:
        tsp.read_model(data)
    assert message in str(e.value)


def test_errors_name_the_file_and_offset(tmp_path):
    path = tmp_path / "bad.model"
    path.write_bytes(piece_msg("a") + b"\x0a\x05ab")
    offset = len(piece_msg("a"))
    with pytest.raises(VocabFileError, match=rf"bad\.model: byte {offset}: field 1: length 5"):
        tsp.read_model(path)
    with pytest.raises(TokforgeIOError, match=r"missing\.model"):
        tsp.read_model(tmp_path / "missing.model")


def test_every_truncation_is_clean():
    """A prefix of a model either parses (it ends between fields) or raises VocabFileError."""
    data = train(english_lines(20_000), vocab_size=300)
    step = max(1, len(data) // 3000)
    for cut in range(0, len(data), step):
        try:
            tsp.read_model(data[:cut])
        except VocabFileError:
            pass


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_corrupted_models_raise_only_vocab_file_error(data):
    base = bytearray(_small_model())
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(base) - 1))
        base[i] = data.draw(st.integers(0, 255))
    try:
        tsp.read_model(bytes(base))
    except VocabFileError:
        pass


_SMALL: list[bytes] = []


def _small_model() -> bytes:
    if not _SMALL:
        _SMALL.append(train(english_lines(10_000), vocab_size=260, byte_fallback=False))
    return _SMALL[0]
