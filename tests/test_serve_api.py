"""The playground's answers (``tokforge.serve.api``), called as plain functions: the splits
equal tiktoken's ``encode`` token by token, the counts and colours hold, uploads of good files
work and bad ones give a readable error, the vocabulary browser and lineage agree with
``tokforge.inspect``, the transformer view is the model's own forward pass, and the limits
refuse what they should. No sockets here (see test_serve_fuzz.py for the server)."""

from __future__ import annotations

import base64
import doctest
import itertools
import json
import tempfile

import numpy as np
import pytest
from conftest import require_shared, tiktoken_encoding
from tokforge import Tokenizer, explain
from tokforge.inspect import find_tokens, lineage, longest_tokens
from tokforge.nn import Config, Transformer, sampling_distribution
from tokforge.serve import api, command, server
from tokforge.serve.api import MAX_TEXT_BYTES, Playground, handle

TEXTS = [
    "How many r's are in strawberry?",
    "def add(a, b):\n\treturn a + b  # 123 + 456\r\n",
    "日本語 héllo 🍓 👩‍👩‍👧 <|endoftext|><|endoftext|>",
    "!!!!!!!!!!!!!!!!!!!!!!!! ==== ==== ====           \n\n\n\n",
    "",
    "a",
]


def _glyphs(piece: bytes) -> str:
    """The printable form the docs promise, restated: · for a space, → for a tab, ↵ for a
    newline, ␍ for a carriage return, <0xNN> for each byte not part of a whole character."""
    text = piece.decode("utf-8", errors="surrogateescape")
    text = "".join(f"<0x{ord(c) - 0xDC00:02X}>" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in text)
    return text.replace(" ", "·").replace("\t", "→").replace("\n", "↵").replace("\r", "␍")


def _partial(piece: bytes) -> bool:
    try:
        piece.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


@pytest.fixture(scope="module")
def toy_path(tmp_path_factory):
    tok = Tokenizer.from_merges(
        [(108, 111), (256, 119), (101, 114)],
        pretokenizer="gpt2",
        name="toy",
        special_tokens={"<|end|>": 259},
    )
    path = tmp_path_factory.mktemp("toy") / "toy.json"
    tok.save(path)
    return path


@pytest.fixture(scope="module")
def pg(toy_path, tmp_path_factory):
    require_shared("vocabs", "cl100k_base.tiktoken")
    playground = Playground([str(toy_path)], upload_dir=tmp_path_factory.mktemp("uploads"))
    yield playground
    playground.close()


def _ok(pg: Playground, endpoint: str, request: dict) -> dict:
    status, body = handle(pg, endpoint, request)
    assert status == 200, body
    json.dumps(body, allow_nan=False)  # what the server sends must be JSON
    return body


def _err(pg: Playground, endpoint: str, request: object, status: int = 400) -> str:
    got, body = handle(pg, endpoint, request)
    assert got == status, body
    assert set(body) == {"error"} and body["error"]
    assert "Traceback" not in body["error"]
    return body["error"]


def _drawn(result: dict) -> list[str]:
    alt = set(result["alt_at"])
    pal = result["palette"]
    return [pal[str(t)][1 if i in alt else 0] for i, t in enumerate(result["ids"])]


# ------------------------------------------------------------------------------- tokenize


