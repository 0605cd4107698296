"""The registry client against real registries: Debian's docker-registry (htpasswd basic
auth, no referrers API) and the test OCI 1.1 registry (bearer tokens, TLS, referrers API).

Credentials come from a Docker configuration written for the test, inline or through a
real ``docker-credential-*`` program on ``PATH``.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from omsign.oci import (
    INDEX_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    Registry,
    RegistryError,
    digest_of,
    fallback_tag,
)
from services.docker_registry import DockerRegistry
from services.oci_registry import PASSWORD, USER, OciRegistry

EMPTY = "application/vnd.oci.empty.v1+json"
BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def _docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: object) -> None:
    folder = tmp_path / "docker-config"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps(data))
    monkeypatch.setenv("DOCKER_CONFIG", str(folder))


def _auth(host: str, user: str, password: str) -> dict[str, Any]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"auths": {host: {"auth": pair}}}


def _push_model(registry: Registry, tag: str = "v1") -> tuple[str, bytes]:
    """A one-file model manifest; returns its digest and bytes."""
    data = b"weights" * 1000
    layer = registry.push_blob(data)
    config = registry.push_blob(b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": "application/vnd.cncf.model.manifest.v1+json",
        "config": {"mediaType": EMPTY, "digest": config, "size": 2},
        "layers": [
            {
                "mediaType": "application/vnd.cncf.model.weight.v1.raw",
                "digest": layer,
                "size": len(data),
                "annotations": {"org.cncf.model.filepath": "w.bin"},
            }
        ],
    }
    raw = json.dumps(manifest).encode()
    return registry.push_manifest(raw, MANIFEST_MEDIA_TYPE, tag=tag), raw


def _referrer(registry: Registry, subject: str, size: int, artifact_type: str) -> dict[str, Any]:
    layer = registry.push_blob(b'{"bundle": true}')
    registry.push_blob(b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": digest_of(b"{}"), "size": 2},
        "layers": [{"mediaType": artifact_type, "digest": layer, "size": 16}],
        "subject": {"mediaType": MANIFEST_MEDIA_TYPE, "digest": subject, "size": size},
    }
    raw = json.dumps(manifest).encode()
    digest = registry.push_manifest(raw, MANIFEST_MEDIA_TYPE)
    return {
        "mediaType": MANIFEST_MEDIA_TYPE,
        "digest": digest,
        "size": len(raw),
        "artifactType": artifact_type,
    }


def test_docker_registry_with_docker_config_credentials(
    docker_registry: DockerRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _docker_config(
        tmp_path,
        monkeypatch,
        _auth(docker_registry.host, docker_registry.user, docker_registry.password),
    )
    registry = Registry(f"{docker_registry.host}/client/basic:v1")
    digest, raw = _push_model(registry)
    assert registry.manifest() == (raw, digest, MANIFEST_MEDIA_TYPE)
    # No referrers API: the listing and the additions go through the sha256-<hex> tag index.
    assert registry.referrers(digest) == []
    descriptor = _referrer(registry, digest, len(raw), BUNDLE_TYPE)
    registry.add_referrer_fallback(digest, descriptor)
    registry.add_referrer_fallback(digest, descriptor)  # listed once
    assert registry.referrers(digest) == [descriptor]
    assert registry.referrers(digest, "application/other") == []
    index, _, media_type = registry.manifest(fallback_tag(digest))
    assert media_type == INDEX_MEDIA_TYPE
    assert json.loads(index)["manifests"] == [descriptor]


def test_docker_registry_wrong_or_missing_credentials(
    docker_registry: DockerRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _docker_config(tmp_path, monkeypatch, _auth(docker_registry.host, docker_registry.user, "no"))
    with pytest.raises(RegistryError, match="refused the credentials") as info:
        Registry(f"{docker_registry.host}/client/basic:v1").resolve()
    assert info.value.exit_code == 2
    _docker_config(tmp_path, monkeypatch, {})
    with pytest.raises(RegistryError, match="requires credentials"):
        Registry(f"{docker_registry.host}/client/basic:v1").resolve()


def test_credential_helper_program(
    docker_registry: DockerRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-omsigntest"
    answer = json.dumps({"Username": docker_registry.user, "Secret": docker_registry.password})
    helper.write_text(f"#!/bin/sh\nread host\necho '{answer}'\n")
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    _docker_config(tmp_path, monkeypatch, {"credHelpers": {docker_registry.host: "omsigntest"}})
    registry = Registry(f"{docker_registry.host}/client/helper:v1")
    digest, _ = _push_model(registry)
    assert registry.resolve()[0] == digest


def test_bearer_tokens_and_the_referrers_api(
    oci_registry_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: OciRegistry = oci_registry_factory(auth="bearer")
    _docker_config(tmp_path, monkeypatch, _auth(served.host, USER, PASSWORD))
    registry = Registry(f"{served.host}/client/bearer:v1")
    digest, raw = _push_model(registry)
    bundle = _referrer(registry, digest, len(raw), BUNDLE_TYPE)
    other = _referrer(registry, digest, len(raw), "application/other")
    listed = registry.referrers(digest)
    assert sorted(d["digest"] for d in listed) == sorted([bundle["digest"], other["digest"]])
    assert [d["digest"] for d in registry.referrers(digest, BUNDLE_TYPE)] == [bundle["digest"]]
    assert (
        "GET",
        f"/v2/client/bearer/manifests/{fallback_tag(digest)}",
    ) not in served.state.requests


def test_tls_checked_against_the_named_ca_bundle(
    oci_registry_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: OciRegistry = oci_registry_factory(tls=True)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    with pytest.raises(RegistryError, match=r"TLS failed.*SSL_CERT_FILE"):
        Registry(f"{served.host}/client/tls:v1").resolve()  # never falls back to plain HTTP
    for variable in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        with monkeypatch.context() as env:
            env.setenv(variable, str(served.ca_path))
            registry = Registry(f"{served.host}/client/tls:v1")
            digest, _ = _push_model(registry)
            assert registry.transport.scheme == "https"
            assert registry.resolve()[0] == digest


def test_push_blob_from_a_file_and_a_stream(oci_registry: OciRegistry, tmp_path: Path) -> None:
    import io

    registry = Registry(f"{oci_registry.host}/client/files")
    data = os.urandom(300_000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert registry.push_blob(path) == digest_of(data)
    assert registry.blob(digest_of(data), size=len(data)).read() == data
    other = data[::-1]
    assert registry.push_blob(io.BytesIO(other)) == digest_of(other)
    assert registry.blob_range(digest_of(other), 10, 20) == other[10:20]
    assert registry.has_blob(digest_of(other))
    assert not registry.has_blob(digest_of(b"absent"))
