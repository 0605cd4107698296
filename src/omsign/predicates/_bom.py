"""A CycloneDX 1.6 machine-learning bill of materials of a model.

The predicate is the CycloneDX document itself; the model is its
``metadata.component`` (type ``machine-learning-model``) and each signed file a
``file`` component whose hash (``SHA-256``, ``BLAKE2b-512`` or ``BLAKE3``, as the
model was hashed) is the OMS resource digest; in ``shards`` mode one component per
shard, its byte range in the property ``omsign:shard``. The model component's SHA-256
is the OMS root digest (also the statement's subject).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from omsign.errors import UsageError
from omsign.intoto import get_field
from omsign.manifest import Manifest, ManifestItem, split_shard_name
from omsign.predicates._common import AttestationKind, parse_time

__all__ = ["KIND", "PREDICATE_TYPE", "build_bom"]

PREDICATE_TYPE = "https://cyclonedx.org/bom"


def _check(predicate: dict[str, Any]) -> None:
    if predicate.get("bomFormat") != "CycloneDX":
        from omsign.intoto import malformed

        raise malformed("predicate.bomFormat is not 'CycloneDX'")
    get_field(predicate, "specVersion", str, "predicate")


def _claimed(predicate: dict[str, Any]) -> Any:
    metadata = predicate.get("metadata")
    if not isinstance(metadata, dict):
        return None
    return parse_time(metadata.get("timestamp"), "predicate.metadata.timestamp")


KIND = AttestationKind("bom", PREDICATE_TYPE, "CycloneDX bill of materials", _check, _claimed)


# OMS hash names -> CycloneDX ``hash-alg`` values (OMS BLAKE2b digests are 64 bytes).
_ALGORITHMS = {
    "sha256": "SHA-256",
    "blake2b": "BLAKE2b-512",
    "blake2": "BLAKE2b-512",
    "blake3": "BLAKE3",
}


def _file_component(item: ManifestItem, algorithm: str, sharded: bool) -> dict[str, Any]:
    path, start, end = split_shard_name(item.name) if sharded else (item.name, 0, 0)
    component: dict[str, Any] = {
        "type": "file",
        "bom-ref": f"file:{item.name}",
        "name": path,
        "hashes": [{"alg": algorithm, "content": item.digest.hex()}],
    }
    if sharded:
        component["properties"] = [{"name": "omsign:shard", "value": f"{start}:{end}"}]
    return component


def build_bom(
    name: str,
    root_digest: str,
    manifest: Manifest,
    *,
    tool_version: str,
    timestamp: dt.datetime,
) -> dict[str, Any]:
    """A CycloneDX 1.6 ML-BOM of a model whose file hashes are its OMS resources.

    Args:
        name: the model's name (the statement's subject name).
        root_digest: the model's hex OMS root digest (the model component's SHA-256).
        manifest: the model's resources, as hashed for its signature.
        tool_version: omsign's version, recorded as the tool that wrote the BOM.
        timestamp: when the BOM was made.

    Raises:
        UsageError: a hash algorithm CycloneDX has no name for.
    """
    ser = manifest.serialization
    algorithm = _ALGORITHMS.get(ser.hash_type)
    if algorithm is None:
        raise UsageError(f"CycloneDX has no name for the hash algorithm {ser.hash_type!r}")
    sharded = ser.method == "shards"
    model: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": "model",
        "name": name,
        "hashes": [{"alg": "SHA-256", "content": root_digest}],
        "properties": [
            {"name": "omsign:root-digest", "value": f"sha256:{root_digest}"},
            {"name": "omsign:serialization", "value": ser.method},
            {"name": "omsign:hash-type", "value": ser.hash_type},
        ]
        + ([{"name": "omsign:shard-size", "value": str(ser.shard_size)}] if sharded else []),
    }
    components = [_file_component(i, algorithm, sharded) for i in manifest.items]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {
                "components": [{"type": "application", "name": "omsign", "version": tool_version}]
            },
            "component": model,
        },
        "components": components,
        "dependencies": [{"ref": "model", "dependsOn": [c["bom-ref"] for c in components]}],
    }
