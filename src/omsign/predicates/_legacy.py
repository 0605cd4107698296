"""The deprecated v0.2 predicate ``https://model_signing/Digests/v0.1``: reading only.

One subject per file with its SHA-256 digest; no serialization settings. v0.2
signatures were made over a malformed PAE (see :func:`omsign.dsse.legacy_pae`):
this is the one predicate for which such a signature is accepted.
"""

from __future__ import annotations

from omsign._json import brief
from omsign.errors import MalformedSignatureError
from omsign.intoto import Statement, malformed
from omsign.manifest import Manifest, ManifestItem, Serialization
from omsign.predicates._common import Predicate, SignedStatement, check_resource_path, hex_digest

__all__ = ["LEGACY_PREDICATE_TYPE", "PREDICATE", "read"]

LEGACY_PREDICATE_TYPE = "https://model_signing/Digests/v0.1"


def read(statement: Statement) -> SignedStatement:
    """Reads the v0.2 layout: one subject per file, SHA-256 digests.

    Raises:
        MalformedSignatureError: no subject, an unsafe or repeated name, a bad digest,
            or another hash algorithm.
    """
    if not statement.subjects:
        raise malformed("statement has no subject")
    items, seen = [], set()
    for i, subject in enumerate(statement.subjects):
        annotations = subject.annotations or {}
        if not isinstance(annotations, dict):
            raise malformed(f"subject[{i}].annotations is not an object")
        algorithm = annotations.get("actual_hash_algorithm", "file-sha256")
        if algorithm != "file-sha256":
            raise MalformedSignatureError(f"unsupported legacy hash algorithm {brief(algorithm)}")
        check_resource_path(subject.name, allow_dot=True)
        if subject.name in seen:
            raise malformed(f"resource name {brief(subject.name)} appears twice")
        seen.add(subject.name)
        digest = hex_digest(subject.digest.get("sha256"), 32, f"subject[{i}]")
        items.append(ManifestItem(subject.name, digest))
    items.sort(key=lambda item: item.name)
    manifest = Manifest(tuple(items), Serialization())
    return SignedStatement(manifest, "", b"", legacy=True, predicate_type=LEGACY_PREDICATE_TYPE)


PREDICATE = Predicate(
    LEGACY_PREDICATE_TYPE, "v0.2 (deprecated Digests/v0.1)", read, legacy_encoding=True
)
