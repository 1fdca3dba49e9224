"""The HTML view rendered by a real browser: Debian's ``chromium``, headless (tests/run_all.sh
installs it). The page must load without console messages, hold one element per token with
the right id, text and hover data, and be drawn with the tokens' colours; as the browser
resolves the styles, neighbouring tokens never share a background, on the explain page and on
the artifacts page, which carries its styles once. The screenshot goes to ``tmp_path``, and to
``docs/img/explain.png`` when ``TOKFORGE_WRITE_DOCS=1``.

Without chromium these tests skip, unless ``TOKFORGE_REQUIRE_SHARED=1`` (CI), where they fail.
"""

from __future__ import annotations

import itertools
import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import REPO, require_chromium, tiktoken_encoding, tokforge_encoding
from tokforge.inspect.viz import token_rgb

# Whitespace, code, digits, a character cl100k splits into partial bytes, an accent and a
# special token: every kind of glyph the view draws.
DOC_TEXT = (
    "How many r's are in strawberry?\n"
    "def add(a, b):\n"
    "\treturn a + b  # 123 + 456\n"
    "日本語 héllo <|endoftext|>"
)
WINDOW = (900, 300)
SCALE = 2


def _run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs headless chromium with a throw-away profile and home under ``tmp_path``, logging
    the page's console to stderr."""
    home = tmp_path / "chromium-home"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    cmd = [
        require_chromium(),
        "--headless=new",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-dev-shm-usage",
        f"--user-data-dir={home / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, check=False)


def _console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


class _Tokens(HTMLParser):
    """Collects the ``<span class="tok ...">`` elements: attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[dict[str, str]] = []
        self._open: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "span" and "tok" in a.get("class", "").split():
            self._open = {**a, "text": ""}

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._open is not None:
            self.tokens.append(self._open)
            self._open = None


def _expected_glyphs(piece: bytes) -> str:
    """The documented printable form, restated here: glyphs for whitespace, <0xNN> for bytes
    of an incomplete character, and the newline glyph followed by a real line break."""
    try:
        text = piece.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(f"<0x{b:02X}>" for b in piece)
    return text.replace(" ", "·").replace("\t", "→").replace("\n", "↵\n")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    cl = tokforge_encoding("cl100k_base")
    path = tmp_path_factory.mktemp("html") / "explain.html"
    path.write_text(cl.explain(DOC_TEXT).to_html(), encoding="utf-8")
    return path


def test_harness_sees_console_errors(tmp_path):
    """A page that logs an error and throws: the console lines must show up, or the check
    below would pass for the wrong reason."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><script>console.error('tokforge-probe');"
        "missingFunction();</script></body></html>",
        encoding="utf-8",
    )
    result = _run_chromium(tmp_path, "--dump-dom", bad.as_uri())
    lines = _console_lines(result.stderr)
    assert any("tokforge-probe" in line for line in lines), result.stderr[-2000:]
    assert any("missingFunction" in line for line in lines)


