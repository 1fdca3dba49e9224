"""tokforge.inspect: explain, lineage, vocabulary queries, the vocab dump and compare.

Expected values come from tiktoken (the same rank file, built by conftest) or from hand-built
vocabularies whose answer follows from their construction, never from tokforge's own output.
"""

from __future__ import annotations

import doctest
import importlib
import itertools
import json
import re

import pytest
import tokforge
import tokforge.inspect as ins
from conftest import tiktoken_encoding, tokforge_encoding
from tokforge.errors import TokforgeError, UnknownTokenError

# "lo" = 256, "low" = 257 (two merges on the bytes l=108, o=111, w=119)
LOW = [(108, 111), (256, 119)]
# ab=256, bc=257, bcd=258, abcd=259 = a + bcd. BPE on "abcd" with the merges ranked below 259
# applies ab (256, the lowest-ranked pair) first, leaving [ab][c][d]; no token "abc" or "cd"
# exists, so it stops at three parts and no merge ever builds 259.
UNREACHABLE = [(97, 98), (98, 99), (257, 100), (97, 258)]


def _glyphs(text: str) -> str:
    """The documented glyphs, restated independently of tokforge.inspect.viz."""
    return text.replace(" ", "·").replace("\t", "→").replace("\n", "↵")


@pytest.fixture(scope="module")
def tt():
    return tiktoken_encoding("cl100k_base")


@pytest.fixture(scope="module")
def cl():
    return tokforge_encoding("cl100k_base")


# ----------------------------------------------------------------------------- explain


def test_strawberry_pieces_ids_and_spans(cl, tt):
    ids = tt.encode("strawberry")
    pieces = [tt.decode_single_token_bytes(t) for t in ids]
    e = cl.explain("strawberry")
    assert e.ids == ids
    assert [t.bytes for t in e] == pieces
    assert b"".join(pieces) == b"strawberry" and len(pieces) > 1  # letters hide in tokens
    # ASCII: character spans are the running byte lengths
    bounds = [0]
    for p in pieces:
        bounds.append(bounds[-1] + len(p))
    assert [(t.start, t.end) for t in e] == list(itertools.pairwise(bounds))
    assert e.to_text() == "".join(f"[{p.decode()}]" for p in pieces)
    assert e.text == "strawberry" and e.n_bytes == 10


def test_leading_space_strawberry_is_one_token(cl, tt):
    (only,) = tt.encode(" strawberry")
    e = ins.explain(cl, " strawberry")
    assert e.ids == [only]
    assert e[0].text == "·strawberry"
    assert (e[0].start, e[0].end) == (0, 11)


def test_arithmetic_split(cl, tt):
    text = "123 + 456"
    pieces = [tt.decode_single_token_bytes(t) for t in tt.encode(text)]
    e = ins.explain(cl, text)
    assert e.pieces == [_glyphs(p.decode()) for p in pieces]
    assert e.to_text() == "".join(f"[{_glyphs(p.decode())}]" for p in pieces)
    assert {"123", "456"} <= {p.decode().strip() for p in pieces}  # 3-digit groups


def test_multibyte_character_split_across_tokens(cl, tt):
    text = "日本語"
    ids = tt.encode(text)
    pieces = [tt.decode_single_token_bytes(t) for t in ids]
    # cl100k has no token for 語 (E8 AA 9E): it comes out as two tokens holding partial bytes
    split = [p for p in pieces if not _decodes(p)]
    assert len(split) == 2 and b"".join(split) == "語".encode()
    e = ins.explain(cl, text)
    assert e.ids == ids
    partial = [t for t in e if t.partial]
    assert [t.bytes for t in partial] == split
    assert [t.text for t in partial] == ["".join(f"<0x{b:02X}>" for b in p) for p in split]
    # both halves belong to the third character
    assert [(t.start, t.end) for t in partial] == [(2, 3), (2, 3)]
    assert [(t.start, t.end) for t in e if not t.partial] == [(0, 1), (1, 2)]


def _n_token_elements(page: str) -> int:
    """``<span class="tok ...">`` elements: one per token."""
    return len(re.findall(r'<span class="tok(?: [^"]*)?"', page))


