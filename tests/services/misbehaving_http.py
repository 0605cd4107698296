"""A small web server on 127.0.0.1 that misbehaves on request, for the checks nginx never fails.

nginx honours ``If-Match`` and answers ranges exactly, so the checks omsign makes of every
answer (the ``ETag`` and ``Content-Range`` of a ``206``, its length, its content coding,
weak or missing validators, redirects) need a server that gets them wrong. This one serves
``files`` under ``/m/`` with an HTML index, and each file's answers follow its entry in
``faults``:

- ``"other-etag"``: ranged GETs answer with another ETag (If-Match ignored);
- ``"wrong-range"``: the Content-Range names other bytes than asked;
- ``"long-body"``: the body holds more bytes than the asked range (Content-Length too);
- ``"gzip"``: the answer says ``Content-Encoding: gzip``;
- ``"weak"``: a weak ETag and no Last-Modified;
- ``"weak-dated"``: a weak ETag and a Last-Modified date;
- ``"redirect"``: every request of the file is redirected to another host;
- ``"gone"``: listed in the index, but every request of the file answers 404;
- ``"redated"``: a new Last-Modified date on every answer, the same strong ETag;
- ``"huge-total"``: the Content-Range's total size is a 5,000-digit number;
- ``"dribble-headers"``: every answer (status line and headers, then body) is sent one
  byte every ``DRIBBLE`` seconds;
- ``"dribble-body"``: ranged GETs send their headers at once, then the body one byte every
  ``DRIBBLE`` seconds. Either way the answer completes, correct, if the client waits.

``raw`` answers a path under ``/m/`` (``""`` is the index) as given: status, headers,
body; a body of ``None`` is 128 MiB sent with no announced length (until the client goes),
counting what was sent in ``sent``; a name in ``slow`` has its raw body dribbled
(``DRIBBLE`` seconds a byte). Any other folder (a path ending with ``/``) has an
empty index; ``pages`` counts the folder pages asked for, the index included.

The fixture ``misbehaving_http`` starts it for one test; ``misbehaving_https`` the same
over TLS, with a certificate from a test CA (``ca_path``).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

_ETAG = '"v1"'
DRIBBLE = 0.05  # seconds between the bytes of a dribbled answer


@dataclass
class Misbehaving:
    """The running server: ``url`` is ``http://127.0.0.1:PORT/m/``; edit ``files`` and
    ``faults`` (name -> fault) while it runs."""

    url: str
    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, str] = field(default_factory=dict)
    raw: dict[str, tuple[int, dict[str, str], bytes | None]] = field(default_factory=dict)
    slow: set[str] = field(default_factory=set)
    answers: int = 0
    pages: int = 0
    sent: int = 0
    done: threading.Event = field(default_factory=threading.Event)
    ca_path: Path | None = None  # the test CA of the TLS server (``misbehaving_https``)


def _handler(state: Misbehaving) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _dribble(self, data: bytes) -> None:
            try:
                for i in range(len(data)):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    time.sleep(DRIBBLE)
            except OSError:
                self.close_connection = True  # the client went

        def _send(self, status: int, headers: dict[str, str], body: bytes, slow: str = "") -> None:
            if self.command == "HEAD":
                body = b""
            if slow == "headers":
                lines = [f"HTTP/1.0 {status} Slow"] + [f"{k}: {v}" for k, v in headers.items()]
                self._dribble("\r\n".join([*lines, "", ""]).encode() + body)
                return
            if slow == "body":
                self._send(status, headers, b"")
                self._dribble(body)
                return
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _index(self) -> None:
            links = "".join(f'<a href="{quote(n)}">{n}</a>\n' for n in sorted(state.files))
            body = f"<html><body>{links}</body></html>".encode()
            self._send(200, {"Content-Type": "text/html", "Content-Length": str(len(body))}, body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def _endless(self, status: int, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            piece = b'<a href="x/">x</a>\n' * 4096
            try:
                while state.sent < 128 << 20:
                    self.wfile.write(piece)
                    state.sent += len(piece)
            except OSError:
                pass
            finally:
                self.close_connection = True
                state.done.set()

        def do_GET(self) -> None:
            name = unquote(self.path.removeprefix("/m/"))
            if self.path.endswith("/"):
                state.pages += 1
            if name in state.raw:
                status, headers, body = state.raw[name]
                if body is None and self.command != "HEAD":
                    self._endless(status, headers)
                else:
                    self._send(status, headers, body or b"", "body" if name in state.slow else "")
                return
            if self.path == "/m/":
                self._index()
                return
            if self.path.endswith("/"):
                empty = b"<html><body></body></html>"
                self._send(200, {"Content-Type": "text/html", "Content-Length": "26"}, empty)
                return
            data = state.files.get(name)
            if data is None:
                self._send(404, {"Content-Length": "0"}, b"")
                return
            fault = state.faults.get(name, "")
            if fault == "gone":
                self._send(404, {"Content-Length": "0"}, b"")
                return
            if fault == "redirect":
                self._send(
                    302, {"Location": "https://elsewhere.example/x", "Content-Length": "0"}, b""
                )
                return
            headers = {"Content-Type": "application/octet-stream"}
            if fault.startswith("weak"):
                headers["ETag"] = 'W/"v1"'
                if fault == "weak-dated":
                    headers["Last-Modified"] = "Sun, 29 Nov 2026 00:00:00 GMT"
            else:
                headers["ETag"] = _ETAG
                headers["Last-Modified"] = "Sun, 29 Nov 2026 00:00:00 GMT"
                if fault == "redated":
                    state.answers += 1
                    headers["Last-Modified"] = (
                        f"Sun, 29 Nov 2026 00:00:{state.answers % 60:02d} GMT"
                    )
            if fault == "gzip":
                headers["Content-Encoding"] = "gzip"
            ranged = self.headers.get("Range", "")
            if self.command == "HEAD" or not ranged.startswith("bytes="):
                headers["Content-Length"] = str(len(data))
                self._send(200, headers, data, "headers" if fault == "dribble-headers" else "")
                return
            first, last = (int(x) for x in ranged.removeprefix("bytes=").split("-"))
            body = data[first : last + 1]
            shown = (first, last)
            if fault == "other-etag":
                headers["ETag"] = '"v2"'
            elif fault == "wrong-range":
                shown = (first + 1, last)
                body = data[first + 1 : last + 1]
            elif fault == "long-body":
                body = data[first : last + 1] + b"more bytes than asked"
            total = "9" * 5000 if fault == "huge-total" else str(len(data))
            headers["Content-Range"] = f"bytes {shown[0]}-{shown[1]}/{total}"
            headers["Content-Length"] = str(len(body))
            slow = fault.removeprefix("dribble-") if fault.startswith("dribble-") else ""
            self._send(206, headers, body, slow)

    return Handler


@pytest.fixture
def misbehaving_http() -> Iterator[Misbehaving]:
    """The server, for one test."""
    yield from _serve(None)


@pytest.fixture
def misbehaving_https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Misbehaving]:
    """The server over TLS (``https://127.0.0.1:PORT/m/``), for one test; its certificate
    is issued by a test CA whose PEM is ``ca_path``."""
    from services.nginx import _certificate

    work = tmp_path_factory.mktemp("misbehaving-tls")
    ca_path = _certificate(work)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(work / "server.crt", work / "server.key")
    for state in _serve(context):
        state.ca_path = ca_path
        yield state


def _serve(context: ssl.SSLContext | None) -> Iterator[Misbehaving]:
    state = Misbehaving("")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    scheme = "http"
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    state.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/m/"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
