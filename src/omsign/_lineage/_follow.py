"""Following a model's provenance back to its roots, verifying every link on the way.

For the model asked about and then for each artifact its verified provenance names:
verify the copy's signature and content under the trust given (a dataset without a
signature is proven by its content digest alone), read its attestations under the same
trust (their subject must be the verified root digest), and follow the base models and
datasets its SLSA provenance lists (``buildDefinition.resolvedDependencies`` entries
with ``annotations["omsign.kind"]`` ``model`` or ``dataset`` and a ``sha256`` root
digest), breadth-first, with bounds on depth and size. A model must carry a verified
provenance unless roots are allowed: ``claims.jsonl`` is not signed as a whole, so a
removed line can only be noticed by asking for it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omsign._lineage._graph import NO_PROVENANCE, Lineage, LineageEdge, LineageNode
from omsign._lineage._search import Candidate, SearchIndex
from omsign.errors import (
    Error,
    IdentityError,
    IntegrityError,
    MalformedSignatureError,
    ModelError,
    SignatureError,
    SignatureNotFoundError,
    VerificationError,
)
from omsign.options import AttestationRequirement, Runtime

if TYPE_CHECKING:
    from omsign.attestations import Attestation
    from omsign.policy import Policy
    from omsign.results import VerificationResult

__all__ = ["Dependency", "Follower", "Verify", "dependencies"]

# Verifies the artifact at a location: (path, signature or None, runtime) -> the result
# and the verifier its attestations are checked with.
Verify = Callable[[str, "str | None", Runtime], "tuple[VerificationResult, Policy]"]

MAX_DEPENDENCIES = 256  # entries read from one provenance
MAX_NODES = 256  # artifacts in one lineage
_MAX_COPIES = 8  # copies of one artifact tried
KINDS = ("model", "dataset")


@dataclass(frozen=True)
class Dependency:
    """One base model or dataset a provenance names."""

    kind: str
    name: str
    digest: str
    uri: str | None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def dependencies(predicate: Mapping[str, Any]) -> tuple[list[Dependency], list[str]]:
    """The models and datasets a SLSA provenance v1 predicate lists, and what is wrong.

    Entries of other kinds (code, tools) are not artifacts of the lineage and are left
    out; a model or dataset entry without a well-formed ``sha256`` is a problem.
    """
    build = predicate.get("buildDefinition")
    entries = build.get("resolvedDependencies") if isinstance(build, Mapping) else None
    if not isinstance(entries, list):
        return [], []
    found, problems = [], []
    if len(entries) > MAX_DEPENDENCIES:
        problems.append(f"the provenance lists more than {MAX_DEPENDENCIES} dependencies")
    for i, entry in enumerate(entries[:MAX_DEPENDENCIES]):
        if not isinstance(entry, Mapping):
            continue
        notes = entry.get("annotations")
        kind = notes.get("omsign.kind") if isinstance(notes, Mapping) else None
        if kind not in KINDS:
            continue
        name = _text(entry.get("name")) or _text(entry.get("uri")) or f"dependency {i + 1}"
        digests = entry.get("digest")
        value = digests.get("sha256") if isinstance(digests, Mapping) else None
        if not isinstance(value, str) or len(value) != 64 or value.strip("0123456789abcdef"):
            problems.append(f"its provenance names {kind} {name} without a sha256 root digest")
            continue
        found.append(Dependency(str(kind), name, value, _text(entry.get("uri"))))
    return found, problems


def _step(predicate: Mapping[str, Any]) -> str | None:
    build = predicate.get("buildDefinition")
    if not isinstance(build, Mapping):
        return None
    params = build.get("externalParameters")
    step = _text(params.get("step")) if isinstance(params, Mapping) else None
    if step is None and (kind := _text(build.get("buildType"))):
        last = kind.rstrip("/").rsplit("/", 1)[-1]
        step = None if re.fullmatch(r"v\d+(\.\d+)*", last) else last  # a version, no step
    return step


def _builder(predicate: Mapping[str, Any]) -> str | None:
    run = predicate.get("runDetails")
    builder = run.get("builder") if isinstance(run, Mapping) else None
    return _text(builder.get("id")) if isinstance(builder, Mapping) else None


def why(exc: Error, *places: object) -> str:
    """A short reason for a failed check, without the location the node already shows."""
    message = exc.message
    for place in places:
        message = message.removeprefix(f"{place}: ")
    if isinstance(exc, IntegrityError):
        diff = exc.difference
        detail = f": {diff.summary()}" if diff is not None and not diff.empty else ""
        return f"content does not match its signature{detail}"
    if isinstance(exc, SignatureNotFoundError):
        return "no signature found"
    if isinstance(exc, IdentityError):
        return f"signer not trusted: {message}"
    if isinstance(exc, SignatureError):
        return f"signature does not verify: {message}"
    if isinstance(exc, MalformedSignatureError):
        return f"malformed signature: {message}"
    if isinstance(exc, VerificationError):
        return message
    return f"cannot be checked: {message}"


@dataclass
class _Work:
    """A node being built (mutable until the walk ends)."""

    node: LineageNode
    deps: list[Dependency] = field(default_factory=list)


class Follower:
    """Walks a lineage; see the module docstring.

    Args:
        verify: verifies the artifact at a location (with its signature path, if not
            the default) and returns the result and the verifier its attestations are
            checked with (the same trust).
        index: the copies among the search places.
        allow_roots: accept a verified model without provenance as a root.
        max_depth: links followed from the model asked about.
        max_nodes: artifacts in all.
        runtime: how models are hashed.
        require: attestations every model must have (as ``verify`` requires them).
    """

    def __init__(
        self,
        verify: Verify,
        index: SearchIndex,
        *,
        allow_roots: bool = False,
        max_depth: int = 16,
        max_nodes: int = MAX_NODES,
        runtime: Runtime | None = None,
        require: Sequence[AttestationRequirement] = (),
    ) -> None:
        self.verify = verify
        self.index = index
        self.allow_roots = allow_roots
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self.runtime = runtime or Runtime()
        self.require = tuple(require)
        self.now = dt.datetime.now(dt.timezone.utc)

    def _verify(self, path: str, signature: str | None) -> tuple[VerificationResult, Policy]:
        return self.verify(path, signature, self.runtime)

    def _attested(self, work: _Work, path: str, signature: str | None, policy: Policy) -> None:
        """Reads the artifact's attestations: its step and dependencies, or why not."""
        found = self._provenance(work, path, signature, policy)
        if not self.require or work.node.kind != "model" or not work.node.verified:
            return
        from omsign._required import requirement_failure

        for need in self.require:
            why = requirement_failure(need, found, work.node.digest, self.now)
            if why:
                work.node = replace(work.node, status="unverified", reason=why)
                return

    def _provenance(
        self, work: _Work, path: str, signature: str | None, policy: Policy
    ) -> list[Attestation]:
        """Follows the verified provenance; returns every attestation found."""
        from omsign.attestations import ATTESTATION_TYPES, check_attestations
        from omsign.sources import resolve_source
        from omsign.storage import resolve_store

        node = work.node
        store = resolve_store(resolve_source(path), signature)
        try:
            found = check_attestations(store, node.digest, policy, now=self.now)
        except Error as exc:
            work.node = replace(node, status="unverified", reason=f"attestations: {why(exc)}")
            return []
        wanted = ATTESTATION_TYPES["provenance"]
        mine = [a for a in found if a.predicate_type == wanted or a.subject_digest is None]
        good = [a for a in mine if a.verified and a.predicate is not None]
        bad = [a for a in mine if not a.verified]
        notes = list(node.notes)
        notes += [f"{a.location} does not verify: {a.reason}" for a in bad]
        if not good:
            if bad:
                first = bad[0]
                what = "provenance" if first.predicate_type == wanted else "attestation"
                reason = f"{what} {first.location} does not verify: {first.reason}"
                work.node = replace(node, status="unverified", reason=reason, notes=tuple(notes))
            elif node.kind == "model" and not self.allow_roots:
                reason = NO_PROVENANCE
                work.node = replace(node, status="unverified", reason=reason, notes=tuple(notes))
            else:
                work.node = replace(node, notes=(*notes, "no provenance: a root"))
            return found
        problems: list[str] = []
        for att in good:
            assert att.predicate is not None
            deps, wrong = dependencies(att.predicate)
            work.deps += deps
            problems += wrong
        made = good[0].predicate or {}
        work.node = replace(
            node,
            step=_step(made),
            builder=_builder(made),
            provenance=tuple(a.location for a in good),
            notes=tuple(notes),
        )
        if problems:
            work.node = replace(work.node, status="unverified", reason=problems[0])
        return found

    def _check_copy(self, cand: Candidate, dep: Dependency, depth: int) -> _Work:
        """Verifies one copy of a named artifact."""
        path = str(cand.path)
        base = LineageNode(dep.digest, dep.kind, dep.name, "verified", location=cand.location)
        base = replace(base, depth=depth)
        if cand.signature is None:  # a dataset proven by its content digest alone
            note = "unsigned: its content hashes to the digest its provenance names"
            return _Work(replace(base, notes=(note,)))
        try:
            result, policy = self._verify(path, None)
        except Error as exc:
            return _Work(replace(base, status="unverified", reason=why(exc, path, cand.signature)))
        if result.root_digest != dep.digest:
            reason = f"its signature is over sha256:{result.root_digest}, not the digest named"
            return _Work(replace(base, status="unverified", reason=reason))
        work = _Work(replace(base, name=result.subject_name or dep.name, signer=result.signers[0]))
        self._attested(work, path, None, policy)
        return work

    def _find(self, dep: Dependency, depth: int) -> _Work:
        """The first copy of ``dep`` that verifies, else the first failure, else not found."""
        copies = self.index.signed(dep.digest)
        if not copies and dep.kind == "dataset":
            copies = self.index.hashed(dep.digest)
        first: _Work | None = None
        failed: list[str] = []
        for cand in copies[:_MAX_COPIES]:
            work = self._check_copy(cand, dep, depth)
            if work.node.verified:
                notes = tuple(f"another copy does not verify: {f}" for f in failed)
                work.node = replace(work.node, notes=(*notes, *work.node.notes))
                return work
            failed.append(f"{cand.location}: {work.node.reason}")
            first = first or work
        if first is not None:
            return first
        signed = "signed " if dep.kind == "model" else ""
        reason = f"no {signed}copy among the search places"
        if dep.uri:
            reason += f" (its provenance says it came from {dep.uri})"
        node = LineageNode(dep.digest, dep.kind, dep.name, "not-found", reason=reason, depth=depth)
        return _Work(node)

    def _top(self, model: str, signature: str | None) -> _Work:
        name = Path(model).name or model
        try:
            result, policy = self._verify(model, signature)
        except ModelError:
            raise
        except VerificationError as exc:
            claimed = _claimed_digest(model, signature)
            reason = why(exc, model, signature or "")
            return _Work(LineageNode(claimed, "model", name, "unverified", reason, model))
        node = LineageNode(
            result.root_digest,
            "model",
            result.subject_name or name,
            "verified",
            location=model,
            signer=result.signers[0],
        )
        work = _Work(node)
        self._attested(work, model, signature, policy)
        return work

    def follow(self, model: str, signature: str | None = None) -> Lineage:
        """The lineage of ``model``, every node checked.

        Raises:
            ModelError: the model itself cannot be read.
        """
        top = self._top(model, signature)
        works: dict[str, _Work] = {top.node.digest: top}
        edges: list[LineageEdge] = []
        queue = deque([top])
        while queue:
            work = queue.popleft()
            if not work.node.verified:
                continue  # what an unverified artifact claims is not followed
            for dep in work.deps:
                edges.append(LineageEdge(work.node.digest, dep.digest, dep.kind, dep.name, dep.uri))
                if dep.digest in works:
                    continue
                depth = work.node.depth + 1
                if depth > self.max_depth or len(works) >= self.max_nodes:
                    deep = depth > self.max_depth
                    bound = f"depth {self.max_depth}" if deep else f"{self.max_nodes}-artifact"
                    reason = f"not followed: the lineage goes beyond its {bound} limit"
                    node = LineageNode(dep.digest, dep.kind, dep.name, "unverified", reason)
                    works[dep.digest] = _Work(replace(node, depth=depth))
                    continue
                works[dep.digest] = child = self._find(dep, depth)
                queue.append(child)
        lineage = Lineage(
            model, tuple(w.node for w in works.values()), tuple(edges), self.index.places
        )
        return _break_cycles(lineage)


