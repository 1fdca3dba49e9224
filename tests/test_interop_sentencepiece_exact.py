"""SentencePiece BPE rules a merge list cannot express, and HF added-token extraction, checked
against the real libraries: models trained by ``sentencepiece`` on indented code (long runs of
whitespace, user-defined symbols), tokenizer.json files run by ``tokenizers``, and Mistral's
own ``.model`` files fetched from PyPI (``pip download --no-deps mistral-common`` into a cache,
``$TOKFORGE_CACHE`` or the repository's git-ignored ``.cache/``; skipped without the registry,
failed under ``TOKFORGE_REQUIRE_SHARED=1``)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import tokforge
from conftest import CORPORA, REPO, corpus_text, documents, require_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokforge.errors import TokforgeError
from tokforge.interop import sentencepiece as tsp

spm = require_module("sentencepiece")
tokenizers = require_module("tokenizers")


def train(lines: list[str], **kw) -> bytes:
    out = io.BytesIO()
    args = dict(model_type="bpe", vocab_size=2000, num_threads=2, minloglevel=2)
    args.update(kw)
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=out, **args)
    return out.getvalue()


# Indented code keeps its runs of spaces; pieces of whitespace alone are allowed, and added by
# hand with equal scores like Mistral's (user-defined symbols of spaces would be matched first,
# so these come from the trainer).
CONFIGS = {
    "code_ws": dict(
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        split_by_whitespace=True,
        byte_fallback=True,
        normalization_rule_name="identity",
    ),
    "code_nosplit": dict(
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        split_by_whitespace=False,
        byte_fallback=True,
        normalization_rule_name="identity",
    ),
    "user_defined": dict(
        remove_extra_whitespaces=False,
        byte_fallback=True,
        normalization_rule_name="identity",
        user_defined_symbols=["[INST]", "[/INST]", "<tab>", "def", "▁▁▁▁"],
    ),
}

_MODELS: dict[str, bytes] = {}


def model(config: str) -> bytes:
    if config not in _MODELS:
        lines = corpus_text("code_py")[:300_000].split("\n")
        lines += corpus_text("en_docs")[:60_000].split("\n")
        _MODELS[config] = train(lines, **CONFIGS[config])
    return _MODELS[config]


def texts() -> list[str]:
    out = [" " * n + "x" for n in range(40)]
    out += ["\t" * n + "y " * n for n in range(12)]
    out += ["a" + " " * 33 + "b", "[INST] hi [/INST]", "x[INST]y", "def  def", "<tab>\n<tab>"]
    for name in CORPORA:
        out += documents(corpus_text(name)[:40_000])
    return out


@pytest.mark.parametrize("config", list(CONFIGS))
def test_trained_models_match_sentencepiece(config):
    data = model(config)
    sp = spm.SentencePieceProcessor(model_proto=data)
    tok = tokforge.Tokenizer.from_sentencepiece(data)
    for text in texts():
        ids = sp.encode(text)
        assert tok.encode_ordinary(text) == ids, text[:80]
        assert tok.decode(ids) == sp.decode(ids)


@pytest.mark.parametrize("config", list(CONFIGS))
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.sampled_from([*list(" \t\nabdefINST[]/<>x"), "    ", "[INST]", "def"]), max_size=40
    ).map("".join)
)
def test_hypothesis_text_matches_sentencepiece(config, text):
    sp = _sp(config)
    assert _tok(config).encode_ordinary(text) == sp.encode(text)


_SP: dict[str, object] = {}
_TOK: dict[str, tokforge.Tokenizer] = {}


def _sp(config: str):
    if config not in _SP:
        _SP[config] = spm.SentencePieceProcessor(model_proto=model(config))
    return _SP[config]


def _tok(config: str) -> tokforge.Tokenizer:
    if config not in _TOK:
        _TOK[config] = tokforge.Tokenizer.from_sentencepiece(model(config))
    return _TOK[config]


def equal_scored_runs() -> bytes:
    """A trained model whose pieces of spaces all get one score, as Mistral's do (-1e9)."""
    m = tsp.read_model(model("code_ws"))
    runs = [i for i, p in enumerate(m.pieces) if set(p.piece) == {"▁"}]
    assert len(runs) >= 4, "the training text should make pieces of several spaces"
    return _rescore(model("code_ws"), set(runs), -1e9)