def test_tokenizers_list_and_defaults(pg):
    body = _ok(pg, "tokenizers", {})
    keys = [t["key"] for t in body["tokenizers"]]
    assert keys == ["cl100k_base", "o200k_base", "file:toy"]
    assert body["defaults"] == ["file:toy"]  # what the command line chose
    assert all(t["available"] for t in body["tokenizers"])
    assert body["limits"]["text_bytes"] == MAX_TEXT_BYTES


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
@pytest.mark.parametrize("text", TEXTS)
def test_splits_equal_tiktoken_token_by_token(pg, name, text):
    tt = tiktoken_encoding(name)
    expected = tt.encode(text, allowed_special="all")
    (r,) = _ok(pg, "tokenize", {"text": text, "tokenizers": [name]})["results"]
    assert r["ids"] == expected
    pieces = [tt.decode_single_token_bytes(i) for i in expected]
    offsets = [0]
    for p in pieces:
        offsets.append(offsets[-1] + len(p))
    assert r["byte_offsets"] == offsets
    assert r["bytes_are_text"] and offsets[-1] == len(text.encode())
    special = set(tt._special_tokens.values())
    for i, p in zip(expected, pieces, strict=True):
        shown = p.decode() if i in special else _glyphs(p)
        assert r["pieces"][str(i)] == shown
    assert r["special_ids"] == sorted({i for i in expected if i in special})
    assert r["partial_ids"] == sorted(
        {i for i, p in zip(expected, pieces, strict=True) if _partial(p)}
    )
    e = explain(pg.get(name), text)
    assert list(zip(r["char_starts"], r["char_ends"], strict=True)) == [(t.start, t.end) for t in e]
    assert (r["n_tokens"], r["n_chars"], r["n_bytes"]) == (len(expected), len(text), offsets[-1])
    per_1k = round(1000 * len(expected) / len(text), 2) if text else 0.0
    assert r["tokens_per_1k_chars"] == per_1k


def test_side_by_side_and_the_file_tokenizer(pg, toy_path):
    text = "low lower <|end|> er"
    body = _ok(pg, "tokenize", {"text": text, "tokenizers": ["file:toy", "cl100k_base"]})
    toy = Tokenizer.load(toy_path)
    assert [r["key"] for r in body["results"]] == ["file:toy", "cl100k_base"]
    assert body["results"][0]["ids"] == toy.encode(text, allowed_special="all")
    assert body["results"][0]["ids"][:2] == [257, 32]  # [low][ ]: the merges of the file
    assert body["results"][1]["ids"] == tiktoken_encoding("cl100k_base").encode(text)


def test_specials_as_text(pg):
    text = "a<|endoftext|>b"
    (r,) = _ok(pg, "tokenize", {"text": text, "tokenizers": ["cl100k_base"], "specials": "none"})[
        "results"
    ]
    assert r["ids"] == tiktoken_encoding("cl100k_base").encode(text, disallowed_special=())
    assert r["special_ids"] == []


def test_lone_surrogates_are_replaced_as_encode_does(pg):
    (r,) = _ok(pg, "tokenize", {"text": "a\ud800b", "tokenizers": ["cl100k_base"]})["results"]
    assert r["ids"] == tiktoken_encoding("cl100k_base").encode("a\ufffdb")


@pytest.mark.parametrize(
    "text",
    [*TEXTS, "aaaa" * 50, " " * 200, "\n" * 100, "<|endoftext|>" * 5, "ab" * 40 + "!" * 40],
)
def test_adjacent_tokens_never_share_a_colour(pg, text):
    for r in _ok(pg, "tokenize", {"text": text, "tokenizers": ["cl100k_base", "o200k_base"]})[
        "results"
    ]:
        drawn = _drawn(r)
        assert all(a != b for a, b in itertools.pairwise(drawn)), r["key"]
        # and every token not forced to alternate keeps its id's own colour
        for i, t in enumerate(r["ids"]):
            if i not in set(r["alt_at"]):
                assert drawn[i] == api.token_colours(t, t in set(r["special_ids"]))[0]


