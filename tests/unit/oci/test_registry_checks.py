"""The client against a registry that lies, and one that asks for a Bearer token.

A small HTTP server on loopback plays the registry: it serves manifests and blobs that
do not match the digests asked for, and guards its API with a token realm, so each
check runs against real HTTP exchanges.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from omsign.oci import (
    Credentials,
    NotFoundError,
    Registry,
    RegistryContentError,
    RegistryError,
    digest_of,
)

GOOD = b'{"schemaVersion":2}'
GOOD_DIGEST = digest_of(GOOD)
BLOB = b"weights" * 100
BLOB_DIGEST = digest_of(BLOB)


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]] = {}
    token_user: ClassVar[str | None] = None
    seen: ClassVar[list[tuple[str, str, str]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization", "")
        self.seen.append((self.command, self.path, auth))
        if self.path.startswith("/token"):
            expected = base64.b64encode(f"{self.token_user}:pw".encode()).decode()
            if auth != f"Basic {expected}":
                self._reply(401, {}, b"")
                return
            self._reply(200, {}, json.dumps({"token": "tok-123"}).encode())
            return
        if self.token_user is not None and auth != "Bearer tok-123":
            port = self.server.server_address[1]
            challenge = (
                f'Bearer realm="http://127.0.0.1:{port}/token",service="test",'
                'scope="repository:org/model:pull"'
            )
            self._reply(401, {"WWW-Authenticate": challenge}, b'{"errors":[]}')
            return
        path = self.path.split("?")[0]
        self._reply(*self.routes.get(path, (404, {}, b'{"errors":[{"code":"NOT_FOUND"}]}')))

    do_HEAD = do_GET

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        self.seen.append(("POST", self.path, json.dumps(form, sort_keys=True)))
        if form.get("grant_type") == "refresh_token" and form.get("refresh_token") == "rt-1":
            self._reply(200, {}, json.dumps({"access_token": "tok-123"}).encode())
        else:
            self._reply(401, {}, b"")


@pytest.fixture
def server() -> Iterator[str]:
    _Handler.routes = {}
    _Handler.token_user = None
    _Handler.seen = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _manifest_route(digest: str, body: bytes, header_digest: str | None = None) -> None:
    headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
    if header_digest:
        headers["Docker-Content-Digest"] = header_digest
    _Handler.routes[f"/v2/org/model/manifests/{digest}"] = (200, headers, body)


def test_manifest_by_digest_is_checked(server: str) -> None:
    _manifest_route(GOOD_DIGEST, GOOD)
    registry = Registry(f"{server}/org/model@{GOOD_DIGEST}")
    assert registry.manifest() == (GOOD, GOOD_DIGEST, "application/vnd.oci.image.manifest.v1+json")


def test_a_manifest_that_does_not_hash_to_its_digest_is_refused(server: str) -> None:
    _manifest_route(GOOD_DIGEST, b'{"schemaVersion":2,"layers":[]}')
    registry = Registry(f"{server}/org/model@{GOOD_DIGEST}")
    with pytest.raises(RegistryContentError, match="hashes to sha256:"):
        registry.manifest()


def test_a_tag_is_resolved_then_fetched_by_digest(server: str) -> None:
    lie = b'{"schemaVersion":2,"lie":true}'
    _manifest_route("v1", lie, header_digest=GOOD_DIGEST)  # the tag names GOOD_DIGEST ...
    _manifest_route(GOOD_DIGEST, lie)  # ... but the registry serves other bytes for it
    registry = Registry(f"{server}/org/model:v1")
    assert registry.resolve() == (GOOD_DIGEST, "application/vnd.oci.image.manifest.v1+json")
    with pytest.raises(RegistryContentError):
        registry.manifest()


def test_an_oversized_manifest_is_refused(server: str) -> None:
    big = b" " * ((4 << 20) + 1)
    _manifest_route(digest_of(big), big)
    with pytest.raises(RegistryContentError, match="larger than 4 MiB"):
        Registry(f"{server}/org/model@{digest_of(big)}").manifest()


def test_blob_stream_checks_digest_and_size(server: str) -> None:
    _Handler.routes[f"/v2/org/model/blobs/{BLOB_DIGEST}"] = (200, {}, BLOB)
    registry = Registry(f"{server}/org/model")
    assert registry.blob(BLOB_DIGEST, size=len(BLOB)).read() == BLOB
    with pytest.raises(RegistryContentError, match="has 700 bytes, not 701"):
        registry.blob(BLOB_DIGEST, size=len(BLOB) + 1).read()
    other = digest_of(b"other")
    _Handler.routes[f"/v2/org/model/blobs/{other}"] = (200, {}, BLOB)
    with pytest.raises(RegistryContentError, match="does not hash to"):
        registry.blob(other).read()


def test_range_falls_back_to_skipping_when_the_registry_ignores_ranges(server: str) -> None:
    _Handler.routes[f"/v2/org/model/blobs/{BLOB_DIGEST}"] = (200, {}, BLOB)
    assert Registry(f"{server}/org/model").blob_range(BLOB_DIGEST, 3, 10) == BLOB[3:10]


def test_missing_manifest_is_not_found(server: str) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        Registry(f"{server}/org/model@{GOOD_DIGEST}").manifest()


def test_bearer_token_from_the_realm_with_basic_credentials(server: str) -> None:
    _Handler.token_user = "alice"
    _manifest_route(GOOD_DIGEST, GOOD)
    registry = Registry(f"{server}/org/model@{GOOD_DIGEST}", credentials=Credentials("alice", "pw"))
    assert registry.manifest()[1] == GOOD_DIGEST
    assert registry.manifest()[1] == GOOD_DIGEST  # the token is reused
    token_requests = [p for _, p, _ in _Handler.seen if p.startswith("/token")]
    assert token_requests == ["/token?service=test&scope=repository%3Aorg%2Fmodel%3Apull"]


def test_identity_tokens_are_exchanged_for_an_access_token(server: str) -> None:
    _Handler.token_user = "alice"
    _manifest_route(GOOD_DIGEST, GOOD)
    registry = Registry(
        f"{server}/org/model@{GOOD_DIGEST}", credentials=Credentials("<token>", "rt-1")
    )
    assert registry.manifest()[1] == GOOD_DIGEST
    posted = [json.loads(f) for m, p, f in _Handler.seen if m == "POST"]
    assert posted == [
        {
            "client_id": "omsign",
            "grant_type": "refresh_token",
            "refresh_token": "rt-1",
            "scope": "repository:org/model:pull",
            "service": "test",
        }
    ]


def test_wrong_credentials_are_an_environment_error(server: str) -> None:
    _Handler.token_user = "alice"
    registry = Registry(f"{server}/org/model@{GOOD_DIGEST}", credentials=Credentials("eve", "pw"))
    with pytest.raises(RegistryError, match="refused the credentials") as info:
        registry.manifest()
    assert info.value.exit_code == 2


def test_no_credentials_says_to_log_in(server: str, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    _Handler.token_user = "alice"
    with pytest.raises(RegistryError, match=r"requires credentials.*log in"):
        Registry(f"{server}/org/model@{GOOD_DIGEST}").manifest()


def test_an_unreachable_registry_is_one_line(tmp_path: Any) -> None:
    with pytest.raises(RegistryError, match="unreachable") as info:
        Registry("127.0.0.1:9/org/model@" + GOOD_DIGEST).manifest()
    assert "\n" not in str(info.value)


def test_plain_http_is_refused_for_a_remote_host_unless_insecure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OMSIGN_OCI_INSECURE", raising=False)
    assert Registry("registry.example/org/model").transport.scheme == "https"
    assert Registry("registry.example/org/model", insecure=True).transport.scheme == "http"
    monkeypatch.setenv("OMSIGN_OCI_INSECURE", "registry.example,other.example:5000")
    assert Registry("registry.example/org/model").transport.scheme == "http"
    assert Registry("third.example/org/model").transport.scheme == "https"


def test_the_digest_helper() -> None:
    assert digest_of(b"") == "sha256:" + hashlib.sha256(b"").hexdigest()


def _index(*descriptors: object) -> bytes:
    return json.dumps({"schemaVersion": 2, "manifests": list(descriptors)}).encode()


def _descriptor(n: int, artifact_type: str = "a/b") -> dict[str, Any]:
    return {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest_of(str(n).encode()),
        "size": n,
        "artifactType": artifact_type,
    }


def test_referrers_pages_are_followed_and_filtered(server: str) -> None:
    path = f"/v2/org/model/referrers/{GOOD_DIGEST}"
    _Handler.routes[path] = (200, {"Link": f'<{path}?last=1>; rel="next"'}, _index(_descriptor(1)))
    first = _Handler.routes[path]
    # The second page: the server's route table has one entry per path, so the next
    # link names a path the handler strips to the same route; serve page two after one.

    class Pages:
        served = 0

    original = _Handler.do_GET

    def paged(handler: _Handler) -> None:
        if handler.path.startswith(path):
            Pages.served += 1
            if Pages.served > 1:
                handler._reply(200, {}, _index(_descriptor(2, "c/d")))
                return
            handler._reply(*first)
            return
        original(handler)

    _Handler.do_GET = paged  # type: ignore[method-assign]
    try:
        registry = Registry(f"{server}/org/model")
        assert [d["size"] for d in registry.referrers(GOOD_DIGEST)] == [1, 2]
        Pages.served = 0
        assert [d["size"] for d in registry.referrers(GOOD_DIGEST, "c/d")] == [2]
    finally:
        _Handler.do_GET = original  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "not JSON"),
        (b"{}", "not an image index"),
        (_index("x"), "not an object"),
        (_index({"digest": GOOD_DIGEST, "size": 1}), "lacks its mediaType"),
        (_index({**_descriptor(1), "digest": "md5:00"}), "unsupported descriptor digest"),
        (_index({**_descriptor(1), "size": -1}), "no valid size"),
        (_index({**_descriptor(1), "size": True}), "no valid size"),
    ],
)
def test_malformed_referrers_listings_are_refused(server: str, body: bytes, problem: str) -> None:
    _Handler.routes[f"/v2/org/model/referrers/{GOOD_DIGEST}"] = (200, {}, body)
    with pytest.raises(RegistryContentError, match=problem):
        Registry(f"{server}/org/model").referrers(GOOD_DIGEST)


def test_without_the_api_the_tag_index_is_read(server: str) -> None:
    tag = "sha256-" + GOOD_DIGEST.split(":", 1)[1]
    index = _index(_descriptor(3))
    _manifest_route(tag, index, header_digest=digest_of(index))
    _manifest_route(digest_of(index), index)
    assert Registry(f"{server}/org/model").referrers(GOOD_DIGEST) == [_descriptor(3)]