def test_page_renders_one_element_per_token_without_console_errors(page, tmp_path):
    tt = tiktoken_encoding("cl100k_base")
    ids = tt.encode(DOC_TEXT, allowed_special="all")
    result = _run_chromium(tmp_path, "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console_lines(result.stderr) == []
    parser = _Tokens()
    parser.feed(result.stdout)
    tokens = parser.tokens
    assert len(tokens) == len(ids)
    assert [int(t["data-id"]) for t in tokens] == ids
    for t, i in zip(tokens, ids, strict=True):
        piece = tt.decode_single_token_bytes(i)
        assert t["text"] == _expected_glyphs(piece)
        assert t["data-bytes"] == piece.hex(" ")
        assert t["data-tip"].startswith(f"id {i} · bytes {piece.hex(' ')}")
    special = [t for t in tokens if int(t["data-id"]) == tt.eot_token]
    assert len(special) == 1 and "special" in special[0]["class"].split()
    partial = [t for t in tokens if "partial" in t["class"].split()]
    assert [t["text"] for t in partial] == ["<0xE8><0xAA>", "<0x9E>"]  # 語 = E8 AA 9E


def test_screenshot(page, tmp_path):
    shot = tmp_path / "explain.png"
    result = _run_chromium(
        tmp_path,
        "--hide-scrollbars",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--force-device-scale-factor={SCALE}",
        f"--screenshot={shot}",
        page.as_uri(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console_lines(result.stderr) == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (WINDOW[0] * SCALE, WINDOW[1] * SCALE)
    image = pytest.importorskip("PIL.Image")
    with image.open(shot) as im:
        colours = {c for _, c in im.convert("RGB").getcolors(maxcolors=1 << 20)}
    tt = tiktoken_encoding("cl100k_base")
    # the backgrounds are painted: " strawberry" and "def" in their own colours
    for token in (" strawberry", "def"):
        assert token_rgb(tt.encode_single_token(token)) in colours, token
    if os.environ.get("TOKFORGE_WRITE_DOCS") == "1":
        target = REPO / "docs" / "img" / "explain.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)


# A script added to a copy of a page (the pages themselves carry none): it records each
# token's computed background, as the browser resolved it, and the number of style sheets
# holding the token rule, into attributes that --dump-dom then shows.
_PROBE = """<script>
window.addEventListener("load", () => {
  for (const el of document.querySelectorAll(".tok")) {
    el.setAttribute("data-bg", getComputedStyle(el).backgroundColor);
  }
  const sheets = [...document.querySelectorAll("style")]
    .filter((s) => s.textContent.includes(".tokforge-view .tok {")).length;
  document.body.setAttribute("data-token-sheets", String(sheets));
});
</script>"""


class _Rows(HTMLParser):
    """The ``data-bg`` of the tokens, grouped by their ``tf-text`` line, and the body's
    ``data-token-sheets``."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.sheets = -1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = a.get("class", "").split()
        if tag == "body":
            self.sheets = int(a.get("data-token-sheets", "-1"))
        elif "tf-text" in classes:
            self.rows.append([])
        elif tag == "span" and "tok" in classes:
            self.rows[-1].append(a["data-bg"])


def _rendered_rows(tmp_path: Path, html_text: str) -> _Rows:
    probed = tmp_path / "probed.html"
    probed.write_text(html_text.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    result = _run_chromium(tmp_path, "--dump-dom", probed.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console_lines(result.stderr) == []
    rows = _Rows()
    rows.feed(result.stdout)
    return rows


def test_adjacent_tokens_differ_in_colour_on_the_rendered_explain_page(tmp_path):
    cl = tokforge_encoding("cl100k_base")
    # the same token many times in a row, the text of the documented page, and a sentence
    # whose neighbours share a terminal colour
    text = DOC_TEXT + " strawberry" * 5 + "\n" + "How many r's are in strawberry? " * 3
    rows = _rendered_rows(tmp_path, cl.explain(text).to_html())
    assert rows.sheets == 1
    (colours,) = rows.rows
    assert len(colours) == len(cl.encode(text, allowed_special="all"))
    assert all(c.startswith("rgb(") for c in colours), colours[:3]
    same = [(i, c) for i, (c, d) in enumerate(itertools.pairwise(colours)) if c == d]
    assert same == []


def test_artifacts_page_carries_its_styles_once_and_neighbours_differ(tmp_path):
    from tokforge.inspect.artifacts import artifacts

    cl = tokforge_encoding("cl100k_base")
    report = artifacts([cl, tokforge_encoding("o200k_base")])
    html_text = report.to_html()
    assert html_text.count(".tokforge-view .tok {") == 1
    rows = _rendered_rows(tmp_path, html_text)
    assert rows.sheets == 1
    assert len(rows.rows) == sum(len(r.rows) for r in report.results)
    for colours in rows.rows:
        assert all(c != d for c, d in itertools.pairwise(colours)), colours