def test_alternate_colours_are_distinct_and_readable():
    def luminance(css: str) -> float:
        rgb = [int(css[k : k + 2], 16) / 255 for k in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    for t in range(0, 200_000, 997):
        main, alt = api.token_colours(t, False)
        assert main != alt
        for c in (main, alt):  # WCAG contrast of the page's token text (#111) on the colour
            assert (luminance(c) + 0.05) / (luminance("#111111") + 0.05) >= 7.0, (t, c)
    main, alt = api.token_colours(5, True)
    for c in (main, alt):  # white text on special tokens
        assert 1.05 / (luminance(c) + 0.05) >= 7.0


def test_text_limit(pg):
    exact = "a" * MAX_TEXT_BYTES
    (r,) = _ok(pg, "tokenize", {"text": exact, "tokenizers": ["cl100k_base"]})["results"]
    assert r["n_bytes"] == MAX_TEXT_BYTES
    message = _err(pg, "tokenize", {"text": exact + "é", "tokenizers": ["cl100k_base"]}, 413)
    assert "1,000,002 bytes" in message and "up to 1,000,000" in message


@pytest.mark.parametrize(
    ("request_", "status", "words"),
    [
        ({"text": 5}, 400, "'text' must be a string"),
        ({"text": "a", "tokenizers": "cl100k_base"}, 400, "must be a list"),
        ({"text": "a", "tokenizers": []}, 400, "at least one"),
        ({"text": "a", "tokenizers": ["cl100k_base"] * 9}, 400, "at most 8"),
        ({"text": "a", "tokenizers": [1]}, 400, "list of tokenizer names"),
        ({"text": "a", "tokenizers": ["nope"]}, 404, "unknown tokenizer 'nope'"),
        ({"text": "a", "specials": "some"}, 400, "'specials'"),
        ({"text": True}, 400, "not a boolean"),
    ],
)
def test_bad_tokenize_requests(pg, request_, status, words):
    assert words in _err(pg, "tokenize", request_, status)


def test_requests_that_are_not_objects_and_unknown_endpoints(pg):
    assert "JSON object" in _err(pg, "tokenize", ["text"])
    assert "JSON object" in _err(pg, "tokenize", None)
    assert "no such endpoint" in _err(pg, "shutdown", {}, 404)


def test_an_unexpected_failure_is_a_500_answer_not_an_exception(pg, monkeypatch):
    def boom(self, req):
        raise RuntimeError("kaput")

    monkeypatch.setitem(api.ENDPOINTS, "tokenize", boom)
    status, body = handle(pg, "tokenize", {})
    assert status == 500 and "RuntimeError: kaput" in body["error"]


# ------------------------------------------------------------------------------- uploads


def _file(name: str, data: bytes) -> dict:
    return {"name": name, "data": base64.b64encode(data).decode()}


def _upload_and_check(pg, files, reference: Tokenizer, **extra):
    made = _ok(pg, "upload", {"files": files, **extra})
    assert made["key"].startswith("upload:") and made["n_vocab"] == reference.n_vocab
    text = "low lower lowest er <|end|> 日本"
    (r,) = _ok(pg, "tokenize", {"text": text, "tokenizers": [made["key"]]})["results"]
    assert r["ids"] == reference.encode(text, allowed_special="all")
    assert made["key"] in [t["key"] for t in _ok(pg, "tokenizers", {})["tokenizers"]]
    return made


def test_upload_tokforge_json(pg, toy_path):
    _upload_and_check(pg, [_file("mine.json", toy_path.read_bytes())], Tokenizer.load(toy_path))


def test_upload_tiktoken_rank_file_with_a_pattern(pg, toy_path, tmp_path):
    toy = Tokenizer.load(toy_path)
    toy.to_tiktoken(tmp_path / "toy.tiktoken")
    data = (tmp_path / "toy.tiktoken").read_bytes()
    message = _err(pg, "upload", {"files": [_file("toy.tiktoken", data)]})
    assert message.startswith("toy.tiktoken: could not read it as a tokenizer: ")
    assert "pattern" in message and str(tmp_path) not in message
    reference = Tokenizer.from_tiktoken(tmp_path / "toy.tiktoken", pretokenizer="gpt2")
    _upload_and_check(pg, [_file("toy.tiktoken", data)], reference, pretokenizer="gpt2")


def test_upload_hf_tokenizer_json(pg, toy_path, tmp_path):
    Tokenizer.load(toy_path).to_hf(tmp_path / "tokenizer.json")
    data = (tmp_path / "tokenizer.json").read_bytes()
    _upload_and_check(
        pg, [_file("tokenizer.json", data)], Tokenizer.load(tmp_path / "tokenizer.json")
    )


def test_upload_cl100k_rank_file_is_recognised(pg):
    data = require_shared("vocabs", "cl100k_base.tiktoken").read_bytes()
    made = _ok(pg, "upload", {"files": [_file("cl100k_base.tiktoken", data)]})
    (r,) = _ok(pg, "tokenize", {"text": "hello world", "tokenizers": [made["key"]]})["results"]
    assert r["ids"] == tiktoken_encoding("cl100k_base").encode("hello world")


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("bad.json", b'{"format": "tokforge", "version": 1, "vocab": [', "bad.json"),
        ("bad.json", b'{"hello": "world"}', "neither a tokforge tokenizer"),
        ("noise.bin", bytes(range(256)) * 40, "noise.bin"),
        ("tokenizer.model", b"\x0a\x05\x0a\x03abc\x12\xff\xff", "tokenizer.model"),
        ("x.tiktoken", b"not base64 !!! 12\n", "x.tiktoken"),
        ("vocab.json", b'{"a": 0, "b": 1}', "merges.txt"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "deep.json"),
    ],
)
def test_bad_uploads_give_a_readable_error(pg, name, data, words, tmp_path):
    message = _err(pg, "upload", {"files": [_file(name, data)]})
    assert words in message
    assert "could not read it as a tokenizer" in message
    assert str(pg._upload_root) not in message  # the temporary folder is not shown


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        ({}, "no file"),
        ({"files": []}, "no file"),
        ({"files": [{"name": "a.json", "data": "%%%"}]}, "not valid base64"),
        ({"files": [_file("a.json", b"   ")]}, "empty"),
        ({"files": ["a"]}, "each file"),
        ({"files": [_file("a", b"x")] * 5}, "at most 4"),
        ({"files": [_file("a", b"x"), _file("a", b"y")]}, "same name"),
        ({"files": [_file("a", b"x")], "pretokenizer": "llama"}, "'pretokenizer'"),
    ],
)
def test_bad_upload_requests(pg, request_, words):
    assert words in _err(pg, "upload", request_)