def _decodes(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_whitespace_glyphs(cl, tt):
    text = "a\tb\n  c d"
    pieces = [tt.decode_single_token_bytes(t) for t in tt.encode(text)]
    e = ins.explain(cl, text)
    assert e.pieces == [_glyphs(p.decode()) for p in pieces]
    assert "↵" in "".join(e.pieces) and "→" in "".join(e.pieces)
    # to_text keeps the line break after the newline glyph
    assert e.to_text().count("\n") == text.count("\n")


def test_special_tokens_are_recognised(cl, tt):
    text = "hi<|endoftext|>"
    e = ins.explain(cl, text)
    assert e.ids == tt.encode(text, allowed_special="all")
    assert e[-1].kind == "special" and e[-1].id == tt.eot_token
    assert e[-1].start == 2 and e[-1].end == len(text)
    plain = ins.explain(cl, text, allowed_special=set())
    assert plain.ids == tt.encode(text, disallowed_special=())


def test_views_table_json_terminal_html(cl, tt):
    e = cl.explain("strawberry")
    ids = tt.encode("strawberry")
    data = json.loads(e.to_json())
    assert data["tokenizer"] == "cl100k_base"
    assert [t["id"] for t in data["tokens"]] == ids
    assert [bytes.fromhex(t["hex"]) for t in data["tokens"]] == [
        tt.decode_single_token_bytes(t) for t in ids
    ]
    assert data["n_tokens"] == len(ids) and data["n_chars"] == 10
    table = e.to_table().splitlines()
    assert len(table) == 2 + len(ids)
    for line, t in zip(table[2:], ids, strict=True):
        assert str(t) in line.split()
    colored = e.to_terminal(color=True)
    assert colored.count("\x1b[48;5;") == len(ids)
    assert "\x1b[" not in e.to_terminal(color=False)
    page = e.to_html()
    assert page.startswith("<!DOCTYPE html>") and _n_token_elements(page) == len(ids)
    assert "<script" not in page  # self-contained, nothing to execute
    frag = e._repr_html_()
    assert "<html" not in frag and _n_token_elements(frag) == len(ids)
    for t in ids:
        assert f'data-id="{t}"' in page


def test_same_token_same_colour_everywhere(cl):
    a = cl.explain(" strawberry fields")
    b = cl.explain("I like strawberry")
    (ta,) = [t for t in a if t.text == "·strawberry"]
    (tb,) = [t for t in b if t.text == "·strawberry"]
    assert ta.id == tb.id
    from tokforge.inspect.viz import token_css

    colour = token_css(ta.id)
    assert f'background:{colour}" data-id="{ta.id}"' in a.to_html()
    assert f'background:{colour}" data-id="{tb.id}"' in b.to_html()


def test_explain_on_a_hand_built_vocab():
    tok = tokforge.Tokenizer.from_merges(LOW, pretokenizer="gpt2", name="low")
    e = tok.explain("lowly low")
    # gpt2 pieces: "lowly", " low"; "lowly" -> low + l + y; " low" -> " " + low
    assert e.ids == [257, 108, 121, 32, 257]
    assert e.to_text() == "[low][l][y][·][low]"
    assert [(t.start, t.end) for t in e] == [(0, 3), (3, 4), (4, 5), (5, 6), (6, 9)]
    assert "low: 5 tokens, 9 characters, 9 bytes" in e.summary()
    assert repr(e).startswith("<Explanation 'low' 5 tokens: [low][l][y]")


def test_empty_text():
    tok = tokforge.Tokenizer.from_merges(LOW, pretokenizer="gpt2")
    e = ins.explain(tok, "")
    assert len(e) == 0 and e.to_text() == "" and json.loads(e.to_json())["tokens"] == []


# ----------------------------------------------------------------------------- lineage


def _parts_below(ranks: dict[bytes, int], data: bytes, limit: int) -> list[bytes]:
    """Rank-rule BPE restricted to ranks below ``limit``: the test's own statement of it."""
    parts = [bytes([b]) for b in data]
    while True:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < limit and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            return parts
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]


@pytest.mark.parametrize("token", [" strawberry", "berry", " token", "\n\n\n", "日"])
def test_lineage_under_cl100k_ends_in_single_bytes(cl, tt, token):
    lin = cl.lineage(token)
    data = token.encode()
    assert lin.root.id == tt.encode_single_token(data)
    leaves = lin.leaves()
    assert all(len(leaf.bytes) == 1 for leaf in leaves)
    assert b"".join(leaf.bytes for leaf in leaves) == data
    ranks = tt._mergeable_ranks
    for step in lin.steps():
        assert step.result.bytes == step.left.bytes + step.right.bytes
        assert ranks[step.result.bytes] == step.result.id
        assert step.left.id < step.result.id and step.right.id < step.result.id
        # the two parts are where BPE on the token's bytes stops below its rank
        expected = _parts_below(ranks, step.result.bytes, step.result.id)
        assert [step.left.bytes, step.right.bytes] == expected
    assert lin.steps()[-1].result.id == lin.root.id
    assert [s.result.id for s in lin.steps()] == sorted(s.result.id for s in lin.steps())


