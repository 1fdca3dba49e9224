"""Mistral's Tekken files: the ones mistral-common ships, against its own Tekkenizer, and small
hand-written ones whose ids are worked out here."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import tokforge
from conftest import CORPORA, corpus_text, documents, require_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokforge.errors import VocabFileError
from tokforge.interop.formats import detect_format

mistral_common = require_module("mistral_common")
from mistral_common.tokens.tokenizers.tekken import Tekkenizer  # noqa: E402

DATA = Path(mistral_common.__file__).parent / "data"
SHIPPED = sorted(DATA.glob("tekken*.json"))

_PAIRS: dict[Path, tuple[tokforge.Tokenizer, Tekkenizer]] = {}


def pair(path: Path) -> tuple[tokforge.Tokenizer, Tekkenizer]:
    if path not in _PAIRS:
        _PAIRS[path] = (tokforge.Tokenizer.load(path), Tekkenizer.from_file(path))
    return _PAIRS[path]


def test_mistral_common_ships_tekken_files():
    assert SHIPPED, f"no tekken*.json in {DATA}"


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_files_equal_tekkenizer(path):
    tok, ref = pair(path)
    assert detect_format(path.read_bytes()) == "tekken"
    assert tok.n_vocab == ref.n_words
    # the specials as the file (or mistral-common's default list) declares them
    for i in range(ref.num_special_tokens):
        assert tok.decode_single_token_bytes(i) == ref.id_to_piece(i).encode("utf-8")
        assert tok.is_special_token(i)
    for name in CORPORA:
        for doc in documents(corpus_text(name))[:15]:
            ids = ref.encode(doc, bos=False, eos=False)
            assert tok.encode_ordinary(doc) == ids, doc[:80]
            assert tok.decode(ids) == ref.decode(ids)


@pytest.mark.slow
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_files_equal_tekkenizer_on_any_text(path):
    tok, ref = pair(path)

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.text(st.characters(exclude_categories=["Cs"]), max_size=60))
    def check(text):
        assert tok.encode_ordinary(text) == ref.encode(text, bos=False, eos=False)

    check()


def tekken_file(tmp_path: Path, *, specials=None, vocab_size=None, n_special=4, extra=()):
    """A small Tekken file: the 256 bytes, then "ab" and "abc" (ranks 256, 257)."""
    tokens = [bytes([i]) for i in range(256)] + [b"ab", b"abc", *extra]
    doc: dict = {
        "config": {
            "pattern": r"\w+|\s+|[^\w\s]+",
            "num_vocab_tokens": len(tokens),
            "default_vocab_size": vocab_size or len(tokens) + n_special,
            "default_num_special_tokens": n_special,
            "version": "v7",
        },
        "vocab": [
            {"rank": i, "token_bytes": base64.b64encode(t).decode(), "token_str": None}
            for i, t in enumerate(tokens)
        ],
    }
    if specials is not None:
        doc["special_tokens"] = [
            {"rank": i, "token_str": s, "is_control": True} for i, s in enumerate(specials)
        ]
    path = tmp_path / "tekken.json"
    path.write_text(json.dumps(doc))
    return path


def test_small_file_ids_follow_the_specials(tmp_path):
    path = tekken_file(tmp_path, specials=["<unk>", "<s>", "</s>"])
    tok = tokforge.Tokenizer.from_tekken(path)
    # 4 special ids: three declared, the fourth filled as mistral-common fills it
    assert tok.special_tokens == {"<unk>": 0, "<s>": 1, "</s>": 2, "<SPECIAL_3>": 3}
    # byte b is id 4 + b; "abc" is rank 257 -> id 261
    assert tok.encode_ordinary("abc a") == [261, 4 + 32, 4 + 97]
    assert tok.encode("<s>", allowed_special="all") == [1]
    assert tokforge.Tokenizer.load(tmp_path).n_vocab == 262


def test_files_without_special_tokens_get_the_legacy_list(tmp_path):
    tok = tokforge.Tokenizer.from_tekken(tekken_file(tmp_path, n_special=20))
    assert tok.special_tokens["[INST]"] == 3 and tok.special_tokens["<pad>"] == 11
    assert len(tok.special_tokens) == 20


def test_vocab_size_cuts_the_ranks(tmp_path):
    # default_vocab_size leaves out "abc": "abc" is then "ab" + "c"
    tok = tokforge.Tokenizer.from_tekken(tekken_file(tmp_path, vocab_size=4 + 257))
    assert tok.encode_ordinary("abc") == [4 + 256, 4 + 99]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("vocab"), '"vocab" list'),
        (lambda d: d["config"].pop("pattern"), "pattern"),
        (lambda d: d["config"].update(default_vocab_size=10**6), "default_vocab_size"),
        (lambda d: d["vocab"][5].update(rank=7), r"vocab\[5\]"),
        (
            lambda d: d.update(special_tokens=[{"rank": i, "token_str": "x"} for i in (0, 1)]),
            "twice",
        ),
        (lambda d: d.update(special_tokens=[{"rank": 1, "token_str": "x"}]), "rank 1, not 0"),
    ],
)
def test_broken_files_are_refused(tmp_path, change, message):
    path = tekken_file(tmp_path)
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(VocabFileError, match=message):
        tokforge.Tokenizer.from_tekken(path)


def test_cli_info_names_the_format_and_engine(tmp_path, capsys):
    from tokforge.cli import main

    path = tekken_file(tmp_path, specials=["<unk>", "<s>", "</s>"])
    assert main(["info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["format"], info["engine"], info["n_vocab"]) == ("tekken", "rank", 262)


@pytest.mark.slow
def test_cli_converts_a_shipped_file_to_a_tokenizer_json_hf_reads_alike(tmp_path, capsys):
    tokenizers = require_module("tokenizers")
    from tokforge.cli import main

    out = tmp_path / "tokenizer.json"
    assert main(["convert", str(SHIPPED[-1]), str(out)]) == 0
    capsys.readouterr()
    hf = tokenizers.Tokenizer.from_file(str(out))
    _, ref = pair(SHIPPED[-1])
    for doc in documents(corpus_text("code_py"))[:10]:
        assert hf.encode(doc, add_special_tokens=False).ids == ref.encode(doc, False, False)