def test_upload_names_cannot_leave_the_upload_folder(pg, toy_path):
    made = _ok(pg, "upload", {"files": [_file("../../../escape.json", toy_path.read_bytes())]})
    assert made["label"] == "escape"
    root = pg._upload_root
    assert list(root.rglob("escape.json")) and not (root.parent / "escape.json").exists()
    assert all(root in p.parents for p in root.rglob("*"))


def test_upload_size_limit(pg, monkeypatch):
    monkeypatch.setattr(api, "MAX_UPLOAD_BYTES", 10)
    assert "over" in _err(pg, "upload", {"files": [_file("a.json", b"x" * 11)]}, 413)


# ------------------------------------------------------------------------------- vocabulary


def test_vocab_search_and_longest_agree_with_inspect(pg):
    tok = pg.get("cl100k_base")
    body = _ok(pg, "vocab", {"tokenizer": "cl100k_base", "query": "berry", "limit": 500})
    assert [e["id"] for e in body["entries"]] == [e.id for e in find_tokens(tok, "berry")]
    assert body["truncated"] is False
    body = _ok(pg, "vocab", {"tokenizer": "cl100k_base", "query": "berry", "limit": 3})
    assert len(body["entries"]) == 3 and body["truncated"] is True
    body = _ok(pg, "vocab", {"tokenizer": "cl100k_base", "query": "^ ?Berr", "regex": True})
    assert body["entries"] and all(
        e["text"].lstrip("·").startswith("Berr") for e in body["entries"]
    )
    body = _ok(pg, "vocab", {"tokenizer": "o200k_base", "mode": "longest", "limit": 10})
    expected = longest_tokens(pg.get("o200k_base"), 10)
    assert [(e["id"], e["n_bytes"]) for e in body["entries"]] == [
        (e.id, len(e.bytes)) for e in expected
    ]


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        ({"query": "a"}, "'tokenizer' is missing"),
        ({"tokenizer": "cl100k_base"}, "type something"),
        ({"tokenizer": "cl100k_base", "query": "(", "regex": True}, "bad regular expression"),
        ({"tokenizer": "cl100k_base", "query": "a", "limit": 0}, "between 1 and 500"),
        ({"tokenizer": "cl100k_base", "mode": "random"}, "'mode'"),
        ({"tokenizer": "cl100k_base", "mode": "longest", "by": "weight"}, "'by'"),
        ({"tokenizer": "cl100k_base", "query": "x" * 201}, "200 characters"),
    ],
)
def test_bad_vocab_requests(pg, request_, words):
    assert words in _err(pg, "vocab", request_)


