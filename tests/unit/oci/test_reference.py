"""OCI references: the distribution grammar, Docker Hub names, and what is refused."""

from __future__ import annotations

import pytest

from omsign.errors import UsageError
from omsign.oci import Reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("oci://ghcr.io/org/models/llama:v1", "ghcr.io", "org/models/llama", "v1", None),
        ("127.0.0.1:5000/m@" + DIGEST, "127.0.0.1:5000", "m", None, DIGEST),
        ("localhost/a/b:t@" + DIGEST, "localhost", "a/b", "t", DIGEST),
        ("registry.example:443/a-b/c__d.e", "registry.example:443", "a-b/c__d.e", None, None),
        ("[::1]:5000/model:latest", "[::1]:5000", "model", "latest", None),
        ("ubuntu", "docker.io", "library/ubuntu", None, None),
        ("org/model:v2", "docker.io", "org/model", "v2", None),
    ],
)
def test_parses_references(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


def test_name_reference_and_text() -> None:
    ref = Reference.parse("oci://ghcr.io/org/llama:v1")
    assert ref.name == "llama"
    assert ref.reference == "v1"
    pinned = ref.with_digest(DIGEST)
    assert pinned.reference == DIGEST
    assert str(pinned) == f"ghcr.io/org/llama:v1@{DIGEST}"
    assert pinned.url() == f"oci://ghcr.io/org/llama:v1@{DIGEST}"
    assert Reference.parse("ghcr.io/org/llama").reference == "latest"


@pytest.mark.parametrize(
    "text",
    [
        "ghcr.io/Org/model",  # upper case in the repository
        "ghcr.io/org/../model",
        "ghcr.io//model",
        "ghcr.io/org/model:-bad",
        "ghcr.io/org/model:" + "t" * 129,
        "ghcr.io/org/model@sha256:abc",
        "ghcr.io/org/model@sha512:" + "ab" * 64,
        "ghcr.io/org/model@" + DIGEST.upper(),
        "oci://",
        "ghcr.io/",
        "bad host!/model",
        "x" * 5000,
    ],
)
def test_refuses_malformed_references(text: str) -> None:
    with pytest.raises(UsageError):
        Reference.parse(text)
