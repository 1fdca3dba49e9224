"""The playground's server under random and hostile requests: a real ``tokforge.serve`` server
on 127.0.0.1 (port 0) in a thread, sent broken HTTP, bad JSON, bodies over the limit, lies about
lengths, wrong methods, paths that try to leave the static folder, foreign Host and Origin
headers, random bytes, and randomly built JSON for every endpoint. Every answer must be JSON
with a 4xx status (never a 500, never a file from outside the page), and afterwards the server
must still answer correctly. Counts and times are bounded; the random cases are seeded."""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from tokforge import Tokenizer
from tokforge.serve import command
from tokforge.serve import server as server_module
from tokforge.serve.api import Playground
from tokforge.serve.server import make_server, serve_in_thread

SEED = 20261207
ENDPOINTS = ["tokenize", "upload", "artifacts", "vocab", "lineage", "model", "tokenizers"]
# statuses a hostile request may get; 500 is never one of them
CLIENT_ERRORS = {400, 403, 404, 405, 409, 411, 413}


@pytest.fixture(scope="module")
def toy_path(tmp_path_factory) -> Path:
    tok = Tokenizer.from_merges([(108, 111), (256, 119)], pretokenizer="gpt2", name="toy")
    path = tmp_path_factory.mktemp("toy") / "toy.json"
    tok.save(path)
    return path


@pytest.fixture(scope="module")
def site(toy_path, tmp_path_factory):
    pg = Playground([str(toy_path)], builtins=False, upload_dir=tmp_path_factory.mktemp("up"))
    server = make_server(pg, port=0)
    thread = serve_in_thread(server)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
    pg.close()


def _request(site, method: str, path: str, body: bytes | None = None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def _post(site, endpoint: str, payload) -> tuple[int, dict]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, kind, data = _request(
        site, "POST", f"/api/{endpoint}", body, {"Content-Type": "application/json"}
    )
    assert kind.startswith("application/json"), (status, data[:200])
    return status, json.loads(data)


def _raw(site, data: bytes, read: bool = True) -> bytes:
    """Sends raw bytes on a fresh connection and returns whatever comes back."""
    with socket.create_connection(("127.0.0.1", site.port), timeout=30) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        out = b""
        while read:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return out


def _healthy(site, toy_path) -> None:
    status, kind, page = _request(site, "GET", "/")
    assert status == 200 and kind.startswith("text/html") and b"tokforge playground" in page
    status, body = _post(site, "tokenize", {"text": "low lower", "tokenizers": ["file:toy"]})
    assert status == 200
    assert body["results"][0]["ids"] == Tokenizer.load(toy_path).encode("low lower")


def test_the_server_binds_loopback_only():
    pg = Playground([], builtins=False)
    for host in ("0.0.0.0", "::", "192.168.1.1", "example.com", ""):
        with pytest.raises(ValueError, match=r"127\.0\.0\.1 only"):
            make_server(pg, host=host)
    server = make_server(pg, host="localhost", port=0)
    try:
        assert server.server_address[0] == "127.0.0.1"
        assert server.url == f"http://127.0.0.1:{server.port}/"
    finally:
        server.server_close()


def test_static_files_and_their_headers(site):
    for path, kind in (
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ):
        status, got_kind, data = _request(site, "GET", path)
        assert status == 200 and got_kind.startswith(kind) and data
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
    conn.request("GET", "/")
    response = conn.getresponse()
    csp = response.getheader("Content-Security-Policy")
    conn.close()
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp


@pytest.mark.parametrize(
    "path",
    [
        "/../../etc/passwd",
        "/static/../server.py",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2fetc%2fpasswd",
        "//etc/passwd",
        "/app.js/../../api.py",
        "/static/index.html",
        "/api.py",
        "/__init__.py",
        "/index.html%00.py",
        "/" + "a/" * 2000,
    ],
)
def test_no_path_leaves_the_page(site, path):
    status, kind, data = _request(site, "GET", path)
    assert status == 404 and kind.startswith("application/json"), (path, status)
    assert b"import" not in data and b"root:" not in data


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_other_methods_are_refused_as_json(site, method):
    status, _, data = _request(site, method, "/api/tokenize", b"{}")
    assert status == 405 and json.loads(data)["error"]


def test_foreign_host_and_origin_are_refused(site):
    status, _, data = _request(site, "GET", "/", headers={"Host": "evil.example:80"})
    assert status == 403 and b"answers for" in data
    status, _, data = _request(
        site,
        "POST",
        "/api/tokenize",
        b'{"text": "a"}',
        {"Origin": "http://evil.example", "Content-Type": "application/json"},
    )
    assert status == 403 and b"other sites" in data


def test_bodies_and_lengths(site, toy_path):
    status, body = _post(site, "tokenize", b"{not json")
    assert status == 400 and "not JSON" in body["error"]
    status, body = _post(site, "tokenize", b"\xff\xfe\x00garbage")
    assert status == 400
    status, body = _post(site, "tokenize", b"[" * 50_000 + b"]" * 50_000)
    assert status == 400
    status, body = _post(site, "tokenize", b'"a string"')
    assert status == 400 and "JSON object" in body["error"]
    # a length over the limit is refused before anything is read
    head = (
        f"POST /api/tokenize HTTP/1.1\r\nHost: 127.0.0.1:{site.port}\r\n"
        "Content-Length: 1000000000000\r\n\r\n"
    ).encode()
    answer = _raw(site, head)
    assert answer.startswith(b"HTTP/1.0 413") and b"takes up to" in answer
    for length in (b"-5", b"abc", b""):
        answer = _raw(
            site,
            b"POST /api/tokenize HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %s\r\n\r\n"
            % (site.port, length),
        )
        assert answer.startswith(b"HTTP/1.0 400"), answer[:100]
    answer = _raw(site, b"POST /api/tokenize HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % site.port)
    assert answer.startswith(b"HTTP/1.0 411")
    chunked = b"POST /api/tokenize HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % site.port
    answer = _raw(site, chunked + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.0 411")
    # a body shorter than announced (the client gives up)
    answer = _raw(
        site,
        b"POST /api/tokenize HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 100\r\n\r\n{}"
        % site.port,
    )
    assert answer.startswith(b"HTTP/1.0 400") and b"ended early" in answer
    # a body over the limit that is actually sent: refused, and the server goes on
    big = b'{"text": "' + b"a" * (server_module.MAX_BODY_DEFAULT + 10) + b'"}'
    try:
        status, _ = _post(site, "tokenize", big)
        assert status == 413
    except (ConnectionError, http.client.HTTPException):
        pass  # the server may close before the client has sent it all; it must still answer
    # a text over 1 MB inside a body under the limit: the playground's own message
    status, body = _post(site, "tokenize", {"text": "a" * 1_000_001, "tokenizers": ["file:toy"]})
    assert status == 413 and "1 MB" in body["error"]
    _healthy(site, toy_path)


def test_random_bytes_and_broken_http(site, toy_path):
    rng = random.Random(SEED)
    cases = [
        b"",
        b"\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET " + b"/" * 70_000 + b" HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 200 + b"\r\n",
        b"BREW /coffee HTCPCP/1.0\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello
    ]
    cases += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))) for _ in range(40)]
    started = time.monotonic()
    for data in cases:
        _raw(site, data)
    assert time.monotonic() - started < 120
    _healthy(site, toy_path)