def test_lineage_agrees_with_inspect(pg):
    tok = pg.get("cl100k_base")
    body = _ok(pg, "lineage", {"tokenizer": "cl100k_base", "token": " strawberry"})
    expected = lineage(tok, " strawberry")
    assert body["token"] == 73700 == expected.root.id
    assert body["steps"] == expected.to_text().splitlines()
    assert body["tree_text"] == expected.to_tree()
    assert body["tree"]["parts"][0]["id"] == expected.root.parts[0].id
    assert body["source"] == "ranks"
    body = _ok(pg, "lineage", {"tokenizer": "file:toy", "token": 257})
    assert body["steps"] == ["[l][o] -> [lo] 256", "[lo][w] -> [low] 257"]
    assert body["source"] == "merges" and body["text"] == "low"


@pytest.mark.parametrize(
    ("token", "status", "words"),
    [
        (10**9, 404, "1000000000"),
        (-1, 404, "-1"),
        (10**40, 404, "not a token id"),
        ("strawberry pie", 404, "not a single token"),
        (True, 400, "'token'"),
        (None, 400, "'token'"),
    ],
)
def test_bad_lineage_requests(pg, token, status, words):
    assert words in _err(pg, "lineage", {"tokenizer": "cl100k_base", "token": token}, status)


# ------------------------------------------------------------------------------- artifacts


def test_artifact_gallery_with_the_users_strings(pg):
    body = _ok(
        pg,
        "artifacts",
        {"tokenizers": ["cl100k_base", "file:toy"], "strings": ["my own text", "  "]},
    )
    keys = [a["key"] for a in body["artifacts"]]
    for key in ("strawberry", "numbers", "acronyms", "case", "fragments"):
        assert key in keys
    assert keys[-1] == "yours"
    toks = {"cl100k_base": tiktoken_encoding("cl100k_base")}
    for section in body["artifacts"]:
        for row in section["rows"]:
            if row["tokenizer"] in toks:
                assert row["ids"] == toks[row["tokenizer"]].encode(
                    row["text"], allowed_special="all"
                )
            drawn = _drawn(row)
            assert all(a != b for a, b in itertools.pairwise(drawn))
    (yours,) = [a for a in body["artifacts"] if a["key"] == "yours"]
    assert [r["text"] for r in yours["rows"]] == ["my own text", "my own text"]  # blank dropped
    (frag,) = [a for a in body["artifacts"] if a["key"] == "fragments"]
    row = next(
        r for r in frag["rows"] if r["tokenizer"] == "cl100k_base" and r["label"] == "Japanese"
    )
    n_partial = sum(p.startswith("<0x") for p in row["pieces"])
    assert n_partial > 0 and row["note"].startswith(f"{n_partial} of {len(row['ids'])} tokens")


def test_artifact_limits(pg):
    assert "at most 20" in _err(pg, "artifacts", {"strings": ["a"] * 21})
    assert "2000 characters" in _err(pg, "artifacts", {"strings": ["a" * 2001]})
    assert "list of strings" in _err(pg, "artifacts", {"strings": [1]})


# ------------------------------------------------------------------------------- transformer


