"""SLSA Provenance v1: which pipeline step made a model, from what, by whom.

A step's base models and datasets are ``buildDefinition.resolvedDependencies``
entries named by their OMS root digest::

    {"name": "base-model", "uri": "hf://org/base",
     "digest": {"sha256": "<root digest>"}, "annotations": {"omsign.kind": "model"}}

(``"omsign.kind": "dataset"`` for a dataset); the code is one more entry, with a
``gitCommit`` digest and ``"omsign.kind": "code"``. The step (``train``,
``fine-tune``, ``quantize``...) is ``buildDefinition.externalParameters.step``, under
the build type :data:`BUILD_TYPE`; parameters given from a file are
``externalParameters.parameters``. ``runDetails.builder.id`` names who ran the step,
and ``runDetails.metadata`` the run (``invocationId``, ``startedOn``, ``finishedOn``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omsign.intoto import get_field, malformed
from omsign.predicates._common import AttestationKind, parse_time

__all__ = [
    "BUILD_TYPE",
    "KIND",
    "PREDICATE_TYPE",
    "Dependency",
    "Provenance",
    "build_provenance",
    "read_provenance",
]

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://omsign.dev/model-step/v1"
_KINDS = ("model", "dataset", "code")
MAX_DEPENDENCIES = 10_000


@dataclass(frozen=True)
class Dependency:
    """One resolved dependency of a step.

    Attributes:
        kind: ``model``, ``dataset`` or ``code``.
        name: its name (a model's or dataset's subject name).
        uri: where it was given (a path, ``hf://...``, a repository URL).
        digest: algorithm -> hex digest (``sha256``: OMS root digest; ``gitCommit``).
    """

    kind: str
    name: str
    uri: str
    digest: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        """The ``resolvedDependencies`` entry."""
        return {
            "name": self.name,
            "uri": self.uri,
            "digest": dict(self.digest),
            "annotations": {"omsign.kind": self.kind},
        }


@dataclass(frozen=True)
class Provenance:
    """What a provenance predicate says, read back.

    Attributes:
        step: the pipeline step (``fine-tune``...).
        dependencies: the base models, datasets and code, in order.
        builder_id: who ran the step.
        parameters: the step's parameters, if given.
        invocation_id: the run, if known.
    """

    step: str
    dependencies: tuple[Dependency, ...]
    builder_id: str
    parameters: Mapping[str, Any] | None = None
    invocation_id: str | None = None

    def of_kind(self, kind: str) -> tuple[Dependency, ...]:
        """The dependencies of one kind (``model``, ``dataset``, ``code``)."""
        return tuple(d for d in self.dependencies if d.kind == kind)


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_provenance(
    *,
    step: str,
    dependencies: Sequence[Dependency],
    builder_id: str,
    parameters: Mapping[str, Any] | None = None,
    invocation_id: str | None = None,
    started: dt.datetime | None = None,
    finished: dt.datetime | None = None,
) -> dict[str, Any]:
    """A SLSA Provenance v1 predicate for one pipeline step (see the module docstring)."""
    external: dict[str, Any] = {"step": step}
    if parameters is not None:
        external["parameters"] = dict(parameters)
    metadata: dict[str, Any] = {}
    if invocation_id:
        metadata["invocationId"] = invocation_id
    if started:
        metadata["startedOn"] = _time(started)
    if finished:
        metadata["finishedOn"] = _time(finished)
    run: dict[str, Any] = {"builder": {"id": builder_id}}
    if metadata:
        run["metadata"] = metadata
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "resolvedDependencies": [d.to_json() for d in dependencies],
        },
        "runDetails": run,
    }


def _dependency(raw: Any, index: int) -> Dependency | None:
    where = f"predicate.buildDefinition.resolvedDependencies[{index}]"
    if not isinstance(raw, dict):
        raise malformed(f"{where} is not an object")
    annotations = raw.get("annotations")
    kind = annotations.get("omsign.kind") if isinstance(annotations, dict) else None
    if kind not in _KINDS:
        return None  # not one omsign names: kept out of the lineage
    digest = get_field(raw, "digest", dict, where)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in digest.items()):
        raise malformed(f"{where}.digest is not a map of strings")
    if kind != "code" and not isinstance(digest.get("sha256"), str):
        raise malformed(f"{where} names a {kind} without its sha256 root digest")
    name = raw.get("name", "")
    uri = raw.get("uri", "")
    if not isinstance(name, str) or not isinstance(uri, str):
        raise malformed(f"{where}.name or .uri is not a string")
    return Dependency(kind, name, uri, digest)


def read_provenance(predicate: Mapping[str, Any]) -> Provenance:
    """Reads a provenance predicate (once its attestation verified).

    Raises:
        MalformedSignatureError: a field is missing or of the wrong type.
    """
    build = get_field(predicate, "buildDefinition", dict, "predicate")
    get_field(build, "buildType", str, "predicate.buildDefinition")
    external = get_field(build, "externalParameters", dict, "predicate.buildDefinition")
    step = external.get("step", "")
    if not isinstance(step, str):
        raise malformed("predicate.buildDefinition.externalParameters.step is not a string")
    raw_deps = build.get("resolvedDependencies", [])
    if not isinstance(raw_deps, list):
        raise malformed("predicate.buildDefinition.resolvedDependencies is not a list")
    if len(raw_deps) > MAX_DEPENDENCIES:
        raise malformed(f"more than {MAX_DEPENDENCIES} resolved dependencies")
    deps = tuple(d for i, r in enumerate(raw_deps) if (d := _dependency(r, i)) is not None)
    run = get_field(predicate, "runDetails", dict, "predicate")
    builder = get_field(run, "builder", dict, "predicate.runDetails")
    builder_id = get_field(builder, "id", str, "predicate.runDetails.builder")
    parameters = external.get("parameters")
    metadata = run.get("metadata")
    invocation = metadata.get("invocationId") if isinstance(metadata, dict) else None
    return Provenance(
        step,
        deps,
        builder_id,
        parameters if isinstance(parameters, dict) else None,
        invocation if isinstance(invocation, str) else None,
    )


def _check(predicate: dict[str, Any]) -> None:
    read_provenance(predicate)
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
