"""nginx on 127.0.0.1 serving a folder with directory indexes, over HTTP and HTTPS, for tests.

The session fixture ``nginx`` writes a configuration into a temporary directory (pid,
logs and temporary files there, no daemon, one process) and serves one root folder:

- ``http://127.0.0.1:PORT/``: HTML autoindex (``autoindex on``), strong ETags;
- ``/json/``: the same files with nginx's JSON index (``autoindex_format json``);
- ``/noetag/``: the same files without ETags (``etag off``: Last-Modified only);
- ``/noindex/``: the same files with no index (a folder answers 403);
- any file whose name ends with ``.denied`` answers 403 (``deny all``) while listed;
- ``https://127.0.0.1:TLS_PORT/``: the same as ``/``, with a certificate issued by a
  test CA (``ca_path``); the fixture ``https_trust`` names that CA in ``SSL_CERT_FILE``.

Every request is logged (``access_log``) with its Range and If-Match headers.

A folder holding an ``index.html`` (or ``index.txt``, served as
``application/octet-stream``) is served that page instead of the autoindex (nginx's
``index``), which is how a test serves a hostile listing (or no listing).
``nginx-light`` (Debian) is installed by ``make system``; without it the fixture skips,
except under ``CI=true``.
"""

from __future__ import annotations

import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.pki import write_loopback_server_cert
from services._process import free_port, stop, system_binary, wait_until_up

_CONFIG = """\
daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 64; }}
http {{
  log_format requests
    '$request_method $request_uri "$http_range" "$http_if_match" $status $body_bytes_sent';
  access_log {work}/access.log requests;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  default_type application/octet-stream;
  {server}
  server {{
    listen 127.0.0.1:{tls_port} ssl;
    ssl_certificate {work}/server.crt;
    ssl_certificate_key {work}/server.key;
    {locations}
  }}
}}
"""

_SERVER = "server {{ listen 127.0.0.1:{port}; {locations} }}"

_LOCATIONS = """
    root {root};
    index index.html index.txt;
    autoindex on;
    location ~ \\.denied$ {{ deny all; }}
    location /json/ {{ alias {root}/; autoindex on; autoindex_format json; }}
    location /noetag/ {{ alias {root}/; autoindex on; etag off; }}
    location /noindex/ {{ alias {root}/; autoindex off; }}
"""


@dataclass(frozen=True)
class Nginx:
    """A running nginx.

    Attributes:
        root: the folder served.
        url: ``http://127.0.0.1:PORT``.
        tls_url: ``https://127.0.0.1:TLS_PORT``.
        ca_path: PEM of the CA that issued the TLS certificate.
        access_log: one line per request: method, path, Range, If-Match, status, bytes sent.
    """

    root: Path
    url: str
    tls_url: str
    ca_path: Path
    access_log: Path

    def folder(self, files: dict[str, bytes]) -> tuple[Path, str]:
        """Writes ``files`` into a fresh folder of the root: (its path, its URL path ``/NAME/``)."""
        name = f"m-{uuid.uuid4().hex[:10]}"
        folder = self.root / name
        for rel, data in files.items():
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        folder.mkdir(parents=True, exist_ok=True)
        return folder, f"/{name}/"


def _certificate(work: Path) -> Path:
    return write_loopback_server_cert(work, "omsign test web server CA")[2]


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """An nginx serving a fresh root folder over HTTP and HTTPS, shared by the session."""
    binary = system_binary("nginx", "/usr/sbin/nginx", "nginx-light")
    work = tmp_path_factory.mktemp("nginx")
    root = work / "www"
    root.mkdir()
    ca_path = _certificate(work)
    port, tls_port = free_port(), free_port()
    locations = _LOCATIONS.format(root=root)
    (work / "nginx.conf").write_text(
        _CONFIG.format(
            work=work,
            tls_port=tls_port,
            server=_SERVER.format(port=port, locations=locations),
            locations=locations,
        )
    )
    argv = [binary, "-p", str(work), "-e", str(work / "error.log"), "-c", str(work / "nginx.conf")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        urllib.request.urlopen(url + "/", timeout=1).close()
        return True

    try:
        wait_until_up(proc, answers, "nginx")
    except RuntimeError:
        log = work / "error.log"
        raise RuntimeError(
            f"nginx did not start: {log.read_text()[-2000:] if log.exists() else ''}"
        ) from None
    try:
        yield Nginx(root, url, f"https://127.0.0.1:{tls_port}", ca_path, work / "access.log")
    finally:
        stop(proc)


@pytest.fixture
def https_trust(nginx: Nginx, monkeypatch: pytest.MonkeyPatch) -> Nginx:
    """Trusts the test CA for this test (``SSL_CERT_FILE``)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(nginx.ca_path))
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    return nginx