def _random_value(rng: random.Random, depth: int = 0):
    choice = rng.randrange(9 if depth < 3 else 6)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, -1, 1, 257, 2**31, 2**64, -(2**70), 100256, 100257])
    if choice == 3:
        return rng.random() * rng.choice([1, 1e300, -1e-300])
    if choice == 4:
        alphabet = "ab lo w\t\n<|end|>日本🍓\ud800\x00.*+?([\\"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
    if choice == 5:
        return rng.choice(["file:toy", "cl100k_base", "search", "longest", "bytes", "all", ""])
    if choice == 6:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    return {rng.choice(KEYS): _random_value(rng, depth + 1) for _ in range(rng.randrange(0, 5))}


KEYS = [
    "text", "tokenizers", "tokenizer", "specials", "strings", "files", "name", "data",
    "pretokenizer", "mode", "query", "regex", "ignore_case", "by", "limit", "token",
]  # fmt: skip


def test_random_json_for_every_endpoint(site, toy_path):
    rng = random.Random(SEED)
    statuses: dict[int, int] = {}
    started = time.monotonic()
    for n in range(400):
        endpoint = rng.choice([*ENDPOINTS, "nope", "../tokenize", ""])
        payload = {k: _random_value(rng) for k in rng.sample(KEYS, rng.randrange(0, 6))}
        if n % 3 == 0:  # aim at each endpoint's real fields, with the toy tokenizer
            payload.update(tokenizer="file:toy", tokenizers=["file:toy"])
        if n % 7 == 0:
            payload = _random_value(rng)
        try:
            body = json.dumps(payload).encode()
        except ValueError:
            continue
        status, kind, data = _request(
            site, "POST", f"/api/{endpoint}", body, {"Content-Type": "application/json"}
        )
        assert kind.startswith("application/json"), (endpoint, payload)
        answer = json.loads(data)
        assert status == 200 or status in CLIENT_ERRORS, (status, endpoint, payload, answer)
        if status != 200:
            assert isinstance(answer["error"], str) and answer["error"]
        statuses[status] = statuses.get(status, 0) + 1
    assert time.monotonic() - started < 300
    assert statuses.get(200, 0) > 0 and statuses.get(400, 0) > 0  # both kinds were reached
    _healthy(site, toy_path)


def test_concurrent_requests_and_a_silent_client(site, toy_path):
    silent = socket.create_connection(("127.0.0.1", site.port), timeout=30)  # sends nothing
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for _ in range(5):
                status, body = _post(
                    site, "tokenize", {"text": f"low {k} lower", "tokenizers": ["file:toy"]}
                )
                assert status == 200 and body["results"][0]["n_tokens"] > 0
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    silent.close()
    assert errors == []
    _healthy(site, toy_path)


def test_command_line_serves_until_interrupted(toy_path):
    parser = argparse.ArgumentParser(prog="tokforge")
    command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["serve", "-t", "cl100k", "-t", str(toy_path), "--port", "0"])
    assert args.tokenizers == ["cl100k", str(toy_path)] and args.func is command.run
    assert args.port == 0 and args.open is False and args.weights is None

    proc = subprocess.Popen(
        [sys.executable, "-m", "tokforge.serve", "-t", str(toy_path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        m = re.match(r"tokforge serve: (http://127\.0\.0\.1:(\d+)/) ", line)
        assert m, line
        conn = http.client.HTTPConnection("127.0.0.1", int(m.group(2)), timeout=30)
        conn.request("GET", "/api/tokenizers")
        listed = json.loads(conn.getresponse().read())
        conn.close()
        assert listed["defaults"] == ["file:toy"]
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped" in out

    bad = subprocess.run(
        [sys.executable, "-m", "tokforge.serve", "-t", "no/such.json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("tokforge serve: error: no/such.json: neither a known encoding")
