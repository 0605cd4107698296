"""SLSA Provenance v1: which pipeline step made a model, from what, by whom.

A step's base models and datasets are ``buildDefinition.resolvedDependencies``
entries named by their OMS root digest::

    {"name": "base-model", "uri": "hf://org/base",
     "digest": {"sha256": "<root digest>"}, "annotations": {"omsign.kind": "model"}}

and the step itself is ``buildDefinition.externalParameters.step`` (``train``,
``fine-tune``, ``quantize``...), also the last part of ``buildDefinition.buildType``.
"""

from __future__ import annotations

from typing import Any

from omsign.intoto import get_field
from omsign.predicates._common import AttestationKind, parse_time

__all__ = ["BUILD_TYPE", "KIND", "PREDICATE_TYPE"]

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://omsign.dev/model-step/v1"


def _check(predicate: dict[str, Any]) -> None:
    build = get_field(predicate, "buildDefinition", dict, "predicate")
    get_field(build, "buildType", str, "predicate.buildDefinition")
    get_field(build, "externalParameters", dict, "predicate.buildDefinition")
    deps = build.get("resolvedDependencies", [])
    if not isinstance(deps, list):
        from omsign.intoto import malformed

        raise malformed("predicate.buildDefinition.resolvedDependencies is not a list")
    run = get_field(predicate, "runDetails", dict, "predicate")
    builder = get_field(run, "builder", dict, "predicate.runDetails")
    get_field(builder, "id", str, "predicate.runDetails.builder")
    _claimed(predicate)


def _claimed(predicate: dict[str, Any]) -> Any:
    run = predicate.get("runDetails")
    metadata = run.get("metadata") if isinstance(run, dict) else None
    if not isinstance(metadata, dict):
        return None
    where = "predicate.runDetails.metadata"
    finished = parse_time(metadata.get("finishedOn"), f"{where}.finishedOn")
    return finished or parse_time(metadata.get("startedOn"), f"{where}.startedOn")


KIND = AttestationKind("provenance", PREDICATE_TYPE, "SLSA provenance v1", _check, _claimed)