def _rescore(data: bytes, ids: set[int], score: float) -> bytes:
    """The model bytes with the pieces ``ids`` scored ``score`` (field 2 of each piece)."""
    import struct

    out = bytearray()
    pos = 0
    index = 0
    while pos < len(data):
        key = data[pos]
        start = pos
        pos += 1
        length, shift = 0, 0
        while True:
            b = data[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        body = data[pos : pos + length]
        pos += length
        if key == 0x0A and index in ids:
            i = body.index(b"\x15")  # field 2, fixed32: the score
            body = body[: i + 1] + struct.pack("<f", score) + body[i + 5 :]
            out += bytes([key]) + _varint(len(body)) + body
        else:
            out += data[start:pos]
        index += key == 0x0A
    return bytes(out)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_equal_scores_merge_leftmost_like_sentencepiece():
    data = equal_scored_runs()
    sp = spm.SentencePieceProcessor(model_proto=data)
    tok = tokforge.Tokenizer.from_sentencepiece(data)
    for text in texts():
        assert tok.encode_ordinary(text) == sp.encode(text), text[:80]
    # HF's merge list orders different pairs by place, not by position: export refuses.
    with pytest.raises(TokforgeError, match="same"):
        tsp.to_hf_dict(tsp.read_model(data))
    with pytest.raises(TokforgeError, match="same SentencePiece score"):
        tok.to_hf_dict()


# ---------------------------------------------------------------------------------------------
# HF added tokens


def sp_style_hf(normalized: bool) -> dict:
    d = tsp.to_hf_dict(tsp.read_model(model("code_ws")))
    for t in d["added_tokens"]:
        if t["content"] == "</s>":
            t["normalized"] = normalized
    return d


@pytest.mark.parametrize("normalized", [True, False])
def test_added_tokens_are_matched_where_tokenizers_matches_them(normalized):
    d = sp_style_hf(normalized)
    hf = tokenizers.Tokenizer.from_str(json.dumps(d))
    tok = tokforge.Tokenizer.from_hf_dict(d)
    for text in ["hello </s>", "hello</s>", "</s>x", " </s> </s>", "a  </s>\n</s>"]:
        want = hf.encode(text, add_special_tokens=False).ids
        assert tok.encode(text, allowed_special="all") == want, text


def test_added_byte_tokens_sharing_the_fallback_ids():
    d = tsp.to_hf_dict(tsp.read_model(model("code_ws")))
    vocab = d["model"]["vocab"]
    for b in range(256):
        piece = f"<0x{b:02X}>"
        d["added_tokens"].append(
            {
                "id": vocab[piece],
                "content": piece,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
        )
    hf = tokenizers.Tokenizer.from_str(json.dumps(d))
    tok = tokforge.Tokenizer.from_hf_dict(d)
    for text in ["a <0x41> b", "é☃ x", "<0x0A>\n", "<0x4"]:
        want = hf.encode(text, add_special_tokens=False).ids
        assert tok.encode(text, allowed_special="all") == want, text
        assert tok.decode(want) == hf.decode(want, skip_special_tokens=False)


# ---------------------------------------------------------------------------------------------
# Mistral's .model files, as mistral-common ships them


def mistral_models() -> Path:
    cache = Path(os.environ.get("TOKFORGE_CACHE") or REPO / ".cache") / "mistral-common"
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("mistral_common-*.whl"))
    if not wheels:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "-q",
                "-d",
                str(cache),
                "mistral-common==1.13.1",
            ],
            capture_output=True,
            text=True,
        )
        wheels = sorted(cache.glob("mistral_common-*.whl"))
        if not wheels:
            if os.environ.get("TOKFORGE_REQUIRE_SHARED") == "1":
                pytest.fail(f"cannot fetch mistral-common from PyPI: {r.stderr[-500:]}")
            pytest.skip(f"cannot fetch mistral-common from PyPI: {r.stderr[-200:]}")
    out = cache / "data"
    if not out.is_dir():
        with zipfile.ZipFile(wheels[-1]) as z:
            for n in z.namelist():
                if n.startswith("mistral_common/data/") and ".model" in n:
                    (out / Path(n).name).parent.mkdir(exist_ok=True)
                    (out / Path(n).name).write_bytes(z.read(n))
    return out


MISTRAL = [
    "tokenizer.model.v1",
    "mistral_instruct_tokenizer_240216.model.v2",
    "mistral_instruct_tokenizer_240323.model.v3",
    "mistral_instruct_tokenizer_241114.model.v7",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", MISTRAL)
def test_mistral_models_match_sentencepiece(name):
    path = mistral_models() / name
    sp = spm.SentencePieceProcessor(model_file=str(path))
    tok = tokforge.Tokenizer.from_sentencepiece(path)
    assert tok.encode_ordinary(" " * 17 + "x") == sp.encode(" " * 17 + "x")
    bad = []
    for corpus in CORPORA:
        for text in documents(corpus_text(corpus)[:200_000]) + texts()[:60]:
            if tok.encode_ordinary(text) != sp.encode(text):
                bad.append(text[:60])
    assert not bad, (len(bad), bad[:3])
