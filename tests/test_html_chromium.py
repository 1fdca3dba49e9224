"""The HTML view rendered by a real browser: Debian's ``chromium``, headless (tests/run_all.sh
installs it). The page must load without console messages, hold one element per token with
the right id, text and hover data, and be drawn with the tokens' colours. The screenshot goes
to ``tmp_path``, and to ``docs/img/explain.png`` when ``TOKFORGE_WRITE_DOCS=1``.

Without chromium these tests skip, unless ``TOKFORGE_REQUIRE_SHARED=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import REPO, tiktoken_encoding, tokforge_encoding
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


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        msg = "chromium is not installed (tests/run_all.sh installs Debian's chromium package)"
        if os.environ.get("TOKFORGE_REQUIRE_SHARED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


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
        _chromium(),
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
