"""A CycloneDX 1.6 machine-learning bill of materials of a model.

The predicate is the CycloneDX document itself; the model is its
``metadata.component`` (type ``machine-learning-model``) and each signed file a
``file`` component whose SHA-256 (or other) hash is the OMS resource digest.
"""

from __future__ import annotations

from typing import Any

from omsign.intoto import get_field
from omsign.predicates._common import AttestationKind, parse_time

__all__ = ["KIND", "PREDICATE_TYPE"]

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
