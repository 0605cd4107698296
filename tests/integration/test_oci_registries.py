"""The test registries behave as the distribution spec says (what the OCI tests rely on).

Both the small OCI 1.1 registry of ``tests/services`` and Debian's ``docker-registry``:
uploads checked by digest, manifests by digest, ranges, the referrers API and its filter
on ours and its absence on distribution 2.8, authentication refused without credentials,
and the ModelPack / ORAS push-and-pull helper giving back the same files.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from helpers.fixtures import make_model
from helpers.ocimodel import (
    EMPTY,
    LAYOUTS,
    MANIFEST,
    Layer,
    PlainClient,
    model_files,
    pull_model,
    push_layers,
    push_model,
    sha256_digest,
)
from services.docker_registry import DockerRegistry
from services.oci_registry import PASSWORD, USER, OciRegistry


def _files() -> dict[str, bytes]:
    return {
        "config.json": b'{"hidden_size": 8}\n',
        "model.safetensors": bytes(range(256)) * 40,
        "tokenizer/tokenizer.json": b'{"vocab": {}}\n',
        "README.md": b"# a model\n",
    }


@pytest.mark.parametrize("layout", LAYOUTS)
def test_push_then_pull_gives_the_same_files(
    oci_registry: OciRegistry, tmp_path: Path, layout: str
) -> None:
    model = make_model(tmp_path / "model", _files())
    client = PlainClient(oci_registry.url)
    digest = push_model(client, "acme/bert", model, layout, chunked=layout == "tar")
    assert client.manifest("acme/bert", "v1")[0] == client.manifest("acme/bert", digest)[0]
    names = pull_model(client, "acme/bert", digest, tmp_path / "pulled")
    assert names == sorted(_files())
    assert model_files(tmp_path / "pulled") == model_files(model)


def test_manifest_pushed_by_a_wrong_digest_is_refused(oci_registry: OciRegistry) -> None:
    client = PlainClient(oci_registry.url)
    config = client.push_blob("r", b"{}")
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": MANIFEST,
         "config": {"mediaType": EMPTY, "digest": config, "size": 2}, "layers": []}
    ).encode()  # fmt: skip
    status, _, body = client.request(
        "PUT", f"/v2/r/manifests/{sha256_digest(b'other')}", manifest,
        {"Content-Type": MANIFEST},
    )  # fmt: skip
    assert status == 400
    assert b"DIGEST_INVALID" in body


def test_manifest_naming_a_missing_blob_is_refused(oci_registry: OciRegistry) -> None:
    client = PlainClient(oci_registry.url)
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": MANIFEST,
         "config": {"mediaType": EMPTY, "digest": sha256_digest(b"{}"), "size": 2},
         "layers": []}
    ).encode()  # fmt: skip
    status, _, body = client.request(
        "PUT", "/v2/r/manifests/v1", manifest, {"Content-Type": MANIFEST}
    )
    assert (status, b"MANIFEST_BLOB_UNKNOWN" in body) == (400, True)


def test_blob_upload_with_a_wrong_digest_is_refused(oci_registry: OciRegistry) -> None:
    client = PlainClient(oci_registry.url)
    status, _, body = client.request(
        "POST", f"/v2/r/blobs/uploads/?digest={sha256_digest(b'x')}", b"y",
        {"Content-Type": "application/octet-stream"},
    )  # fmt: skip
    assert (status, b"DIGEST_INVALID" in body) == (400, True)
    assert client.request("HEAD", f"/v2/r/blobs/{sha256_digest(b'x')}")[0] == 404


def test_blob_ranges(oci_registry: OciRegistry) -> None:
    client = PlainClient(oci_registry.url)
    digest = client.push_blob("r", b"0123456789")
    status, headers, body = client.request(
        "GET", f"/v2/r/blobs/{digest}", None, {"Range": "bytes=2-4"}
    )
    assert (status, body, headers["Content-Range"]) == (206, b"234", "bytes 2-4/10")
    assert client.request("GET", f"/v2/r/blobs/{digest}", None, {"Range": "bytes=20-"})[0] == 416
    assert oci_registry.state.blob_bytes_served == 3


def _referrer(client: PlainClient, repo: str, subject: str, artifact_type: str) -> str:
    subject_bytes, media_type = client.manifest(repo, subject)
    digest, _ = push_layers(
        client, repo, [Layer("application/octet-stream", artifact_type.encode(), {})],
        tag=None, artifact_type=artifact_type, config=(EMPTY, b"{}"),
    )  # fmt: skip
    # re-push with a subject (push_layers writes none): the manifest itself, edited
    manifest: dict[str, Any] = json.loads(client.manifest(repo, digest)[0])
    manifest["subject"] = {"mediaType": media_type, "digest": subject, "size": len(subject_bytes)}
    data = json.dumps(manifest).encode()
    status, headers, _ = client.request(
        "PUT", f"/v2/{repo}/manifests/{sha256_digest(data)}", data, {"Content-Type": MANIFEST}
    )
    assert status == 201
    assert headers["OCI-Subject"] == subject
    return sha256_digest(data)


def test_referrers_api_lists_and_filters(oci_registry: OciRegistry, tmp_path: Path) -> None:
    client = PlainClient(oci_registry.url)
    subject = push_model(client, "r", make_model(tmp_path / "m", _files()))
    sig = _referrer(client, "r", subject, "application/vnd.dev.sigstore.bundle.v0.3+json")
    sbom = _referrer(client, "r", subject, "application/spdx+json")
    status, headers, body = client.request("GET", f"/v2/r/referrers/{subject}")
    assert status == 200
    assert {m["digest"] for m in json.loads(body)["manifests"]} == {sig, sbom}
    status, headers, body = client.request(
        "GET", f"/v2/r/referrers/{subject}?artifactType=application/spdx%2Bjson"
    )
    assert [m["digest"] for m in json.loads(body)["manifests"]] == [sbom]
    assert headers["OCI-Filters-Applied"] == "artifactType"


def test_registry_without_referrers_api_answers_404(oci_registry_factory: Any) -> None:
    registry = oci_registry_factory(referrers=False)
    client = PlainClient(registry.url)
    assert client.request("GET", f"/v2/r/referrers/{sha256_digest(b'x')}")[0] == 404


@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_authentication(oci_registry_factory: Any, tmp_path: Path, auth: str) -> None:
    registry = oci_registry_factory(auth=auth)
    anonymous = PlainClient(registry.url)
    assert anonymous.request("GET", "/v2/")[0] == 401
    wrong = PlainClient(registry.url, USER, "wrong")
    with pytest.raises(RuntimeError):
        push_model(wrong, "r", make_model(tmp_path / "m", _files()))
    right = PlainClient(registry.url, USER, PASSWORD)
    digest = push_model(right, "r", make_model(tmp_path / "m", _files()))
    assert right.manifest("r", digest)[0]


def test_tls_with_the_test_ca(oci_registry_factory: Any) -> None:
    registry = oci_registry_factory(tls=True)
    assert registry.url.startswith("https://")
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(registry.url + "/v2/", context=ssl.create_default_context())
    assert PlainClient(registry.url, cafile=registry.ca_path).request("GET", "/v2/")[0] == 200


def test_tags_list_paginates(oci_registry: OciRegistry, tmp_path: Path) -> None:
    client = PlainClient(oci_registry.url)
    model = make_model(tmp_path / "m", _files())
    for tag in ("a", "b", "c"):
        push_model(client, "r", model, tag=tag)
    status, headers, body = client.request("GET", "/v2/r/tags/list?n=2")
    assert (status, json.loads(body)["tags"]) == (200, ["a", "b"])
    assert "last=b" in headers["Link"]


def test_docker_registry_serves_modelpack_and_has_no_referrers_api(
    docker_registry: DockerRegistry, tmp_path: Path
) -> None:
    anonymous = PlainClient(docker_registry.url)
    assert anonymous.request("GET", "/v2/")[0] == 401
    client = PlainClient(docker_registry.url, docker_registry.user, docker_registry.password)
    model = make_model(tmp_path / "m", _files())
    digest = push_model(client, "registries/modelpack", model, "tar+gzip")
    pull_model(client, "registries/modelpack", digest, tmp_path / "pulled")
    assert model_files(tmp_path / "pulled") == model_files(model)
    assert client.request("GET", f"/v2/registries/modelpack/referrers/{digest}")[0] == 404