def test_lineage_text_and_tree_by_construction():
    tok = tokforge.Tokenizer.from_merges(LOW, pretokenizer="whitespace", name="low")
    lin = tok.lineage("low")
    assert lin.source == "merges"
    assert lin.to_text() == "[l][o] -> [lo] 256\n[lo][w] -> [low] 257"
    assert lin.to_tree().splitlines() == [
        "[low] 257",
        "├── [lo] 256",
        "│   ├── [l] 108",
        "│   └── [o] 111",
        "└── [w] 119",
    ]
    assert lin.depth == 2
    assert [n.id for n in lin.leaves()] == [108, 111, 119]
    assert json.loads(lin.to_json())["steps"] == [[108, 111, 256], [256, 119, 257]]
    # id, bytes and str name the same token
    assert tok.lineage(257).to_text() == tok.lineage(b"low").to_text() == lin.to_text()


def test_lineage_of_a_byte_and_of_a_special_token():
    tok = tokforge.Tokenizer.from_merges(LOW, pretokenizer="gpt2", special_tokens={"<|e|>": 258})
    assert tok.lineage(108).to_text() == "[l] 108 (no merges: a single byte)"
    special = tok.lineage(258)
    assert special.root.is_leaf and "special" in special.to_text()


def test_lineage_of_a_rank_vocab_recovers_merges():
    ranks = {bytes([i]): i for i in range(256)}
    ranks.update({b"lo": 256, b"low": 257, b"er": 258, b"lower": 259})
    tok = tokforge.Tokenizer("r", mergeable_ranks=ranks, pretokenizer="whitespace")
    lin = tok.lineage("lower")
    assert lin.source == "ranks"
    assert [str(s) for s in lin.steps()] == [
        "[l][o] -> [lo] 256",
        "[lo][w] -> [low] 257",
        "[e][r] -> [er] 258",
        "[low][er] -> [lower] 259",
    ]


def test_lineage_errors(cl):
    with pytest.raises(UnknownTokenError, match="not a single token"):
        cl.lineage("strawberry pie")
    with pytest.raises(UnknownTokenError):
        cl.lineage(10**9)
    with pytest.raises(TypeError):
        cl.lineage(True)


# ----------------------------------------------------------------------------- queries


def test_unreachable_tokens_in_a_vocab_built_to_have_them():
    tok = tokforge.Tokenizer.from_merges(UNREACHABLE, pretokenizer="whitespace")
    found = ins.unreachable_tokens(tok)
    assert [(u.id, u.bytes, u.parts) for u in found] == [(259, b"abcd", [256, 99, 100])]
    assert found[0].whole_piece  # "abcd" alone is one whitespace piece
    lin = tok.lineage(259)  # the recorded merge says a + bcd ...
    assert [p.id for p in lin.root.parts] == [97, 258]
    dump = list(ins.vocab_dump(tok))
    assert dump[259] == "[a][bcd] -> [abcd] 259"


def test_unreachable_in_a_rank_vocab_and_the_whole_piece_lookup():
    ranks = {bytes([i]): i for i in range(256)}
    ranks.update({b"ab": 256, b"xyz": 257, b"\xe2\x82": 258})
    tok = tokforge.Tokenizer("u", mergeable_ranks=ranks, pretokenizer="whitespace")
    found = {u.id: u for u in ins.unreachable_tokens(tok)}
    # "xyz": no "xy" or "yz" exists, so BPE stops at three bytes. "\xe2\x82" (half a "€")
    # stops at two bytes, which its own rank joins: reachable.
    assert set(found) == {257}
    assert found[257].parts == [120, 121, 122] and found[257].whole_piece
    # the piece lookup still emits it for text that is exactly "xyz", never inside "xyzw"
    assert tok.encode("xyz") == [257]
    assert 257 not in tok.encode("xyzw")
    dump = list(ins.vocab_dump(tok))
    assert dump[257] == "[x][y][z] -/-> [xyz] 257 (unreachable by merges)"
    lin = tok.lineage(257)
    assert not lin.root.merged and "unreachable" in lin.to_text()


