"""The HTTP side of the test OCI registry: routes, status codes and headers.

One request handler class speaks the OCI distribution 1.1 API over the state kept by
:mod:`services.oci_registry` (see that module for what is served). Errors are answered
with the spec's JSON error body and codes (``MANIFEST_UNKNOWN``, ``DIGEST_INVALID``...).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import uuid
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from services.oci_registry import OciRegistry

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_MANIFEST_TYPES = {MANIFEST, INDEX, DOCKER_MANIFEST, DOCKER_LIST}
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_NAME = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_ROUTES = [
    ("manifest", re.compile(rf"^/v2/(?P<name>{_NAME})/manifests/(?P<ref>[^/]+)$")),
    ("blob", re.compile(rf"^/v2/(?P<name>{_NAME})/blobs/(?P<ref>sha256:[^/]+)$")),
    ("uploads", re.compile(rf"^/v2/(?P<name>{_NAME})/blobs/uploads/$")),
    ("upload", re.compile(rf"^/v2/(?P<name>{_NAME})/blobs/uploads/(?P<ref>[0-9a-f-]+)$")),
    ("tags", re.compile(rf"^/v2/(?P<name>{_NAME})/tags/list$")),
    ("referrers", re.compile(rf"^/v2/(?P<name>{_NAME})/referrers/(?P<ref>[^/]+)$")),
]


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RegistryError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):
        start, end = max(0, size - int(m.group(2))), size - 1
    else:
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    return (start, end) if start <= end and start < size else None


class RegistryHandler(BaseHTTPRequestHandler):
    registry: OciRegistry
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out at once: no delayed-ACK stalls

    # -- plumbing ------------------------------------------------------------------------
    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        head: bool = False,
        length: int | None = None,
    ) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _error(self, exc: RegistryError) -> None:
        body = json.dumps({"errors": [{"code": exc.code, "message": exc.message}]}).encode()
        headers = {"Content-Type": "application/json"}
        if exc.status == 401:
            headers["WWW-Authenticate"] = self._challenge()
        self._send(exc.status, body, headers, head=self.command == "HEAD")

    def _scope(self) -> str:
        path = urlsplit(self.path).path
        for _, pattern in _ROUTES:
            m = pattern.match(path)
            if m:
                write = self.command in ("PUT", "POST", "PATCH", "DELETE")
                return f"repository:{m.group('name')}:{'pull,push' if write else 'pull'}"
        return ""

    def _challenge(self) -> str:
        reg = self.registry
        if reg.auth == "basic":
            return 'Basic realm="omsign-test"'
        scope = self._scope()
        challenge = f'Bearer realm="{reg.url}/token",service="omsign-test"'
        return challenge + (f',scope="{scope}"' if scope else "")

    def _basic_ok(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == self.registry.credentials

    def _authorize(self) -> None:
        reg = self.registry
        header = self.headers.get("Authorization", "")
        if reg.auth is None:
            return
        if reg.auth == "basic":
            if not self._basic_ok(header):
                raise RegistryError(401, "UNAUTHORIZED", "authentication required")
            return
        granted = reg.tokens.get(header[7:]) if header.startswith("Bearer ") else None
        if granted is None:
            raise RegistryError(401, "UNAUTHORIZED", "authentication required")
        scope = self._scope()
        if scope:
            _, name, actions = scope.split(":")
            if any(f"repository:{name}:{a}" not in granted for a in actions.split(",")):
                raise RegistryError(401, "UNAUTHORIZED", "token does not cover this scope")

    def _token(self, query: dict[str, list[str]]) -> None:
        if not self._basic_ok(self.headers.get("Authorization", "")):
            raise RegistryError(401, "UNAUTHORIZED", "bad credentials for the token service")
        granted: set[str] = set()
        for scope in query.get("scope", []):
            for one in scope.split(" "):
                parts = one.split(":")
                if len(parts) == 3 and parts[0] == "repository":
                    granted |= {f"repository:{parts[1]}:{a}" for a in parts[2].split(",")}
        token = secrets.token_urlsafe(24)
        self.registry.tokens[token] = granted
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode()
        self._send(200, body, {"Content-Type": "application/json"})

    def _dispatch(self) -> None:
        state = self.registry.state
        parts = urlsplit(self.path)
        with state.lock:
            state.requests.append((self.command, parts.path))
        query = parse_qs(parts.query)
        try:
            if parts.path == "/token" and self.command == "GET":
                self._token(query)
                return
            self._authorize()
            if parts.path in ("/v2/", "/v2"):
                self._send(
                    200,
                    b"{}",
                    {"Content-Type": "application/json",
                     "Docker-Distribution-API-Version": "registry/2.0"},
                    head=self.command == "HEAD",
                )  # fmt: skip
                return
            for route, pattern in _ROUTES:
                m = pattern.match(parts.path)
                if m:
                    handler = getattr(self, f"_{route}_{self.command.lower()}", None)
                    if handler is None:
                        raise RegistryError(405, "UNSUPPORTED", f"{self.command} not allowed here")
                    handler(m.group("name"), m.groupdict().get("ref"), query)
                    return
            raise RegistryError(404, "NAME_UNKNOWN", "no such route")
        except RegistryError as exc:
            self._error(exc)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _dispatch

    # -- manifests -----------------------------------------------------------------------
    def _lookup_manifest(self, name: str, ref: str) -> tuple[str, bytes, str]:
        state = self.registry.state
        with state.lock:
            repo = state.repos.get(name)
            digest = ref if ref.startswith("sha256:") else (repo.tags.get(ref) if repo else None)
            if repo is None or digest is None or digest not in repo.manifests:
                raise RegistryError(404, "MANIFEST_UNKNOWN", f"manifest {ref} unknown")
            data, media_type = repo.manifests[digest]
        return digest, data, media_type

    def _manifest_get(self, name: str, ref: str, query: object) -> None:
        digest, data, media_type = self._lookup_manifest(name, ref)
        head = self.command == "HEAD"
        if not head:
            with self.registry.state.lock:
                self.registry.state.manifest_bytes_served += len(data)
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest}
        self._send(200, data, headers, head=head)

    _manifest_head = _manifest_get

    def _manifest_put(self, name: str, ref: str, query: object) -> None:
        state = self.registry.state
        data = self._body()
        media_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in _MANIFEST_TYPES:
            raise RegistryError(
                400, "MANIFEST_INVALID", f"unsupported manifest type {media_type!r}"
            )
        try:
            doc = json.loads(data)
        except ValueError:
            raise RegistryError(400, "MANIFEST_INVALID", "manifest is not JSON") from None
        if not isinstance(doc, dict) or doc.get("schemaVersion") != 2:
            raise RegistryError(400, "MANIFEST_INVALID", "schemaVersion must be 2")
        if doc.get("mediaType") not in (None, media_type):
            raise RegistryError(400, "MANIFEST_INVALID", "mediaType differs from Content-Type")
        digest = sha256_digest(data)
        if ref.startswith("sha256:") and ref != digest:
            raise RegistryError(400, "DIGEST_INVALID", f"manifest digest is {digest}, not {ref}")
        if not ref.startswith("sha256:") and not _TAG.match(ref):
            raise RegistryError(400, "TAG_INVALID", f"bad tag {ref!r}")
        repo = state.repo(name)
        if media_type in (INDEX, DOCKER_LIST):
            needed = [(d.get("digest"), repo.manifests) for d in doc.get("manifests", [])]
        else:
            descs = [doc.get("config"), *doc.get("layers", [])]
            needed = [(d.get("digest") if isinstance(d, dict) else None, repo.blobs) for d in descs]
        for needed_digest, where in needed:
            if needed_digest not in where:
                raise RegistryError(400, "MANIFEST_BLOB_UNKNOWN", f"{needed_digest} unknown")
        state.add_manifest(
            name, digest, data, media_type, None if ref.startswith("sha256:") else ref
        )
        headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest}
        subject = doc.get("subject")
        if isinstance(subject, dict) and self.registry.referrers_api:
            headers["OCI-Subject"] = str(subject.get("digest"))
        self._send(201, b"", headers)

    def _manifest_delete(self, name: str, ref: str, query: object) -> None:
        state = self.registry.state
        with state.lock:
            repo = state.repo(name)
            if ref.startswith("sha256:"):
                if repo.manifests.pop(ref, None) is None:
                    raise RegistryError(404, "MANIFEST_UNKNOWN", f"manifest {ref} unknown")
                repo.tags = {t: d for t, d in repo.tags.items() if d != ref}
            elif repo.tags.pop(ref, None) is None:
                raise RegistryError(404, "MANIFEST_UNKNOWN", f"tag {ref} unknown")
        self._send(202)

    # -- blobs ---------------------------------------------------------------------------
    def _blob_get(self, name: str, ref: str, query: object) -> None:
        state = self.registry.state
        with state.lock:
            known = ref in state.repo(name).blobs
            size = state.blob_sizes.get(ref, 0)
        if not known:
            raise RegistryError(404, "BLOB_UNKNOWN", f"blob {ref} unknown")
        head = self.command == "HEAD"
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": ref,
                   "Accept-Ranges": "bytes"}  # fmt: skip
        start, end, status = 0, size - 1, 200
        if self.headers.get("Range") and not head:
            rng = _parse_range(self.headers["Range"], size)
            if rng is None:
                headers["Content-Range"] = f"bytes */{size}"
                self._send(416, b"", headers)
                return
            start, end = rng
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = end - start + 1
        self._send(status, b"", headers, head=True, length=length)
        if head:
            return
        with state.blob_path(ref).open("rb") as f:
            f.seek(start)
            left = length
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)
        with state.lock:
            state.blob_bytes_served += length - left

    _blob_head = _blob_get

    def _uploads_post(self, name: str, ref: object, query: dict[str, list[str]]) -> None:
        state = self.registry.state
        mount, source = query.get("mount", [""])[0], query.get("from", [""])[0]
        if mount and source and mount in state.repo(source).blobs:
            state.add_blob(name, mount)
            self._send(201, b"", {"Location": f"/v2/{name}/blobs/{mount}",
                                  "Docker-Content-Digest": mount})  # fmt: skip
            return
        upload = str(uuid.uuid4())
        path = state.root / "uploads" / upload
        path.write_bytes(b"")
        with state.lock:
            state.uploads[upload] = (name, path)
        if "digest" in query:
            self._upload_put(name, upload, query)
            return
        body = self._body()
        if body:
            raise RegistryError(400, "BLOB_UPLOAD_INVALID", "a POST with a body needs ?digest=")
        self._send(202, b"", {"Location": f"/v2/{name}/blobs/uploads/{upload}",
                              "Range": "0-0", "Docker-Upload-UUID": upload})  # fmt: skip

    def _upload_file(self, name: str, upload: str) -> Path:
        with self.registry.state.lock:
            owner, path = self.registry.state.uploads.get(upload, ("", Path()))
        if owner != name:
            raise RegistryError(404, "BLOB_UPLOAD_UNKNOWN", f"upload {upload} unknown")
        return path

    def _upload_patch(self, name: str, upload: str, query: object) -> None:
        path = self._upload_file(name, upload)
        body = self._body()
        offset = path.stat().st_size
        content_range = self.headers.get("Content-Range")
        if content_range:
            m = re.fullmatch(r"(\d+)-(\d+)", content_range.strip())
            if not m or int(m.group(1)) != offset or int(m.group(2)) != offset + len(body) - 1:
                self._send(416, b"", {"Location": f"/v2/{name}/blobs/uploads/{upload}",
                                      "Range": f"0-{max(offset - 1, 0)}"})  # fmt: skip
                return
        with path.open("ab") as f:
            f.write(body)
        end = offset + len(body) - 1
        location = f"/v2/{name}/blobs/uploads/{upload}"
        headers = {"Location": location, "Range": f"0-{max(end, 0)}"}
        self._send(202, b"", headers | {"Docker-Upload-UUID": upload})

    def _upload_get(self, name: str, upload: str, query: object) -> None:
        size = self._upload_file(name, upload).stat().st_size
        self._send(204, b"", {"Location": f"/v2/{name}/blobs/uploads/{upload}",
                              "Range": f"0-{max(size - 1, 0)}"})  # fmt: skip

    def _upload_put(self, name: str, upload: str, query: dict[str, list[str]]) -> None:
        state = self.registry.state
        path = self._upload_file(name, upload)
        digest = query.get("digest", [""])[0]
        if not _DIGEST.match(digest):
            raise RegistryError(400, "DIGEST_INVALID", f"bad or missing digest {digest!r}")
        body = self._body()
        if body:
            with path.open("ab") as f:
                f.write(body)
        h = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        with state.lock:
            state.uploads.pop(upload, None)
        if "sha256:" + h.hexdigest() != digest:
            path.unlink()
            raise RegistryError(400, "DIGEST_INVALID", f"content does not match {digest}")
        path.replace(state.blob_path(digest))
        state.add_blob(name, digest)
        self._send(201, b"", {"Location": f"/v2/{name}/blobs/{digest}",
                              "Docker-Content-Digest": digest})  # fmt: skip

    def _upload_delete(self, name: str, upload: str, query: object) -> None:
        path = self._upload_file(name, upload)
        with self.registry.state.lock:
            self.registry.state.uploads.pop(upload, None)
        path.unlink(missing_ok=True)
        self._send(204)

    # -- listings ------------------------------------------------------------------------
    def _tags_get(self, name: str, ref: object, query: dict[str, list[str]]) -> None:
        state = self.registry.state
        with state.lock:
            if name not in state.repos:
                raise RegistryError(404, "NAME_UNKNOWN", f"repository {name} unknown")
            tags = sorted(state.repos[name].tags)
        last = query.get("last", [""])[0]
        if last:
            tags = [t for t in tags if t > last]
        headers = {"Content-Type": "application/json"}
        if "n" in query:
            n = int(query["n"][0])
            if len(tags) > n:
                headers["Link"] = f'</v2/{name}/tags/list?n={n}&last={tags[n - 1]}>; rel="next"'
            tags = tags[:n]
        self._send(200, json.dumps({"name": name, "tags": tags}).encode(), headers)

    def _referrers_get(self, name: str, ref: str, query: dict[str, list[str]]) -> None:
        if not self.registry.referrers_api:
            raise RegistryError(404, "UNSUPPORTED", "referrers API not served")
        if not _DIGEST.match(ref):
            raise RegistryError(400, "DIGEST_INVALID", f"bad digest {ref!r}")
        manifests = self.registry.state.referrers(name, ref)
        headers = {"Content-Type": INDEX}
        wanted = query.get("artifactType", [])
        if wanted:
            manifests = [m for m in manifests if m.get("artifactType") in wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        body = {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}
        self._send(200, json.dumps(body).encode(), headers)
