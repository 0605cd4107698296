"""OCI registries: references, a checked registry client, and the referrers listing.

:class:`Reference` parses ``[oci://]REGISTRY/REPO[:TAG][@sha256:DIGEST]``;
:class:`Registry` talks to one repository of a registry over the OCI distribution API
(manifests fetched by digest and checked, blobs streamed and checked, range reads, push
of blobs and manifests, referrers with the tag-schema fallback), authenticated from the
Docker configuration. Errors: :class:`RegistryError` (unreachable, refused: exit 2),
:class:`RegistryContentError` (the registry's content is not what was asked: exit 1).
"""

from __future__ import annotations

from omsign.oci._auth import Credentials, find_credentials
from omsign.oci._errors import NotFoundError, RegistryContentError, RegistryError
from omsign.oci._reference import OCI_SCHEME, Reference, check_digest
from omsign.oci._referrers import check_descriptor, fallback_tag
from omsign.oci._registry import (
    INDEX_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPES,
    MAX_MANIFEST,
    BlobStream,
    Registry,
    digest_of,
)

__all__ = [
    "INDEX_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPES",
    "MAX_MANIFEST",
    "OCI_SCHEME",
    "BlobStream",
    "Credentials",
    "NotFoundError",
    "Reference",
    "Registry",
    "RegistryContentError",
    "RegistryError",
    "check_descriptor",
    "check_digest",
    "digest_of",
    "fallback_tag",
    "find_credentials",
]
