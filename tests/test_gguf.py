"""GGUF model files (llama.cpp): the tokenizer in their metadata, written here by the ``gguf``
package (llama.cpp's own writer) from tokenizers whose ids are known, and compared with the
reference that made those ids (tiktoken for cl100k/o200k, sentencepiece for a Llama-style
SentencePiece BPE model)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
import tokforge
from conftest import CORPORA, corpus_text, documents, require_module, require_shared
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokforge.errors import TokforgeError, VocabFileError
from tokforge.interop.formats import detect_format
from tokforge.interop.gguf import PRE_SPLITS

gguf = require_module("gguf")
tiktoken = require_module("tiktoken")
spm = require_module("sentencepiece")


def write_gguf(path: Path, meta: dict, *, tensor: bool = True) -> Path:
    """A GGUF file holding ``meta``'s tokenizer keys (and one small tensor, as a model has)."""
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model(meta["model"])
    if "pre" in meta:
        w.add_tokenizer_pre(meta["pre"])
    w.add_token_list(meta["tokens"])
    if "types" in meta:
        w.add_token_types(meta["types"])
    if "merges" in meta:
        w.add_token_merges(meta["merges"])
    if "scores" in meta:
        w.add_token_scores(meta["scores"])
    for key, value in meta.get("ids", {}).items():
        getattr(w, f"add_{key}_token_id")(value)
    if "add_space_prefix" in meta:
        w.add_add_space_prefix(meta["add_space_prefix"])
    if tensor:
        w.add_tensor("weight", np.arange(16, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def byte_level_meta(encoding: str, pre: str) -> dict:
    """A gpt2-model GGUF vocabulary equal to a tiktoken encoding: its tokens in GPT-2's
    byte-to-unicode spelling with the merges that rebuild them (tokforge's tokenizer.json
    export, itself checked against HF tokenizers in test_interop_hf_export.py), and the special
    tokens as CONTROL tokens."""
    doc = tokforge.get_encoding(encoding).to_hf_dict()
    vocab = doc["model"]["vocab"]
    specials = {a["content"]: a["id"] for a in doc["added_tokens"]}
    n = max([*vocab.values(), *specials.values()]) + 1
    tokens = [f"[UNUSED_{i}]" for i in range(n)]
    types = [gguf.TokenType.UNUSED] * n
    for t, i in vocab.items():
        tokens[i], types[i] = t, gguf.TokenType.NORMAL
    for t, i in specials.items():
        tokens[i], types[i] = t, gguf.TokenType.CONTROL
    merges = [m if isinstance(m, str) else " ".join(m) for m in doc["model"]["merges"]]
    return {"model": "gpt2", "pre": pre, "tokens": tokens, "types": types, "merges": merges}


def sample_documents(per_corpus: int = 12) -> list[str]:
    out: list[str] = []
    for name in CORPORA:
        docs = documents(corpus_text(name))
        out += docs[:: max(1, len(docs) // per_corpus)][:per_corpus]
    return out


EDGES = ["", " ", "  x", " " * 17 + "x", "\n\n\t ", "1234567", "it's", "ÀB cD", "😀😀", "a\r\nb"]


# ---------------------------------------------------------------------------------------------
# byte-level vocabularies against tiktoken


def reference(encoding: str):
    """tiktoken's own encoding (its pattern and special tokens, from tiktoken_ext), with the
    rank file read from the shared folder instead of downloaded."""
    import tiktoken.load
    import tiktoken_ext.openai_public as public

    ranks = tiktoken.load.load_tiktoken_bpe(str(require_shared("vocabs", f"{encoding}.tiktoken")))
    saved = public.load_tiktoken_bpe
    public.load_tiktoken_bpe = lambda *a, **k: ranks
    try:
        spec = getattr(public, encoding)()
    finally:
        public.load_tiktoken_bpe = saved
    return tiktoken.Encoding(**spec)


@pytest.fixture(scope="module", params=[("cl100k_base", "llama-bpe"), ("o200k_base", "gpt-4o")])
def byte_level(request, tmp_path_factory):
    encoding, pre = request.param
    path = tmp_path_factory.mktemp("gguf") / f"{encoding}.gguf"
    write_gguf(path, byte_level_meta(encoding, pre))
    return tokforge.Tokenizer.from_gguf(path), reference(encoding), path


@pytest.mark.slow
def test_byte_level_gguf_equals_tiktoken_on_the_corpora(byte_level):
    tok, ref, _ = byte_level
    for text in [*EDGES, *sample_documents()]:
        assert tok.encode_ordinary(text) == ref.encode_ordinary(text), text[:80]
    assert tok.special_tokens == ref._special_tokens
    assert tok.encode("<|endoftext|>", allowed_special="all") == [ref.eot_token]


@pytest.mark.slow
def test_byte_level_gguf_equals_tiktoken_on_any_text(byte_level):
    tok, ref, _ = byte_level

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.text(st.characters(exclude_categories=["Cs"]), max_size=60))
    def check(text):
        ids = ref.encode_ordinary(text)
        assert tok.encode_ordinary(text) == ids
        assert tok.decode_bytes(ids) == text.encode("utf-8")

    check()


@pytest.mark.slow
def test_load_recognises_gguf_and_reads_only_the_metadata(byte_level, tmp_path):
    _, ref, path = byte_level
    # The same file grown to 10 GB of (sparse) tensor data: only the metadata is read.
    big = tmp_path / "big.gguf"
    big.write_bytes(path.read_bytes())
    with open(big, "r+b") as f:
        f.truncate(10 << 30)
    with open(big, "rb") as f:
        assert detect_format(f.read(64)) == "gguf"
    tok = tokforge.Tokenizer.load(big)
    assert tok.encode_ordinary("hello GGUF world") == ref.encode_ordinary("hello GGUF world")


# ---------------------------------------------------------------------------------------------
# a SentencePiece (llama) vocabulary against sentencepiece


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    lines = []
    for name in CORPORA:
        lines += corpus_text(name)[:60_000].split("\n")
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=out,
        model_type="bpe",
        vocab_size=3000,
        num_threads=2,
        minloglevel=2,
        normalization_rule_name="identity",
        add_dummy_prefix=True,
        remove_extra_whitespaces=False,
        byte_fallback=True,
        character_coverage=0.9995,
    )
    sp = spm.SentencePieceProcessor(model_proto=out.getvalue())
    n = sp.get_piece_size()
    kinds = {
        "control": gguf.TokenType.CONTROL,
        "unknown": gguf.TokenType.UNKNOWN,
        "byte": gguf.TokenType.BYTE,
    }
    types = []
    for i in range(n):
        kind = next((k for k in kinds if getattr(sp, f"is_{k}")(i)), None)
        types.append(kinds[kind] if kind else gguf.TokenType.NORMAL)
    meta = {
        "model": "llama",
        "tokens": [sp.id_to_piece(i) for i in range(n)],
        "scores": [sp.get_score(i) for i in range(n)],
        "types": types,
        "ids": {"bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id()},
        "add_space_prefix": True,
    }
    path = write_gguf(tmp_path_factory.mktemp("gguf") / "llama.gguf", meta)
    return tokforge.Tokenizer.from_gguf(path), sp


@pytest.mark.slow
def test_sentencepiece_gguf_equals_sentencepiece(llama):
    tok, sp = llama
    for text in [*EDGES, *sample_documents(6)]:
        if " " * 16 in text:
            continue  # long space runs: the merge order from scores is fixed elsewhere
        ids = sp.encode(text)
        assert tok.encode_ordinary(text) == ids, text[:80]
        assert tok.decode(ids) == sp.decode(ids)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.text(st.sampled_from("ab cé日本\n\t😀1"), max_size=40))
    def check(text):
        assert tok.encode_ordinary(text) == sp.encode(text)

    check()


# ---------------------------------------------------------------------------------------------
# what is refused


def small_meta(**kw) -> dict:
    meta = {
        "model": "gpt2",
        "pre": "gpt-2",
        "tokens": [*(f"{chr(c)}" for c in range(ord("a"), ord("e"))), "ab"],
        "merges": ["a b"],
    }
    meta.update(kw)
    return meta


def test_unknown_pre_type_is_refused_by_name(tmp_path):
    path = write_gguf(tmp_path / "x.gguf", small_meta(pre="kimi-k2"))
    with pytest.raises(TokforgeError, match="'kimi-k2' is not supported"):
        tokforge.Tokenizer.from_gguf(path)
    assert "kimi-k2" not in PRE_SPLITS and "llama-bpe" in PRE_SPLITS


def test_unknown_model_is_refused_by_name(tmp_path):
    path = write_gguf(tmp_path / "x.gguf", small_meta(model="bert"))
    with pytest.raises(TokforgeError, match="'bert' is not supported"):
        tokforge.Tokenizer.from_gguf(path)


def test_small_gpt2_vocab_encodes_by_its_merges(tmp_path):
    # Only a..d and "ab" exist: "abc" is "ab" + "c", ids as listed.
    path = write_gguf(tmp_path / "x.gguf", small_meta())
    tok = tokforge.Tokenizer.load(path)
    assert tok.encode_ordinary("abcd") == [4, 2, 3]


def test_truncated_and_broken_files_are_refused(tmp_path):
    good = write_gguf(tmp_path / "x.gguf", small_meta(), tensor=False).read_bytes()
    bad = tmp_path / "bad.gguf"
    for cut in (10, 30, len(good) // 2):
        bad.write_bytes(good[:cut])
        with pytest.raises(VocabFileError, match=r"bad\.gguf"):
            tokforge.Tokenizer.from_gguf(bad)
    # a key count no file could hold
    bad.write_bytes(good[:16] + struct.pack("<Q", 1 << 60) + good[24:])
    with pytest.raises(VocabFileError, match="metadata keys"):
        tokforge.Tokenizer.from_gguf(bad)
    # version 1
    bad.write_bytes(good[:4] + struct.pack("<I", 1) + good[8:])
    with pytest.raises(VocabFileError, match="version 1"):
        tokforge.Tokenizer.from_gguf(bad)
