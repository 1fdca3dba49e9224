"""tokforge.inspect.viz and .stats: printable forms, colours, tables, corpus statistics and the
matplotlib figure (a real PNG with the expected axes)."""

from __future__ import annotations

import re
import struct
from collections import Counter
from pathlib import Path

import pytest
import tokforge
from conftest import corpus_text, tiktoken_encoding, tokforge_encoding
from hypothesis import given, settings
from hypothesis import strategies as st
from tokforge import viz
from tokforge.inspect import viz as drawing
from tokforge.inspect.stats import corpus_stats, stats_json, stats_text, text_stats


def test_printable_glyphs_and_partial_bytes():
    assert viz.printable(b" a\tb\nc\r") == "·a→b↵c␍"
    assert viz.printable(b"\x00\x1b\x7f") == "␀␛␡"
    assert viz.printable(b"\xe2\x82") == "<0xE2><0x82>"  # the start of "€"
    assert viz.printable(b"\xac") == "<0xAC>"
    assert viz.printable("€".encode()) == "€"
    assert viz.printable(b" \xc3\xa9\xe2") == "·é<0xE2>"
    assert viz.printable(b"a\nb", newline="\n") == "a↵\nb"


def test_colour_is_a_function_of_the_id_only():
    assert viz.token_rgb(73700) == viz.token_rgb(73700)
    colours = {viz.token_rgb(i) for i in range(1000)}
    assert len(colours) > 900  # a hash, not a small palette: neighbours rarely collide
    for i in (0, 1, 255, 73700, 199997):
        r, g, b = viz.token_rgb(i)
        # pastel: black text stays readable (relative luminance well above mid-grey)
        assert 0.2126 * r + 0.7152 * g + 0.0722 * b > 150
    assert viz.token_css(5) == "#{:02x}{:02x}{:02x}".format(*viz.token_rgb(5))
    a = viz.ansi_token("x", 5)
    assert a.startswith("\x1b[48;5;") and a.endswith("x\x1b[0m")
    assert viz.ansi_token("x", 5) == viz.ansi_token("x", 5)
    assert "\x1b[1;97;40m" in viz.ansi_token("<|e|>", 9, special=True)


def test_use_color(monkeypatch):
    import io

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert viz.use_color("always") and viz.use_color(True)
    assert not viz.use_color("never") and not viz.use_color(False)
    assert not viz.use_color(None, io.StringIO())  # not a terminal

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert viz.use_color("auto", Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not viz.use_color("auto", Tty())
    assert viz.use_color("always", Tty())


def test_table_and_display_width():
    assert viz.display_width("日本") == 4 and viz.display_width("é") == 1
    assert viz.display_width("e\u0301") == 1  # combining accent takes no column
    out = viz.table(["id", "token"], [[1, "日本"], [22, "ab"]]).splitlines()
    assert out == ["id  token", "--  -----", " 1  日本", "22  ab"]


# ----------------------------------------------------------------------------- statistics


def test_text_stats_by_construction():
    tok = tokforge.Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="gpt2")
    s = text_stats(tok, {"a": "low low", "b": "lo"}, name="toy")
    a, b = s.files
    # "low low" -> [low][ ][low]; "lo" -> [lo]
    assert (a.tokens, a.bytes, a.chars, a.words) == (3, 7, 7, 2)
    assert (b.tokens, b.bytes, b.words) == (1, 2, 1)
    assert a.bytes_per_token == pytest.approx(7 / 3)
    assert a.tokens_per_word == pytest.approx(3 / 2)
    assert s.id_counts == {257: 2, 32: 1, 256: 1}
    assert s.length_histogram == {3: 2, 1: 1, 2: 1}
    assert s.vocab_used == 3 and s.vocab_share == pytest.approx(3 / 258)
    assert s.total.tokens == 4 and s.total.bytes == 9
    text = stats_text([s])
    assert "toy (258 ordinary tokens)" in text and "vocabulary used: 3 of 258" in text


def test_corpus_stats_agree_with_tiktoken(tmp_path):
    cl = tokforge_encoding("cl100k_base")
    tt = tiktoken_encoding("cl100k_base")
    texts = {"en.txt": corpus_text("en_docs")[:20000], "ja.txt": corpus_text("man_ja")[:20000]}
    paths = []
    for name, text in texts.items():
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        paths.append(p)
    s = corpus_stats(cl, paths)
    all_ids = []
    for f, text in zip(s.files, texts.values(), strict=True):
        ids = tt.encode_ordinary(text)
        all_ids += ids
        assert f.tokens == len(ids)
        assert f.bytes == len(text.encode()) and f.chars == len(text)
        assert f.words == len(text.split())
    assert s.vocab_used == len(set(all_ids))
    lengths = Counter(len(tt.decode_single_token_bytes(t)) for t in all_ids)
    assert s.length_histogram == dict(lengths)
    assert s.files[0].bytes_per_token > s.files[1].bytes_per_token  # English packs better
    assert '"tokenizer": "cl100k_base"' in stats_json([s])