def _claimed_digest(model: str, signature: str | None) -> str:
    """The root digest a signature that did not verify claims, or ""."""
    from omsign.inspect import describe_signature

    try:
        digest = describe_signature(signature or model).root_digest
    except Error:
        return ""
    return (digest or "").removeprefix("sha256:")


def _break_cycles(lineage: Lineage) -> Lineage:
    """Marks each artifact whose provenance names itself or something made from it."""
    names = {n.digest: n.name for n in lineage.nodes}
    looped: dict[str, str] = {}
    for node, edge, _path, again in lineage.walk():
        if again and edge is not None and node.digest in _ancestors(lineage, edge.parent):
            looped.setdefault(edge.parent, node.digest)
    if not looped:
        return lineage
    nodes = tuple(
        replace(
            n,
            status="unverified",
            reason=f"its provenance names {names[looped[n.digest]]}, made from it (a cycle)",
        )
        if n.digest in looped
        else n
        for n in lineage.nodes
    )
    return replace(lineage, nodes=nodes)


def _ancestors(lineage: Lineage, digest: str) -> set[str]:
    """``digest`` and everything made from it, following the links upwards."""
    seen, todo = {digest}, [digest]
    while todo:
        current = todo.pop()
        for edge in lineage.edges:
            if edge.child == current and edge.parent not in seen:
                seen.add(edge.parent)
                todo.append(edge.parent)
    return seen
