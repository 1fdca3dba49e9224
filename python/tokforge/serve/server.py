"""The playground's web server: the standard library's ``ThreadingHTTPServer`` on the loopback
address, serving the page (``static/``) and the JSON endpoints of :mod:`.api`.

It listens on 127.0.0.1 only and refuses any other address: the playground reads files and
runs models for whoever can reach it, so it must be reachable from this machine alone. Requests
whose ``Host`` is not the loopback address (DNS rebinding) or whose ``Origin`` is another site
are refused; the page may load nothing from elsewhere (``Content-Security-Policy``). Bodies are
bounded, every request is answered (errors as JSON), and nothing a client sends can stop it.

>>> from tokforge.serve.api import Playground
>>> server = make_server(Playground([], builtins=False), port=0)
>>> server.url.startswith("http://127.0.0.1:")
True
>>> server.server_close()
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from ..errors import TokforgeError
from .api import MAX_UPLOAD_BYTES, Playground, handle

__all__ = ["LOOPBACK", "PlaygroundServer", "make_server", "serve_in_thread"]

log = logging.getLogger("tokforge.serve")

#: The one address the server binds.
LOOPBACK = "127.0.0.1"
#: The largest request body of each endpoint, in bytes: an upload carries base64 (4/3 of the
#: file); the others carry at most a 1 MB text, which JSON may escape to 6 bytes a character.
MAX_BODY = {"upload": MAX_UPLOAD_BYTES * 4 // 3 + 65536}
MAX_BODY_DEFAULT = 8_000_000
#: Seconds a connection may stay silent before it is dropped (a client that opens a
#: connection and sends nothing must not hold a thread forever).
TIMEOUT = 20

#: The page's files: URL path -> (file in static/, content type). Nothing else is served, so
#: no path can reach outside this list.
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
}

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class PlaygroundServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` holding the :class:`~.api.Playground` it serves."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, playground: Playground, port: int) -> None:
        self.playground = playground
        super().__init__((LOOPBACK, port), _Handler)
        self.port = int(self.server_address[1])
        self.allowed_hosts = {f"{LOOPBACK}:{self.port}", f"localhost:{self.port}"}

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT/``."""
        return f"http://{LOOPBACK}:{self.port}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished mid-answer is not the server's problem; log, never print.
        log.debug("request from %s failed", client_address, exc_info=True)


def make_server(playground: Playground, host: str = LOOPBACK, port: int = 0) -> PlaygroundServer:
    """A server for ``playground`` bound to 127.0.0.1 (``host`` may only be ``127.0.0.1`` or
    ``localhost``: any other address is refused) on ``port`` (0: a free one, see
    :attr:`PlaygroundServer.url`). Call ``serve_forever()`` to run it."""
    if host not in (LOOPBACK, "localhost"):
        raise TokforgeError(
            f"tokforge serve listens on {LOOPBACK} only, not {host!r}: the playground reads "
            "files and runs code for whoever reaches it"
        )
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise TokforgeError(f"port must be between 0 and 65535, not {port!r}")
    try:
        return PlaygroundServer(playground, port)
    except OSError as e:
        raise TokforgeError(
            f"cannot listen on {LOOPBACK}:{port}: {e.strerror or e} (try --port 0 for a free one)"
        ) from None


def serve_in_thread(server: PlaygroundServer) -> threading.Thread:
    """Runs ``server.serve_forever()`` in a daemon thread (for tests and notebooks); stop it
    with ``server.shutdown()``."""
    thread = threading.Thread(target=server.serve_forever, name="tokforge-serve", daemon=True)
    thread.start()
    return thread


def _static(name: str) -> bytes:
    return (files("tokforge.serve") / "static" / name).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    server: PlaygroundServer
    server_version = "tokforge-serve"
    sys_version = ""
    timeout = TIMEOUT

    # ------------------------------------------------------------------ plumbing

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, content_type: str, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", _CSP)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any], close: bool = False) -> None:
        try:
            text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            body = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate echoed in a message: escape it
            body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("ascii")
        except ValueError as e:
            status, body = 500, json.dumps({"error": f"unencodable answer: {e}"}).encode()
        self._send(status, body, "application/json; charset=utf-8", close)

    def _error(self, status: int, message: str, close: bool = False) -> None:
        self._json(status, {"error": message}, close)

    def _guard(self) -> bool:
        """Refuses requests for another host name (DNS rebinding) or from another site's page;
        true when the request may go on."""
        host = self.headers.get("Host", "")
        if host not in self.server.allowed_hosts:
            self._error(403, f"this server answers for {self.server.url} only", close=True)
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin.rstrip("/") not in {
            f"http://{h}" for h in self.server.allowed_hosts
        }:
            self._error(403, "requests from other sites are refused", close=True)
            return False
        return True

    def _safely(self, method: Any) -> None:
        try:
            if self._guard():
                method()
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as e:
            log.exception("unexpected error answering %s %s", self.command, self.path)
            try:
                self._error(500, f"internal error: {type(e).__name__}", close=True)
            except OSError:
                self.close_connection = True

    # ------------------------------------------------------------------ methods

    def do_GET(self) -> None:
        self._safely(self._get)

    def do_HEAD(self) -> None:
        self._safely(self._get)

    def do_POST(self) -> None:
        self._safely(self._post)

    def _not_allowed(self) -> None:
        self._safely(lambda: self._error(405, f"{self.command} is not supported here"))

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _get(self) -> None:
        path = urlsplit(self.path).path
        if path in STATIC:
            name, content_type = STATIC[path]
            self._send(200, _static(name), content_type)
        elif path == "/api/tokenizers":
            status, payload = handle(self.server.playground, "tokenizers", {})
            self._json(status, payload)
        elif path.startswith("/api/"):
            self._error(405, f"{path} takes a POST with a JSON body")
        else:
            self._error(404, f"no such page: {path[:200]}")

    def _post(self) -> None:
        path = urlsplit(self.path).path
        if not path.startswith("/api/"):
            self._error(404 if path not in STATIC else 405, f"nothing to POST to at {path[:200]}")
            return
        endpoint = path[len("/api/") :]
        if self.headers.get("Transfer-Encoding"):
            self._error(411, "send the body with a Content-Length", close=True)
            return
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            self._error(411, "a POST needs a Content-Length", close=True)
            return
        try:
            length = int(raw_length)
        except ValueError:
            length = -1
        if length < 0:
            self._error(400, "a bad Content-Length", close=True)
            return
        limit = MAX_BODY.get(endpoint, MAX_BODY_DEFAULT)
        if length > limit:
            self._error(
                413,
                f"the request is {length:,} bytes; {endpoint} takes up to {limit:,}",
                close=True,
            )
            return
        body = self.rfile.read(length)
        if len(body) != length:
            self._error(400, "the body ended early", close=True)
            return
        try:
            request = json.loads(body) if body else {}
        except (ValueError, RecursionError) as e:
            self._error(400, f"the body is not JSON: {str(e)[:200]}")
            return
        status, payload = handle(self.server.playground, endpoint, request)
        self._json(status, payload)
