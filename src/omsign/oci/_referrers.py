"""Referrers listings: the OCI 1.1 referrers API (paged), the tag-schema fallback index,
and the checks every listed descriptor passes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin

from omsign.oci._errors import NotFoundError, RegistryContentError
from omsign.oci._http import finish
from omsign.oci._reference import DIGEST_RE, check_digest

INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"

if TYPE_CHECKING:
    from omsign.oci._registry import Registry

__all__ = [
    "MAX_INDEX",
    "MAX_REFERRERS",
    "check_descriptor",
    "fallback_index",
    "fallback_tag",
    "index_descriptors",
    "next_link",
    "referrers_api",
]

MAX_INDEX = 4 << 20
MAX_REFERRERS = 10_000
_MAX_PAGES = 64
_MAX_ERROR = 1 << 14


def fallback_tag(digest: str) -> str:
    """The tag-schema fallback tag of a manifest digest: ``sha256-<hex>``."""
    return check_digest(digest).replace(":", "-", 1)


def next_link(header: str) -> str | None:
    """The target of ``Link: <url>; rel="next"``, or None."""
    for part in header.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
            return target.strip().strip("<>")
    return None


def index_descriptors(data: bytes, where: str) -> list[dict[str, Any]]:
    """The ``manifests`` of an image index, each a checked descriptor."""
    if len(data) > MAX_INDEX:
        raise RegistryContentError(f"{where}: the index is larger than 4 MiB")
    try:
        index = json.loads(data)
    except ValueError:
        raise RegistryContentError(f"{where}: the index is not JSON") from None
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list):
        raise RegistryContentError(f"{where}: not an image index (no manifests list)")
    return [check_descriptor(d, where) for d in manifests]


def check_descriptor(descriptor: object, where: str) -> dict[str, Any]:
    """Returns ``descriptor`` if it has a media type, a sha256 digest and a size.

    Raises:
        RegistryContentError: it does not.
    """
    if not isinstance(descriptor, dict):
        raise RegistryContentError(f"{where}: a descriptor is not an object")
    media_type = descriptor.get("mediaType")
    digest = descriptor.get("digest")
    size = descriptor.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise RegistryContentError(f"{where}: a descriptor lacks its mediaType or digest")
    if not DIGEST_RE.fullmatch(digest):
        raise RegistryContentError(f"{where}: unsupported descriptor digest {digest[:80]!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RegistryContentError(f"{where}: descriptor {digest} has no valid size")
    return descriptor


def referrers_api(
    registry: Registry, digest: str, artifact_type: str | None
) -> list[dict[str, Any]] | None:
    """The referrers API's listing (every page), or None when the registry has no API."""
    path = f"{registry._repo}/referrers/{digest}"
    if artifact_type:
        path += f"?artifactType={quote(artifact_type, safe='')}"
    out: list[dict[str, Any]] = []
    for page in range(_MAX_PAGES):
        response = registry.transport.request(
            "GET", path, scope=registry._scope(), headers={"Accept": INDEX_MEDIA_TYPE}
        )
        if response.status in (404, 400, 405) and page == 0:
            response.read(_MAX_ERROR)
            finish(response)
            return None
        if response.status != 200:
            raise registry._failed(response, f"{registry._where(digest)} (referrers)")
        data = response.read(MAX_INDEX + 1)
        finish(response)
        out.extend(index_descriptors(data, f"{registry._where(digest)} (referrers)"))
        if len(out) > MAX_REFERRERS:
            raise RegistryContentError(
                f"{registry._where(digest)}: more than {MAX_REFERRERS} referrers"
            )
        link = next_link(response.headers.get("Link", ""))
        if link is None:
            return out
        path = urljoin(registry.transport.base + path, link)
    raise RegistryContentError(f"{registry._where(digest)}: referrers listing has too many pages")


def fallback_index(registry: Registry, digest: str) -> list[dict[str, Any]]:
    """The descriptors of the ``sha256-<hex>`` tag index (none when it does not exist)."""
    tag = fallback_tag(digest)
    try:
        data, _, _ = registry.manifest(tag)
    except NotFoundError:
        return []
    return index_descriptors(data, f"{registry._where(tag)} (referrers index)")