def test_unreachable_partial_utf8_is_never_a_whole_piece():
    ranks = {bytes([i]): i for i in range(256)}
    ranks.update({b"\xe2\x82\xac\xe2": 256})  # "€" plus a lead byte: four bytes, no merges
    tok = tokforge.Tokenizer("p", mergeable_ranks=ranks, pretokenizer="whitespace")
    (u,) = ins.unreachable_tokens(tok)
    assert u.id == 256 and not u.whole_piece and len(u.parts) == 4


def test_find_tokens_matches_tiktoken_vocab(cl, tt):
    expected = sorted(r for b, r in tt._mergeable_ranks.items() if b"berry" in b)
    assert [e.id for e in ins.find_tokens(cl, "berry")] == expected
    assert [e.id for e in ins.find_tokens(cl, b"berry")] == expected
    assert [e.id for e in ins.find_tokens(cl, "berry", limit=2)] == expected[:2]
    regex = sorted(r for b, r in tt._mergeable_ranks.items() if b.endswith(b"berry"))
    assert [e.id for e in ins.find_tokens(cl, "berry$", regex=True)] == regex
    upper = sorted(r for b, r in tt._mergeable_ranks.items() if b"berry" in b.lower())
    assert [e.id for e in ins.find_tokens(cl, "BERRY", ignore_case=True)] == upper
    with pytest.raises(TokforgeError, match="regular expression"):
        ins.find_tokens(cl, "(", regex=True)


def test_longest_tokens_match_tiktoken_vocab(cl, tt):
    by_len = sorted(tt._mergeable_ranks.items(), key=lambda kv: (-len(kv[0]), kv[1]))
    assert [(e.id, e.bytes) for e in ins.longest_tokens(cl, 5)] == [(r, b) for b, r in by_len[:5]]
    by_chars = sorted(
        tt._mergeable_ranks.items(), key=lambda kv: (-len(kv[0].decode("utf-8", "replace")), kv[1])
    )
    assert [e.id for e in ins.longest_tokens(cl, 5, by="chars")] == [r for _, r in by_chars[:5]]
    with pytest.raises(TokforgeError):
        ins.longest_tokens(cl, 3, by="words")  # type: ignore[arg-type]


def test_script_of():
    cases = {
        " hello": "Latin",
        "Straße": "Latin",
        " привет": "Cyrillic",
        "日本": "Han",
        "ひらがな": "Hiragana",
        "カタカナ": "Katakana",
        "한국": "Hangul",
        " مرحبا": "Arabic",
        "नमस्ते": "Devanagari",
        "γειά": "Greek",
        "２０": "Digits",
        "123": "Digits",
        "\n\n": "Whitespace",
        " {}": "Punctuation/symbols",
        "a日": "Mixed",
        "ＡＢ": "Latin",  # fullwidth letters are Latin
    }
    for text, script in cases.items():
        assert ins.script_of(text.encode()) == script, text
    assert ins.script_of(b"\xe6\x97") == "Partial UTF-8"


def test_tokens_by_script_counts_every_token_once(cl, tt):
    groups = ins.tokens_by_script(cl)
    assert sum(len(v) for v in groups.values()) == len(tt._mergeable_ranks)
    assert next(iter(groups)) == "Latin"  # largest first
    cyrillic = [
        t
        for t in tt.encode(" привет мир")
        if all(c == " " or "\u0400" <= c <= "\u04ff" for c in tt.decode([t]))
        and tt.decode([t]).strip()
    ]
    assert cyrillic and all(t in groups["Cyrillic"] for t in cyrillic)


def test_rarest_merges_from_recorded_counts():
    meta = {"training": {"merge_counts": [9, 5, 5, 1]}}
    tok = tokforge.Tokenizer.from_merges(
        [(108, 111), (256, 119), (101, 114), (257, 258)], pretokenizer="gpt2", metadata=meta
    )
    rare = ins.rarest_merges(tok, 3)
    # count 1 (id 259) first, then the two 5s, the later merge first
    assert [(r.id, r.merge_count) for r in rare] == [(259, 1), (258, 5), (257, 5)]
    assert all(r.usage is None for r in rare)


def test_rarest_merges_by_usage_in_a_corpus():
    tok = tokforge.Tokenizer.from_merges([(108, 111), (256, 119), (101, 114)], pretokenizer="gpt2")
    # "lo" (256) only ever appears inside "low" (257): it is never emitted on its own
    rare = ins.rarest_merges(tok, 3, corpus=["low low lower", "err"])
    usage = {r.id: r.usage for r in rare}
    assert usage == {256: 0, 257: 3, 258: 2}
    assert rare[0].id == 256


