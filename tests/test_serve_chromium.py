"""The playground page driven in a real headless Chromium (Debian's ``chromium``) through the
DevTools protocol, over a small WebSocket client written here with the standard library (no
browser download, no extra package). The test types text, picks tokenizers, checks that the
rendered spans and ids equal tiktoken's ``encode`` for each tokenizer and that neighbouring
tokens differ in colour, clicks a token (and uses the keyboard) to see its lineage, uploads a bad
file and sees the error, and visits the gallery, the vocabulary and the transformer. Any console
message, uncaught exception or failed request fails the test (except the one 400 answer to the
deliberately bad upload). Screenshots go to ``tmp_path``, and to ``docs/img/serve-*.png`` when
``TOKFORGE_WRITE_DOCS=1``.

Without chromium these tests skip, unless ``TOKFORGE_REQUIRE_SHARED=1`` (CI), where they fail.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import queue
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import REPO, require_chromium, require_shared, tiktoken_encoding
from tokforge import Tokenizer
from tokforge.inspect import find_tokens, lineage
from tokforge.serve.api import Playground
from tokforge.serve.server import make_server, serve_in_thread

TEXT = (
    "How many r's are in strawberry?  1234567 + 89 = 1234656\n"
    "def add(a, b):\n"
    "\treturn a + b  # naïve café, Привет!!!!!!!!\n"
    "GPT-4, NASA and ==== ==== <|endoftext|><|endoftext|> €"
)
VIEW = (1400, 1000)


# ------------------------------------------------------------------------- a DevTools client


class DevTools:
    """A minimal client of the Chrome DevTools protocol: one WebSocket (RFC 6455, text frames,
    client-masked), commands answered by id, events kept in :attr:`events`."""

    def __init__(self, ws_url: str, timeout: float = 60.0) -> None:
        u = urlsplit(ws_url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("DevTools closed the connection during the handshake")
            head += chunk
        assert head.split(b"\r\n", 1)[0].split()[1] == b"101", head
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("DevTools closed the connection")
            out += chunk
        return out

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def _message(self) -> dict[str, Any]:
        data = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read(8))
            mask = self._read(4) if b1 & 0x80 else b""
            payload = self._read(n)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            opcode = b0 & 0x0F
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("DevTools closed the WebSocket")
            data += payload
            if b0 & 0x80:
                return json.loads(data)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._send_frame(0x1, json.dumps(message).encode())
        while True:
            reply = self._message()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def close(self) -> None:
        self.sock.close()


class Page:
    """One tab, attached with a flat session."""

    def __init__(self, devtools: DevTools) -> None:
        self.dt = devtools
        target = devtools.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = devtools.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page", "Network", "DOM"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=VIEW[0],
            height=VIEW[1],
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        return self.dt.call(method, self.session, **params)

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited when it is a promise)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 30.0) -> Any:
        """Polls until the expression is truthy; returns its value."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for: {expression}")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        box = self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            "e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            "return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box[0],
                y=box[1],
                button="left",
                clickCount=1,
            )

    def key(self, key: str, code: str, key_code: int) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            self.call(
                "Input.dispatchKeyEvent",
                type=kind,
                key=key,
                code=code,
                windowsVirtualKeyCode=key_code,
            )

    def type_into(self, selector: str, text: str) -> None:
        """Focus a text box, select its content and type ``text`` over it."""
        self.js(f"document.querySelector({json.dumps(selector)}).select()")
        self.call("Input.insertText", text=text)

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return data

    def problems(self, allowed: Any = lambda event: False) -> list[str]:
        """Console messages, uncaught exceptions and failed loads seen so far."""
        out = []
        for e in self.dt.events:
            if e.get("sessionId") != self.session or allowed(e):
                continue
            method, p = e["method"], e.get("params", {})
            if method == "Runtime.consoleAPICalled":
                args = [a.get("value", a.get("description")) for a in p.get("args", [])]
                out.append(f"console.{p.get('type')}: {args}")
            elif method == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails']}")
            elif method == "Log.entryAdded":
                out.append(f"log {p['entry'].get('level')}: {p['entry'].get('text')}")
            elif method == "Network.loadingFailed" and not p.get("canceled"):
                out.append(f"load failed: {p.get('errorText')}")
            elif method == "Network.responseReceived" and p["response"]["status"] >= 400:
                out.append(f"HTTP {p['response']['status']}: {p['response']['url']}")
        return out


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    exe = require_chromium()
    home = tmp_path_factory.mktemp("chromium-home")
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
    }
    proc = subprocess.Popen(
        [
            exe,
            "--headless=new",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--remote-debugging-port=0",
            f"--user-data-dir={home / 'profile'}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True)
    reader.start()
    ws_url = None
    end = time.monotonic() + 60
    while ws_url is None and time.monotonic() < end:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        m = re.search(r"DevTools listening on (ws://\S+)", line)
        if m:
            ws_url = m.group(1)
    if ws_url is None:
        proc.kill()
        pytest.fail("chromium did not start its DevTools endpoint within 60 s")
    devtools = DevTools(ws_url)
    yield devtools
    devtools.close()
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)
    reader.join(timeout=10)
    proc.stderr.close()


@pytest.fixture(scope="module")
def toy_path(tmp_path_factory) -> Path:
    tok = Tokenizer.from_merges(
        [(108, 111), (256, 119), (101, 114)], pretokenizer="gpt2", name="toy"
    )
    path = tmp_path_factory.mktemp("toy") / "toy.json"
    tok.save(path)
    return path


@pytest.fixture(scope="module")
def site(toy_path, tmp_path_factory):
    require_shared("vocabs", "cl100k_base.tiktoken")
    require_shared("vocabs", "o200k_base.tiktoken")
    pg = Playground(
        ["cl100k", "o200k", str(toy_path)], upload_dir=tmp_path_factory.mktemp("uploads")
    )
    server = make_server(pg, port=0)
    serve_in_thread(server)
    yield server
    server.shutdown()
    server.server_close()
    pg.close()


def _expected_glyphs(piece: bytes) -> str:
    text = piece.decode("utf-8", errors="surrogateescape")
    text = "".join(f"<0x{ord(c) - 0xDC00:02X}>" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in text)
    return text.replace(" ", "·").replace("\t", "→").replace("\n", "↵")


def _splits(page: Page) -> dict[str, dict[str, Any]]:
    return page.js(
        """Object.fromEntries([...document.querySelectorAll('.split')].map(s => [s.dataset.key, {
            ids: [...s.querySelectorAll('.tok')].map(t => Number(t.dataset.id)),
            texts: [...s.querySelectorAll('.tok')].map(t => t.textContent),
            colours: [...s.querySelectorAll('.tok')].map(t => getComputedStyle(t).backgroundColor),
            idList: s.querySelector('textarea.ids').value,
            count: s.querySelector('.n-tokens').textContent,
        }]))"""
    )


def _shot(page: Page, tmp_path: Path, name: str, scroll_to: str | None = None) -> None:
    if scroll_to is None:
        page.js("window.scrollTo(0, 0)")
    else:
        page.js(f"document.querySelector({json.dumps(scroll_to)}).scrollIntoView()")
    page.js("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    data = page.screenshot(tmp_path / name)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == VIEW
    if os.environ.get("TOKFORGE_WRITE_DOCS") == "1":
        target = REPO / "docs" / "img" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / name, target)


def test_harness_sees_console_errors_and_failed_requests(chromium, site):
    page = Page(chromium)
    page.call("Page.navigate", url=site.url + "no-such-page")
    page.js("console.error('tokforge-probe'); setTimeout(() => missingFunction(), 0); 1")
    time.sleep(0.5)
    page.js("1")  # read the events that arrived meanwhile
    problems = page.problems()
    assert any("tokforge-probe" in p for p in problems), problems
    assert any("missingFunction" in p for p in problems), problems
    assert any("HTTP 404" in p for p in problems), problems


def test_the_playground_in_a_browser(chromium, site, toy_path, tmp_path):
    page = Page(chromium)
    page.call("Page.navigate", url=site.url)
    page.wait("document.querySelectorAll('.split').length === 3")

    # pick: o200k off, then on again with the keyboard (space on the focused checkbox)
    page.click("#pick-o200k_base")
    page.wait("document.querySelectorAll('.split').length === 2")
    page.js("document.getElementById('pick-o200k_base').focus()")
    page.key(" ", "Space", 32)
    page.wait("document.querySelectorAll('.split').length === 3")

    page.type_into("#text", TEXT)
    toy = Tokenizer.load(toy_path)
    oracles = {
        "cl100k_base": tiktoken_encoding("cl100k_base"),
        "o200k_base": tiktoken_encoding("o200k_base"),
        "file:toy": toy,
    }
    expected = {k: enc.encode(TEXT, allowed_special="all") for k, enc in oracles.items()}
    page.wait(
        "(() => { const s = document.querySelector('.split[data-key=\"cl100k_base\"]');"
        f" return s && s.querySelectorAll('.tok').length === {len(expected['cl100k_base'])}; }})()"
    )
    page.wait("[...document.querySelectorAll('.split')].every(s => s.querySelector('.n-tokens'))")
    splits = _splits(page)
    assert list(splits) == ["cl100k_base", "o200k_base", "file:toy"]
    for key, enc in oracles.items():
        got = splits[key]
        assert got["ids"] == expected[key], key
        assert got["idList"] == ", ".join(map(str, expected[key]))
        assert got["count"] == f"{len(expected[key]):,}"
        specials = set(getattr(enc, "_special_tokens", {}).values())
        for i, text in zip(expected[key], got["texts"], strict=True):
            piece = enc.decode_single_token_bytes(i)
            want = piece.decode() if i in specials else _expected_glyphs(piece)
            assert text.replace("↵\n", "↵") == want, (key, i)
        colours = got["colours"]
        assert all(a != b for a, b in itertools.pairwise(colours)), key
        assert len(set(colours)) > 10
    # the repeated "!!!!" and the two special tokens sit next to tokens of the same id
    cl = splits["cl100k_base"]["ids"]
    assert any(a == b for a, b in itertools.pairwise(cl))

    # click a token: its lineage
    position = expected["cl100k_base"].index(73700)  # " strawberry"
    page.click(f".split[data-key='cl100k_base'] .tok[data-i='{position}']")
    page.wait("document.querySelector('#token-detail .lineage')?.dataset.token === '73700'")
    steps = page.js(
        "[...document.querySelectorAll('#token-detail .steps li')].map(l => l.textContent)"
    )
    assert steps == lineage(oracles_tok(site, "cl100k_base"), 73700).to_text().splitlines()
    _shot(page, tmp_path, "serve-tokens.png")

    # the keyboard: the next token and Enter
    selector = f".split[data-key='cl100k_base'] .tok[data-i='{position}']"
    page.js(f"document.querySelector({json.dumps(selector)}).focus()")
    page.key("ArrowRight", "ArrowRight", 39)
    page.key("Enter", "Enter", 13)
    nxt = expected["cl100k_base"][position + 1]
    page.wait(f"document.querySelector('#token-detail .lineage')?.dataset.token === '{nxt}'")

    # a bad upload: a readable error on the page
    bad = tmp_path / "broken.json"
    bad.write_bytes(b'{"format": "tokforge", "vocab": [1, 2')
    node = page.call(
        "DOM.querySelector",
        nodeId=page.call("DOM.getDocument")["root"]["nodeId"],
        selector="#upload",
    )
    page.call("DOM.setFileInputFiles", files=[str(bad)], nodeId=node["nodeId"])
    error = page.wait("document.getElementById('upload-error').textContent")
    assert error.startswith("broken.json: could not read it as a tokenizer:"), error
    assert "Traceback" not in error and str(tmp_path) not in error

    # a good upload joins the picker and the splits
    good = tmp_path / "mine.json"
    good.write_bytes(toy_path.read_bytes())
    node = page.call(
        "DOM.querySelector",
        nodeId=page.call("DOM.getDocument")["root"]["nodeId"],
        selector="#upload",
    )
    page.call("DOM.setFileInputFiles", files=[str(good)], nodeId=node["nodeId"])
    page.wait("!!document.querySelector('.split[data-key=\"upload:mine\"] .tok')")
    assert _splits(page)["upload:mine"]["ids"] == expected["file:toy"]

    # the gallery, opened from the keyboard (arrow keys move between tabs)
    page.js("document.getElementById('tab-tokens').focus()")
    page.key("ArrowRight", "ArrowRight", 39)
    page.wait("!!document.querySelector('#gallery .artifact[data-key=\"fragments\"]')")
    assert page.js("document.getElementById('panel-tokens').hidden") is True
    keys = page.js("[...document.querySelectorAll('#gallery .artifact')].map(a => a.dataset.key)")
    for key in ("strawberry", "numbers", "acronyms", "case", "fragments", "yours"):
        assert key in keys
    first = page.js(
        "[...document.querySelectorAll('#gallery .artifact[data-key=\"strawberry\"] .art-row')]"
        ".slice(0, 1).map(r => [...r.querySelectorAll('.tok')].map(t => Number(t.dataset.id)))[0]"
    )
    assert first == tiktoken_encoding("cl100k_base").encode("strawberry")
    _shot(page, tmp_path, "serve-artifacts.png", ".tabs")

    # the vocabulary: search, then a lineage
    page.click("#tab-vocab")
    page.js("document.getElementById('vocab-tok').value = 'cl100k_base'")
    page.type_into("#vocab-query", "berry")
    page.click("#vocab-search")
    want = [e.id for e in find_tokens(oracles_tok(site, "cl100k_base"), "berry", limit=200)]
    page.wait(f"document.querySelectorAll('#vocab-results .vocab-entry').length === {len(want)}")
    got = page.js(
        "[...document.querySelectorAll('#vocab-results .vocab-entry')]"
        ".map(b => Number(b.dataset.id))"
    )
    assert got == want
    page.click("#vocab-results .vocab-entry[data-id='73700']")
    page.wait("document.querySelector('#vocab-lineage .lineage')?.dataset.token === '73700'")
    _shot(page, tmp_path, "serve-vocab.png", ".tabs")

    # the transformer: random weights, labelled
    page.click("#tab-model")
    page.js("document.getElementById('model-tok').value = 'cl100k_base'")
    page.type_into("#text", "The cat sat on the mat because it was")
    page.click("#model-run")
    page.wait("document.querySelectorAll('#next-table tbody tr').length === 10")
    assert page.js("document.getElementById('model-weights').textContent").startswith(
        "random weights"
    )
    assert "noise" in page.js("document.getElementById('model-weights').textContent")
    page.js(
        "(() => { const head = document.getElementById('model-head'); head.value = '2';"
        "head.dispatchEvent(new Event('change')); })()"
    )
    info = page.wait("document.getElementById('attention-info').textContent")
    assert info.startswith("Layer 0, head 2")
    _shot(page, tmp_path, "serve-model.png", ".tabs")

    # a 1 MB text (the limit) is split; one byte more is refused with a message
    big = ("How many r's are in strawberry? " * 40_000)[:1_000_000]
    page.click("#tab-tokens")
    page.type_into("#text", big)
    n_big = len(tiktoken_encoding("cl100k_base").encode(big))
    page.wait(
        "document.querySelector('.split[data-key=\"cl100k_base\"] .n-tokens')?.textContent"
        f" === '{n_big:,}'",
        timeout=60,
    )
    shown = page.js("document.querySelectorAll('.split[data-key=\"cl100k_base\"] .tok').length")
    assert shown == 3000  # boxes for the first 3000; the id list has them all
    ids = page.js("document.querySelector('.split[data-key=\"cl100k_base\"] textarea.ids').value")
    assert ids.count(",") + 1 == n_big
    page.call("Input.insertText", text="!")
    message = page.wait("document.getElementById('tokenize-error').textContent")
    assert "1,000,001 bytes" in message and "1 MB" in message

    def expected_bad_upload(event: dict[str, Any]) -> bool:
        p = event.get("params", {})
        url = p.get("response", {}).get("url") or p.get("entry", {}).get("url") or ""
        return url.endswith("/api/upload") and (
            p.get("response", {}).get("status") == 400
            or p.get("entry", {}).get("source") == "network"
        )

    page.js("1")
    assert page.problems(allowed=expected_bad_upload) == []
    # offline: every request the page made went to the playground's own server
    urls = [
        e["params"]["request"]["url"]
        for e in chromium.events
        if e["method"] == "Network.requestWillBeSent" and e.get("sessionId") == page.session
    ]
    assert len(urls) > 10 and any(u.endswith("/app.js") for u in urls)
    assert [u for u in urls if not u.startswith(site.url)] == []


def oracles_tok(site, key: str) -> Tokenizer:
    return site.playground.get(key)
