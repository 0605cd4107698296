"""A small OCI distribution 1.1 registry on 127.0.0.1 for tests.

No packaged registry here serves the OCI 1.1 referrers API, so this one follows the
distribution spec closely enough for omsign's client to be tested against it for real:

- ``GET /v2/`` (the API version check);
- manifests ``GET``/``HEAD``/``PUT``/``DELETE`` by tag or digest (a push by digest is
  checked against the bytes; the blobs an image manifest names and the manifests an index
  names must exist; a manifest with a ``subject`` is answered with ``OCI-Subject``);
- blobs ``GET`` (with a single ``Range``) and ``HEAD``; uploads monolithic (``POST
  ?digest=``), chunked (``POST``, ``PATCH`` with ``Content-Range``, ``PUT ?digest=``) and
  cross-repository mounts (``POST ?mount=&from=``), every digest checked;
- ``GET /v2/<name>/tags/list`` with ``n``/``last`` pagination;
- ``GET /v2/<name>/referrers/<digest>`` with the ``artifactType`` filter and the
  ``OCI-Filters-Applied`` header (``referrers=False`` answers 404 as a registry without
  the API does).

Authentication is optional: ``auth="basic"`` (HTTP basic on every request) or
``auth="bearer"`` (a ``WWW-Authenticate: Bearer`` challenge naming the token endpoint
``/token``, which hands out a token for the scope asked for when given the right basic
credentials). ``tls=True`` serves HTTPS with a certificate from a throw-away CA.

Tests reach behind the API through :class:`RegistryState` to make the registry lie
(replace a blob's bytes, serve other bytes for a manifest digest) and to read counters
(bytes of blobs served). Blobs live on disk under the registry's directory, so a large
blob can be a sparse file (:meth:`OciRegistry.seed_blob`).
"""

from __future__ import annotations

import hashlib
import json
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpers.pki import write_loopback_server_cert
from services.oci_handler import INDEX, MANIFEST, RegistryHandler, sha256_digest

__all__ = [
    "INDEX",
    "MANIFEST",
    "PASSWORD",
    "USER",
    "OciRegistry",
    "RegistryState",
    "sha256_digest",
    "start_registry",
]

USER = "omsign"
PASSWORD = "s3cret-registry"


@dataclass
class Repository:
    """One repository: which blobs it holds, its manifests and its tags."""

    blobs: set[str] = field(default_factory=set)
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class RegistryState:
    """Everything the registry stores; tests may read and change it.

    Attributes:
        root: directory of the blob files (``<hex>``) and upload files.
        repos: repository name -> its content.
        blob_sizes: digest -> size of the blob file.
        uploads: upload id -> (repository, file).
        blob_bytes_served: bytes of blob content sent (GET, ranges included).
        manifest_bytes_served: bytes of manifest content sent.
        requests: (method, path) of every request, in order.
    """

    root: Path
    repos: dict[str, Repository] = field(default_factory=dict)
    blob_sizes: dict[str, int] = field(default_factory=dict)
    uploads: dict[str, tuple[str, Path]] = field(default_factory=dict)
    blob_bytes_served: int = 0
    manifest_bytes_served: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def repo(self, name: str) -> Repository:
        """The repository ``name``, created empty on first use."""
        with self.lock:
            return self.repos.setdefault(name, Repository())

    def blob_path(self, digest: str) -> Path:
        """The file holding a blob."""
        return self.root / "blobs" / digest.split(":", 1)[1]

    def add_blob(self, name: str, digest: str, data: bytes | None = None) -> None:
        """Stores a blob's bytes under ``digest`` WITHOUT checking them (tests that lie)."""
        path = self.blob_path(digest)
        if data is not None:
            path.write_bytes(data)
        with self.lock:
            self.blob_sizes[digest] = path.stat().st_size
            self.repo(name).blobs.add(digest)

    def add_manifest(
        self, name: str, digest: str, data: bytes, media_type: str, tag: str | None = None
    ) -> None:
        """Stores a manifest under ``digest`` WITHOUT checking it (tests that lie)."""
        with self.lock:
            repo = self.repo(name)
            repo.manifests[digest] = (data, media_type)
            if tag is not None:
                repo.tags[tag] = digest

    def referrers(self, name: str, digest: str) -> list[dict[str, Any]]:
        """Descriptors of the manifests of ``name`` whose subject is ``digest``."""
        out = []
        with self.lock:
            items = list(self.repo(name).manifests.items())
        for mdigest, (data, media_type) in items:
            try:
                doc = json.loads(data)
            except ValueError:
                continue
            subject = doc.get("subject") if isinstance(doc, dict) else None
            if not isinstance(subject, dict) or subject.get("digest") != digest:
                continue
            desc: dict[str, Any] = {"mediaType": media_type, "digest": mdigest, "size": len(data)}
            config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
            artifact_type = doc.get("artifactType") or config.get("mediaType")
            if artifact_type:
                desc["artifactType"] = artifact_type
            if isinstance(doc.get("annotations"), dict):
                desc["annotations"] = doc["annotations"]
            out.append(desc)
        return sorted(out, key=lambda d: d["digest"])