def test_rarest_merges_needs_counts_or_corpus(cl):
    with pytest.raises(TokforgeError, match="corpus"):
        ins.rarest_merges(cl, 5)


def test_vocab_dump_by_construction():
    tok = tokforge.Tokenizer.from_merges(
        LOW, pretokenizer="whitespace", special_tokens={"<|end|>": 259}
    )
    lines = list(ins.vocab_dump(tok))
    assert len(lines) == 260
    assert lines[97] == "[a] 97" and lines[32] == "[·] 32" and lines[10] == "[↵] 10"
    assert lines[0x80] == "[<0x80>] 128"
    assert lines[256:] == [
        "[l][o] -> [lo] 256",
        "[lo][w] -> [low] 257",
        "258 unused",
        "[<|end|>] 259 special",
    ]


def test_vocab_dump_of_cl100k_agrees_with_tiktoken(cl, tt):
    lines = list(ins.vocab_dump(cl))
    assert len(lines) == cl.n_vocab
    target = tt.encode_single_token(" strawberry")
    line = lines[target]
    left, right = line.split(" -> ")[0][1:-1].split("][")
    assert right and line.endswith(f"[·strawberry] {target}")
    assert (left + right).replace("·", " ") == " strawberry"
    assert lines[tt.eot_token] == f"[<|endoftext|>] {tt.eot_token} special"


# ----------------------------------------------------------------------------- compare


def test_compare_marks_the_differing_tokens():
    # a: "ab" is a token; b: "bc" is a token. Text "abc": a -> [ab][c], b -> [a][bc]
    base = {bytes([i]): i for i in range(256)}
    a = tokforge.Tokenizer("A", mergeable_ranks={**base, b"ab": 256}, pretokenizer="none")
    b = tokforge.Tokenizer("B", mergeable_ranks={**base, b"bc": 256}, pretokenizer="none")
    c = ins.compare([a, b], "abcd")
    assert c.counts == [3, 3]
    assert c.differing() == [[0, 1], [0, 1]]  # [ab][c] vs [a][bc]; [d] is shared
    text = c.to_text(color=False).splitlines()
    # each token drawn whole; the rows line up at the boundaries both share (0, 3 and 4)
    assert text[0].startswith("A") and text[0].endswith("|ab|c|d|")
    assert text[1].strip() == "^^ ^"  # under [ab] and [c]
    assert text[2].startswith("B") and text[2].endswith("|a|bc|d|")
    assert text[3].strip() == "^ ^^"  # under [a] and [bc]
    assert text[0].index("|d|") == text[2].index("|d|")
    data = json.loads(c.to_json())
    assert [t["differing"] for t in data["tokenizers"]] == [[0, 1], [0, 1]]
    assert _n_token_elements(c.to_html()) == 6
    assert len(re.findall(r'class="tok differs"', c.to_html())) == 4


def test_compare_cl100k_o200k_strawberry(cl, tt):
    o2 = tokforge_encoding("o200k_base")
    tt2 = tiktoken_encoding("o200k_base")
    c = ins.compare([cl, o2], "strawberry")
    spans = []
    for enc in (tt, tt2):
        pos, s = 0, []
        for t in enc.encode("strawberry"):
            n = len(enc.decode_single_token_bytes(t))
            s.append((pos, pos + n))
            pos += n
        spans.append(s)
    expected = [[i for i, sp in enumerate(spans[k]) if sp not in spans[1 - k]] for k in range(2)]
    assert c.differing() == expected
    assert c.counts == [len(s) for s in spans]


def test_compare_needs_a_tokenizer():
    with pytest.raises(TokforgeError):
        ins.compare([], "x")


def test_module_docstring_examples_run():
    # import_module, not attribute access: tokforge may re-export the artifacts() function
    # under the name of its module
    names = (
        "tokforge.inspect",
        "tokforge.inspect.explanation",
        "tokforge.inspect.merge_tree",
        "tokforge.inspect.vocab",
        "tokforge.inspect.comparison",
        "tokforge.inspect.viz",
        "tokforge.inspect.stats",
        "tokforge.inspect.artifacts",
    )
    for module in map(importlib.import_module, names):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
        assert result.attempted > 0, module.__name__
