"""tokforge.inspect.artifacts and the inspect / artifacts / compare / stats sub-commands, called as
``main(argv)``. Expected values come from tiktoken or from hand-built vocabularies."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import tokforge
from conftest import require_shared, tiktoken_encoding, tokforge_encoding
from tokforge.cli import main
from tokforge.errors import TokforgeError
from tokforge.inspect.artifacts import ARTIFACTS, artifacts

LOW = [(108, 111), (256, 119)]  # lo=256, low=257
UNREACHABLE = [(97, 98), (98, 99), (257, 100), (97, 258)]  # 259 "abcd": see test_inspect.py


@pytest.fixture
def shared_env(monkeypatch):
    """Lets ``-t cl100k`` / ``-t o200k`` find the rank files."""
    monkeypatch.setenv("TOKFORGE_SHARED", str(require_shared()))


@pytest.fixture
def low_file(tmp_path: Path) -> Path:
    p = tmp_path / "low.json"
    tokforge.Tokenizer.from_merges(
        LOW,
        pretokenizer="gpt2",
        name="low",
        metadata={"training": {"merge_counts": [7, 3]}},
    ).save(p)
    return p


def _pieces(enc, text: str) -> list[bytes]:
    return [enc.decode_single_token_bytes(t) for t in enc.encode(text)]


def _glyphs(s: str) -> str:
    return s.replace(" ", "·").replace("\t", "→").replace("\n", "↵")


# ----------------------------------------------------------------------------- artifacts()


def test_artifacts_cover_the_classic_surprises():
    cl = tokforge_encoding("cl100k_base")
    tt = tiktoken_encoding("cl100k_base")
    report = artifacts([cl])
    keys = [r.artifact.key for r in report.results]
    assert keys == [
        "strawberry",
        "numbers",
        "acronyms",
        "case",
        "trailing",
        "indentation",
        "languages",
    ]
    for res in report.results:
        assert res.artifact.why and len(res.artifact.why.splitlines()) == 1
        for row in res.rows:
            assert row.explanation.ids == tt.encode(row.text)

    # strawberry: which tokens hold the r's
    row = report["strawberry"].rows[0]
    assert row.text == "strawberry"
    held = [(p.decode(), p.count(b"r")) for p in _pieces(tt, "strawberry") if b"r" in p]
    assert row.note == "r's: " + " ".join(f"[{p}]×{n}" for p, n in held)

    # digit grouping of a long number, from tiktoken's pieces
    (long_row,) = [r for r in report["numbers"].rows if r.text == "1234567890"]
    sizes = [str(len(p)) for p in _pieces(tt, "1234567890")]
    assert long_row.note == "digits per token: 1234567890: " + "+".join(sizes)

    # case and leading space: six spellings, six different id sequences
    case_rows = report["case"].rows
    assert len({tuple(r.explanation.ids) for r in case_rows}) == 6
    for r in case_rows:
        assert r.note == "ids " + " ".join(map(str, tt.encode(r.text)))

    # trailing space ends in a lone space token
    (trailing,) = [r for r in report["trailing"].rows if r.text == "The answer is "]
    assert trailing.explanation.ids[-1] == tt.encode(" ")[0]

    # languages: tokens per character and the ratio to English
    rows = report["languages"].rows
    english = len(tt.encode(rows[0].text))
    assert rows[0].label == "English"
    for r in rows[1:]:
        n = len(tt.encode(r.text))
        assert r.note == (
            f"{n / len(r.text):.2f} tokens/char, {n / english:.2f}× the tokens of English"
        )
    costs = {r.label: len(r.explanation) for r in rows}
    assert costs["Hindi"] > 2 * costs["English"]  # cl100k: the cost of non-English text


def test_artifacts_extra_strings_only_and_names():
    low = tokforge.Tokenizer.from_merges(LOW, pretokenizer="gpt2", name="low")
    report = artifacts([low, low], ["lowly", "lol"], only=["case"], names=["a", "b"])
    assert [r.artifact.key for r in report.results] == ["case", "yours"]
    yours = report["yours"].rows
    assert [(r.tokenizer, r.text) for r in yours] == [
        ("a", "lowly"),
        ("b", "lowly"),
        ("a", "lol"),
        ("b", "lol"),
    ]
    # "lowly" -> [low][l][y]: 5 characters in 3 tokens
    assert yours[0].note == "5 chars, 5 bytes, 1.67 chars/token"
    text = report.to_text()
    assert "Your strings" in text and "[low][l][y]" in text
    data = json.loads(report.to_json())
    assert data["tokenizers"] == ["a", "b"]
    page = report.to_html()
    n_tokens = sum(len(r.explanation) for res in report.results for r in res.rows)
    assert len(re.findall(r'<span class="tok(?: [^"]*)?"', page)) == n_tokens
    with pytest.raises(TokforgeError, match="unknown artifact"):
        artifacts([low], only=["nope"])
    with pytest.raises(TokforgeError, match="one name per tokenizer"):
        artifacts([low], names=["a", "b"])


class _Page(HTMLParser):
    """The page's title, its headings, contents links, section ids and row headers."""

    def __init__(self) -> None:
        super().__init__()
        self.title = ""
        self.h1: list[str] = []
        self.links: list[str] = []
        self.sections: list[str] = []
        self.heads: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag in ("title", "h1"):
            self._in = tag
        elif tag == "a" and a.get("href", "").startswith("#"):
            self.links.append(a["href"][1:])
        elif tag == "section":
            self.sections.append(a.get("id", ""))
        elif "tf-head" in a.get("class", "").split():
            self._in = "head"
            self.heads.append("")

    def handle_data(self, data: str) -> None:
        if self._in == "title":
            self.title += data
        elif self._in == "h1":
            self.h1.append(data)
        elif self._in == "head":
            self.heads[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("title", "h1") or (tag == "div" and self._in == "head"):
            self._in = None


def test_artifacts_page_has_its_styles_once_a_title_contents_and_one_header_per_row():
    low = tokforge.Tokenizer.from_merges(LOW, pretokenizer="gpt2", name="low")
    # "low" is one token, "lol" two: the headers must say "1 token" and "2 tokens"
    report = artifacts([low, low], ["low", "lol"], names=["a", "b"])
    page = report.to_html()
    assert page.count(".tokforge-view .tok {") == 1
    assert page.count("<style>") == 2  # the page's own body margin, and the view's styles
    parsed = _Page()
    parsed.feed(page)
    assert parsed.title == "Tokenization artifacts" and parsed.h1 == ["Tokenization artifacts"]
    assert parsed.links == parsed.sections and len(parsed.sections) == len(report.results)
    rows = [r for res in report.results for r in res.rows]
    assert len(parsed.heads) == len(rows)  # one header per row, not two
    for head, row in zip(parsed.heads, rows, strict=True):
        n = len(row.explanation)
        assert f"{row.tokenizer} · {n} {'token' if n == 1 else 'tokens'}" in head, head
    assert " 1 tokens" not in page and " 1 token ·" in page and " 2 tokens" in page
    assert artifacts([low]).to_html(full_page=False).count(".tokforge-view .tok {") == 1


def test_artifacts_defaults_to_the_local_openai_encodings(shared_env):
    report = artifacts(only=["strawberry"])
    assert report.tokenizer_names == ["cl100k_base", "o200k_base"]
    assert report.to_text().count("cl100k_base") == len(ARTIFACTS[0].texts)


def test_artifacts_text_wraps_long_rows():
    low = tokforge.Tokenizer.from_merges(LOW, pretokenizer="gpt2", name="low")
    text = artifacts([low], only=["languages"]).to_text(width=100)
    # the reason is wrapped; rows too wide for their note put it on the next line
    for line in text.splitlines():
        if "[" not in line:
            assert len(line) <= 100, line
    assert "-> " in text


# ----------------------------------------------------------------------------- inspect CLI


def test_inspect_explain_formats(shared_env, tmp_path, capsys):
    tt = tiktoken_encoding("cl100k_base")
    ids = tt.encode("strawberry")
    assert main(["inspect", "strawberry", "-t", "cl100k", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [t["id"] for t in data["tokens"]] == ids
    assert main(["inspect", "strawberry", "--format", "text"]) == 0  # cl100k is the default
    pieces = _pieces(tt, "strawberry")
    assert capsys.readouterr().out == "".join(f"[{p.decode()}]" for p in pieces) + "\n"
    assert main(["inspect", "123 + 456", "--format", "table"]) == 0
    out = capsys.readouterr().out
    for t in tt.encode("123 + 456"):
        assert re.search(rf"^\d+\s+{t}\s", out, re.M)
    # terminal view: no colour when not a terminal, colour on request
    assert main(["inspect", "strawberry"]) == 0
    plain = capsys.readouterr().out
    assert "\x1b[" not in plain and "cl100k_base: 3 tokens" in plain
    assert main(["inspect", "strawberry", "--color", "always"]) == 0
    assert capsys.readouterr().out.count("\x1b[48;5;") == len(ids)
    page = tmp_path / "x.html"
    assert main(["inspect", "strawberry", "--format", "html", "-o", str(page)]) == 0
    assert len(re.findall(r'<span class="tok(?: [^"]*)?"', page.read_text("utf-8"))) == len(ids)


def test_inspect_reads_stdin_and_files(low_file, tmp_path, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO("low lo"))
    assert main(["inspect", "-t", str(low_file), "--format", "text"]) == 0
    # gpt2 pieces "low", " lo"; no merge joins the space, so " lo" -> [ ][lo]
    assert capsys.readouterr().out == "[low][·][lo]\n"
    f = tmp_path / "in.txt"
    f.write_text("lowlow", encoding="utf-8")
    assert main(["inspect", "-f", str(f), "-t", str(low_file), "--format", "json"]) == 0
    assert [t["id"] for t in json.loads(capsys.readouterr().out)["tokens"]] == [257, 257]


def test_inspect_lineage(shared_env, low_file, capsys):
    tt = tiktoken_encoding("cl100k_base")
    assert main(["inspect", "--lineage", " strawberry", "--tree"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"[·strawberry] {tt.encode_single_token(' strawberry')}"
    leaves = [line for line in out if re.search(r"\[.\] \d+$", line)]
    assert leaves and all(int(line.split()[-1]) < 256 for line in leaves)
    assert main(["inspect", "--lineage", "257", "-t", str(low_file)]) == 0
    assert capsys.readouterr().out == "[l][o] -> [lo] 256\n[lo][w] -> [low] 257\n"
    assert main(["inspect", "--lineage", "123", "--as-text", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["token"] == tt.encode_single_token("123")
    assert main(["inspect", "--lineage", "lowly", "-t", str(low_file)]) == 1
    err = capsys.readouterr().err
    assert (
        err.startswith("tokforge inspect: error: 'lowly' is not a single token")
        and err.count("\n") == 1
    )


def test_inspect_vocabulary_queries(shared_env, low_file, tmp_path, capsys):
    tt = tiktoken_encoding("cl100k_base")
    assert main(["inspect", "--find", "berry", "--format", "json", "--limit", "100"]) == 0
    found = [e["id"] for e in json.loads(capsys.readouterr().out)]
    assert found == sorted(r for b, r in tt._mergeable_ranks.items() if b"berry" in b)
    assert main(["inspect", "--find", "^·?straw", "--regex"]) == 0
    assert "·strawberry" not in capsys.readouterr().out  # "·" is a glyph, not in the token
    assert main(["inspect", "--longest", "2", "-t", str(low_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["257", "low", "3"] and lines[3].split() == ["256", "lo", "2"]
    assert main(["inspect", "--scripts"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^Latin\s+\d+", out, re.M) and "Cyrillic" in out
    assert main(["inspect", "--scripts", "cyrillic", "--limit", "3"]) == 0
    assert "Cyrillic tokens" in capsys.readouterr().out
    assert main(["inspect", "--scripts", "Klingon"]) == 1
    assert "no tokens of script" in capsys.readouterr().err


def test_inspect_unreachable_rare_and_dump(low_file, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    tokforge.Tokenizer.from_merges(UNREACHABLE, pretokenizer="whitespace", name="bad").save(bad)
    assert main(["inspect", "--unreachable", "-t", str(bad)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 of 260 ordinary tokens are unreachable")
    assert re.search(r"^259\s+abcd\s+\[ab\]\[c\]\[d\]\s+yes$", out, re.M)
    assert main(["inspect", "--unreachable", "-t", str(low_file)]) == 0
    assert capsys.readouterr().out.startswith("0 of 258 ordinary tokens")

    assert main(["inspect", "--rare", "2", "-t", str(low_file)]) == 0  # recorded counts 7, 3
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["257", "low", "3"] and lines[3].split() == ["256", "lo", "7"]
    corpus = tmp_path / "c.txt"
    corpus.write_text("low low lo", encoding="utf-8")  # [low][ low][ lo]: low 2, lo 1
    assert main(["inspect", "--rare", "2", "--corpus", str(corpus), "-t", str(low_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "merge count" in lines[0] and "uses in corpus" in lines[0]
    assert lines[2].split() == ["256", "lo", "7", "1"]
    assert lines[3].split() == ["257", "low", "3", "2"]

    dump = tmp_path / "dump.txt"
    assert main(["inspect", "--dump", "-t", str(low_file), "-o", str(dump)]) == 0
    lines = dump.read_text("utf-8").splitlines()
    assert len(lines) == 258 and lines[-2:] == ["[l][o] -> [lo] 256", "[lo][w] -> [low] 257"]
    assert f"wrote {dump}" in capsys.readouterr().err


# ----------------------------------------------------------------------------- artifacts CLI


def test_artifacts_cli(low_file, capsys):
    assert main(["artifacts", "-t", str(low_file), "--only", "strawberry", "lowly"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. Letter counting")
    assert "2. Your strings" in out and "'lowly'" in out and "[low][l][y]" in out
    assert main(["artifacts", "-t", str(low_file), "--only", "case", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [a["key"] for a in data["artifacts"]] == ["case"]
    assert main(["artifacts", "-t", str(low_file), "--only", "nope"]) == 1
    assert capsys.readouterr().err.startswith("tokforge artifacts: error: unknown artifact 'nope'")


def test_artifacts_cli_defaults(shared_env, capsys):
    assert main(["artifacts", "--only", "numbers"]) == 0
    out = capsys.readouterr().out
    assert "cl100k_base" in out and "o200k_base" in out and "digits per token" in out


# ----------------------------------------------------------------------------- compare CLI


def test_compare_cli(shared_env, low_file, capsys):
    tt = tiktoken_encoding("cl100k_base")
    tt2 = tiktoken_encoding("o200k_base")
    text = "How many r's are in strawberry?"
    argv = ["compare", text, "-t", str(low_file), "-t", "cl100k", "-t", "o200k"]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.startswith(("low", "cl100k_base", "o200k_base"))]
    assert [r.split()[1] for r in rows] == [
        str(len(tokforge.Tokenizer.load(low_file).encode(text))),
        str(len(tt.encode(text))),
        str(len(tt2.encode(text))),
    ]
    assert out[-1].startswith("| token boundary")
    # the aligned rows put every character in the same column
    starts = [r.index("|") for r in rows]
    assert len(set(starts)) == 1
    assert main([*argv, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in data["tokenizers"]] == ["low", "cl100k_base", "o200k_base"]
    assert [t["n_tokens"] for t in data["tokenizers"]][1:] == [
        len(tt.encode(text)),
        len(tt2.encode(text)),
    ]


def test_compare_labels_two_files_with_the_same_name(low_file, tmp_path, capsys):
    other = tmp_path / "b"
    other.mkdir()
    twin = other / "low.json"
    twin.write_bytes(low_file.read_bytes())
    assert main(["compare", "low", "-t", str(low_file), "-t", str(twin)]) == 0
    out = capsys.readouterr().out
    assert f"low ({low_file})" in out and f"low ({twin})" in out


# ----------------------------------------------------------------------------- stats CLI


def test_stats_cli_table_and_plot(low_file, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    a = tmp_path / "a.txt"
    a.write_text("low low low\n" * 10, encoding="utf-8")
    b = tmp_path / "b.txt"
    b.write_text("lower lowest\n" * 5, encoding="utf-8")
    png = tmp_path / "s.png"
    assert main(["stats", str(a), str(b), "-t", str(low_file), "--plot", str(png)]) == 0
    out = capsys.readouterr()
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    assert f"wrote {png}" in out.err
    tok = tokforge.Tokenizer.load(low_file)
    n_a = len(tok.encode(a.read_text("utf-8")))
    row = next(line for line in out.out.splitlines() if line.strip().startswith("a.txt"))
    assert row.split()[4] == f"{n_a:,}"
    assert main(["stats", str(a), "-t", str(low_file), "--format", "json"]) == 0
    (data,) = json.loads(capsys.readouterr().out)
    assert data["files"][0]["tokens"] == n_a
    assert main(["stats", str(tmp_path / "missing.txt"), "-t", str(low_file)]) == 1
    assert "missing.txt" in capsys.readouterr().err