@dataclass
class OciRegistry:
    """A running registry.

    Attributes:
        host: ``127.0.0.1:PORT`` (what an ``oci://`` reference names).
        url: ``http://`` or ``https://`` base URL.
        state: the stored content (see :class:`RegistryState`).
        auth: None, "basic" or "bearer".
        ca_path: PEM of the CA that issued the TLS certificate (None without TLS).
        referrers_api: whether ``/referrers/`` is served.
    """

    host: str
    url: str
    state: RegistryState
    auth: str | None
    ca_path: Path | None
    referrers_api: bool
    credentials: tuple[str, str] = (USER, PASSWORD)
    tokens: dict[str, set[str]] = field(default_factory=dict)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def ref(self, repo: str, tag_or_digest: str = "") -> str:
        """``oci://HOST/REPO[:TAG|@DIGEST]``."""
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"oci://{self.host}/{repo}" + (sep + tag_or_digest if tag_or_digest else "")

    def seed_blob(self, repo: str, size: int, seed: bytes) -> str:
        """A large, cheap blob: ``seed`` then zeros up to ``size`` bytes in a sparse file.

        Its digest is computed once by reading the file (the zeros cost reading time, not
        disk). Returns the digest.
        """
        tmp = self.state.root / "uploads" / uuid.uuid4().hex
        with tmp.open("wb") as f:
            f.write(seed)
            f.truncate(size)
        h = hashlib.sha256()
        with tmp.open("rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        digest = "sha256:" + h.hexdigest()
        tmp.replace(self.state.blob_path(digest))
        self.state.add_blob(repo, digest)
        return digest

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def _server_context(workdir: Path) -> tuple[ssl.SSLContext, Path]:
    cert_path, key_path, ca_path = write_loopback_server_cert(workdir, "omsign test registry CA")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx, ca_path


def start_registry(
    workdir: Path,
    *,
    auth: str | None = None,
    tls: bool = False,
    referrers: bool = True,
) -> OciRegistry:
    """Starts a registry on a random loopback port.

    Args:
        workdir: an empty directory for blobs, uploads and certificates.
        auth: None (anonymous), "basic" or "bearer"; the credentials are
            :data:`USER` / :data:`PASSWORD`.
        tls: serve HTTPS with a certificate issued by a new CA (``ca_path``).
        referrers: serve the referrers API (False: 404, as registries without it).

    Returns:
        The running registry; call ``stop()`` when done.
    """
    (workdir / "blobs").mkdir(parents=True, exist_ok=True)
    (workdir / "uploads").mkdir(exist_ok=True)
    state = RegistryState(root=workdir)
    handler = type("Handler", (RegistryHandler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    port = server.server_address[1]
    ca_path = None
    if tls:
        ctx, ca_path = _server_context(workdir)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls else "http"
    registry = OciRegistry(
        host=f"127.0.0.1:{port}",
        url=f"{scheme}://127.0.0.1:{port}",
        state=state,
        auth=auth,
        ca_path=ca_path,
        referrers_api=referrers,
    )
    handler.registry = registry
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="oci-registry",
        daemon=True,
    )
    thread.start()
    registry._server, registry._thread = server, thread
    return registry


@pytest.fixture
def oci_registry(tmp_path: Path) -> Iterator[OciRegistry]:
    """An anonymous plain-HTTP registry with the referrers API, for one test."""
    running = start_registry(tmp_path / "oci-registry")
    yield running
    running.stop()


@pytest.fixture
def oci_registry_factory(tmp_path: Path) -> Iterator[Any]:
    """Starts registries with :func:`start_registry`'s options; all stopped after the test."""
    started: list[OciRegistry] = []

    def start(**options: Any) -> OciRegistry:
        running = start_registry(tmp_path / f"oci-registry-{len(started)}", **options)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