def test_corpus_stats_missing_file(tmp_path):
    tok = tokforge.Tokenizer.from_merges([], pretokenizer="gpt2")
    with pytest.raises(OSError, match=r"nope\.txt"):
        corpus_stats(tok, [tmp_path / "nope.txt"])


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_stats_writes_a_png_with_the_expected_axes(tmp_path):
    pytest.importorskip("matplotlib")
    base = {bytes([i]): i for i in range(256)}
    a = tokforge.Tokenizer("bytes", mergeable_ranks=base, pretokenizer="gpt2")
    b = tokforge.Tokenizer.from_merges(
        [(116, 104), (256, 101), (32, 257)], pretokenizer="gpt2", name="the"
    )
    texts = {"one.txt": "the theme of the thesis " * 40, "two.txt": "other words here " * 30}
    stats = [text_stats(a, texts), text_stats(b, texts)]
    out = tmp_path / "stats.png"
    fig = viz.plot_stats(stats, out)
    assert out.stat().st_size > 10_000
    width, height = _png_size(out)
    assert (width, height) == (13 * 110, round(4.4 * 110))
    bpt, lengths, usage = fig.axes
    assert bpt.get_ylabel().startswith("bytes per token")
    assert [t.get_text() for t in bpt.get_xticklabels()] == ["one.txt", "two.txt"]
    assert len(bpt.patches) == 4  # 2 files x 2 tokenizers
    heights = sorted(round(p.get_height(), 3) for p in bpt.patches)
    expected = sorted(round(f.bytes_per_token, 3) for s in stats for f in s.files)
    assert heights == expected
    assert lengths.get_xlabel().startswith("token length in bytes")
    assert lengths.get_ylabel() == "% of tokens"
    assert usage.get_xscale() == "log"
    assert usage.get_ylabel() == "% of all tokens covered"
    legend = [t.get_text() for t in usage.get_legend().get_texts()]
    assert legend[0].startswith("bytes:") and legend[1].startswith("the:")
    # every curve ends at 100% of the tokens
    for line in usage.get_lines():
        assert line.get_ydata()[-1] == pytest.approx(100)


# ------------------------------------------------------------------- neighbours' colours

_ANSI_BG = re.compile(r"\x1b\[(?:48;5;(\d+)m\x1b\[38;5;16m|1;97;(\d+)m)")
_HTML_BG = re.compile(r'<span class="tok[^"]*" style="background:(#[0-9a-f]{6})"')


def _terminal_backgrounds(painted: str) -> list[str]:
    """The background of each token in ``to_terminal`` output: a 256-colour index, or the
    special tokens' basic colour."""
    return [m.group(1) or f"special {m.group(2)}" for m in _ANSI_BG.finditer(painted)]


def _assert_neighbours_differ(tok, text: str) -> None:
    e = tok.explain(text)
    terminal = _terminal_backgrounds(e.to_terminal(color=True))
    page = _HTML_BG.findall(e.to_html())
    assert len(terminal) == len(page) == len(e)
    for colours in (terminal, page):
        same = [i for i in range(1, len(colours)) if colours[i] == colours[i - 1]]
        assert same == [], (text, [e.tokens[i].text for i in same])


def test_the_reported_neighbours_differ_in_the_terminal():
    cl = tokforge_encoding("cl100k_base")
    e = cl.explain("How many r's are in strawberry?")
    colours = dict(zip(e.pieces, _terminal_backgrounds(e.to_terminal(color=True)), strict=True))
    assert colours["·in"] != colours["·strawberry"]
    # both ids fall on one entry of the 256-colour palette: the second took its alternate
    assert drawing.xterm256(drawing.token_rgb(e.ids[5])) == drawing.xterm256(
        drawing.token_rgb(e.ids[6])
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([" strawberry", " in", "a", " ", "\n", "123", "日", "<|endoftext|>"])
        | st.text(max_size=8),
        max_size=40,
    )
)
def test_adjacent_tokens_differ_in_colour_for_random_texts(parts):
    _assert_neighbours_differ(tokforge_encoding("cl100k_base"), "".join(parts))


def test_adjacent_tokens_differ_in_colour_on_corpus_text():
    o2 = tokforge_encoding("o200k_base")
    for name in ("en_docs", "code_py"):
        _assert_neighbours_differ(o2, corpus_text(name)[:20_000])


def test_a_token_keeps_its_colour_unless_its_neighbour_has_it():
    cl = tokforge_encoding("cl100k_base")
    e = cl.explain(" strawberry" * 4 + " in")
    page = _HTML_BG.findall(e.to_html())
    own = viz.token_css(e.ids[0])
    assert page[0] == page[2] == own and page[1] == page[3] != own
    assert page[4] == viz.token_css(e.ids[4])