def test_model_view_is_the_random_models_forward_pass(pg):
    text = "The cat sat on the mat"
    body = _ok(pg, "model", {"tokenizer": "cl100k_base", "text": text})
    ids = tiktoken_encoding("cl100k_base").encode(text)
    assert body["ids"] == ids and body["random"] and body["weights"].startswith("random")
    att = np.array(body["attention"])  # [n_layers, n_heads, n, n]
    c = body["config"]
    assert att.shape == (c["n_layers"], c["n_heads"], len(ids), len(ids))
    assert np.allclose(att.sum(-1), 1.0, atol=1e-3)
    assert np.all(np.triu(att, 1) == 0)  # causal: nobody attends to a later token
    model, _ = pg._model("cl100k_base", pg.get("cl100k_base"))
    probs = sampling_distribution(model.forward(ids)[-1], 1.0)
    top = np.argsort(-probs, kind="stable")[:10]
    assert [n["id"] for n in body["next"]] == top.tolist()
    assert np.allclose([n["p"] for n in body["next"]], probs[top])


def test_model_view_uses_given_weights_when_the_vocabulary_fits(toy_path, tmp_path):
    toy = Tokenizer.load(toy_path)
    model = Transformer(Config.from_tokenizer(toy, d_model=16, n_layers=1, n_heads=2), seed=3)
    model.save(tmp_path / "m.npz")
    pg = Playground(
        [str(toy_path)], builtins=False, weights=tmp_path / "m.npz", upload_dir=tmp_path
    )
    body = _ok(pg, "model", {"tokenizer": "file:toy", "text": "low lower"})
    assert body["weights"] == "trained: m.npz" and not body["random"]
    ids = toy.encode("low lower")
    probs = sampling_distribution(model.forward(ids)[-1], 1.0)
    assert np.allclose([n["p"] for n in body["next"]], np.sort(probs)[::-1][:10])


def test_model_limits_and_errors(pg, tmp_path):
    body = _ok(pg, "model", {"tokenizer": "cl100k_base", "text": "word " * 200})
    assert len(body["ids"]) == api.MAX_MODEL_TOKENS and body["truncated"]
    assert "type a prompt" in _err(pg, "model", {"tokenizer": "cl100k_base", "text": ""})
    with pytest.raises(Exception, match="no such weights file"):
        Playground([], weights=tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    bad = Playground([], weights=tmp_path / "bad.npz", upload_dir=tmp_path)
    assert "bad.npz" in _err(bad, "model", {"tokenizer": "cl100k_base", "text": "a"}, 409)


# ------------------------------------------------------------------------------- the rest


def test_unknown_spec_on_the_command_line():
    with pytest.raises(ValueError, match="neither a known encoding"):
        Playground(["no/such/file.json"])


def test_unavailable_builtin_is_listed_with_its_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("TOKFORGE_SHARED", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)
    monkeypatch.delenv("TOKFORGE_VOCAB_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # tiktoken's default cache
    from tokforge import registry

    # a broken install: the bundled copies are gone too
    monkeypatch.setattr(registry, "bundled_rank_file", lambda name: tmp_path / "missing.gz")
    pg = Playground([], upload_dir=tmp_path)
    body = _ok(pg, "tokenizers", {})
    assert body["defaults"] == []
    assert all(
        not t["available"] and "no local rank file" in t["error"] for t in body["tokenizers"]
    )
    message = _err(pg, "tokenize", {"text": "a", "tokenizers": ["cl100k_base"]}, 409)
    assert "cl100k_base" in message and "no local rank file" in message


@pytest.mark.parametrize("module", [api, server, command])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_detail_limit_keeps_ids_whole_and_details_to_a_prefix(pg):
    text = "How many r's are in strawberry? " * 20
    full = _ok(pg, "tokenize", {"text": text, "tokenizers": ["cl100k_base"]})["results"][0]
    part = _ok(pg, "tokenize", {"text": text, "tokenizers": ["cl100k_base"], "detail_limit": 5})[
        "results"
    ][0]
    assert part["ids"] == full["ids"] and part["n_tokens"] == full["n_tokens"] > 5
    assert part["n_detailed"] == 5 and full["n_detailed"] == full["n_tokens"]
    assert part["byte_offsets"] == full["byte_offsets"][:6]
    assert part["char_starts"] == full["char_starts"][:5]
    assert set(part["pieces"]) == {str(i) for i in full["ids"][:5]}
    assert "0 or more" in _err(pg, "tokenize", {"text": "a", "detail_limit": -1})
