"""Referrers listings: image indexes of descriptors, and the tag-schema fallback's tag."""

from __future__ import annotations

import json
from typing import Any

from omsign.oci._errors import RegistryContentError
from omsign.oci._reference import DIGEST_RE, check_digest

__all__ = ["MAX_INDEX", "check_descriptor", "fallback_tag", "index_descriptors", "next_link"]

MAX_INDEX = 4 << 20


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
