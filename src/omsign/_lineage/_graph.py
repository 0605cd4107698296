"""A model's lineage as values: the models and datasets it was made from, and their status.

A :class:`Lineage` is a graph: one :class:`LineageNode` per artifact (a model or a
dataset, identified by its OMS root digest) and one :class:`LineageEdge` per "made
from" link that a verified provenance attestation states. Each node says whether its
copy was found and verified, and if not, why. The values are frozen; ``to_json()``,
:meth:`Lineage.tree` and :func:`omsign.render_lineage_html` present them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from omsign.errors import VerificationError

if TYPE_CHECKING:
    from omsign.results import VerifiedSigner

__all__ = [
    "LINEAGE_FORMAT",
    "lineage_schema",
    "STATUSES",
    "Lineage",
    "LineageEdge",
    "LineageError",
    "LineageFailure",
    "LineageNode",
    "NodeStatus",
]

LINEAGE_FORMAT = "omsign-lineage"
NodeStatus = Literal["verified", "unverified", "not-found"]
STATUSES: tuple[NodeStatus, ...] = ("verified", "unverified", "not-found")


def lineage_schema() -> dict[str, Any]:
    """The JSON Schema of :meth:`Lineage.to_json` (``omsign/schemas/lineage-v1.json``)."""
    import json
    from importlib import resources

    text = resources.files("omsign").joinpath("schemas/lineage-v1.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


NO_PROVENANCE = "no provenance attestation says what it was made from"


class LineageError(VerificationError):
    """A link of a model's lineage does not verify (exit code 1).

    Attributes:
        lineage: the whole graph, with every node's status.
    """

    def __init__(self, message: str, lineage: Lineage, **hint: Any) -> None:
        super().__init__(message, **hint)
        self.lineage = lineage


@dataclass(frozen=True)
class LineageNode:
    """One model or dataset of a lineage.

    Attributes:
        digest: hex SHA-256 OMS root digest, the node's identity ("" only for a top
            model whose signature cannot be read).
        kind: ``model`` or ``dataset`` (as the provenance that names it says).
        name: the signed subject name, else the name the provenance gives it.
        status: ``verified``, ``unverified`` or ``not-found``.
        reason: why it is not verified; empty when it is.
        location: the copy that was checked, or None when none was found.
        signer: who signed the copy (verified), or None (unsigned, or not verified).
        step: the pipeline step that made it (``train``, ``fine-tune``...), from its
            verified provenance.
        builder: who ran that step (the provenance's builder id).
        provenance: where the provenance attestations followed were read.
        depth: links from the model asked about (0 for it).
        notes: anything else worth knowing (an attestation that did not verify beside
            one that did, a dataset proven by its digest alone).
    """

    digest: str
    kind: str
    name: str
    status: NodeStatus
    reason: str = ""
    location: str | None = None
    signer: VerifiedSigner | None = None
    step: str | None = None
    builder: str | None = None
    provenance: tuple[str, ...] = ()
    depth: int = 0
    notes: tuple[str, ...] = ()

    @property
    def verified(self) -> bool:
        """The copy was found, and its signature (or digest) and provenance verified."""
        return self.status == "verified"

    @property
    def label(self) -> str:
        """``sha256:<hex>`` of the node, or ``unknown digest``."""
        return f"sha256:{self.digest}" if self.digest else "unknown digest"

    def to_json(self) -> dict[str, Any]:
        """The node as a JSON-ready object."""
        return {
            "kind": self.kind,
            "name": self.name,
            "digest": f"sha256:{self.digest}" if self.digest else None,
            "status": self.status,
            "reason": self.reason or None,
            "location": self.location,
            "signer": self.signer.to_json() if self.signer else None,
            "step": self.step,
            "builder": self.builder,
            "provenance": list(self.provenance),
            "depth": self.depth,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class LineageEdge:
    """A "made from" link: ``parent`` was made from ``child``.

    Attributes:
        parent: the digest of the artifact made.
        child: the digest of what it was made from.
        kind: ``model`` or ``dataset``, as the provenance names the dependency.
        name: the dependency's name in the provenance.
        uri: where the provenance says the dependency came from, if it says.
    """

    parent: str
    child: str
    kind: str
    name: str
    uri: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The edge as a JSON-ready object."""
        return {
            "from": f"sha256:{self.parent}",
            "to": f"sha256:{self.child}",
            "kind": self.kind,
            "name": self.name,
            "uri": self.uri,
        }


@dataclass(frozen=True)
class LineageFailure:
    """A broken link: a node that did not verify, and how its parent names it.

    Attributes:
        node: the node.
        role: ``model`` for the model asked about, ``base model`` or ``dataset`` for
            what it was made from.
        path: the names from the model asked about down to this node.
    """

    node: LineageNode
    role: str
    path: tuple[str, ...]

    def __str__(self) -> str:
        """``base model NAME (sha256:...): REASON``."""
        return f"{self.role} {self.node.name} ({self.node.label}): {self.node.reason}"


def _role(kind: str, top: bool) -> str:
    if top:
        return kind
    return "base model" if kind == "model" else kind


@dataclass(frozen=True)
class Lineage:
    """A model's lineage: what it was made from, back to the roots, each link checked.

    Attributes:
        model: the model asked about, as given.
        nodes: every artifact, the model asked about first, then breadth-first.
        edges: every "made from" link, in the order found.
        search: the places searched for copies.
    """

    model: str
    nodes: tuple[LineageNode, ...]
    edges: tuple[LineageEdge, ...] = ()
    search: tuple[str, ...] = ()
    _index: dict[str, LineageNode] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.nodes:
            raise ValueError("a lineage has at least the model asked about")
        object.__setattr__(self, "_index", {n.digest: n for n in self.nodes})

    @property
    def top(self) -> LineageNode:
        """The model asked about."""
        return self.nodes[0]

    @property
    def verified(self) -> bool:
        """Every node was found and verified: the whole chain holds."""
        return all(n.verified for n in self.nodes)

    def node(self, digest: str) -> LineageNode:
        """The node of a hex root digest.

        Raises:
            KeyError: no node has that digest.
        """
        return self._index[digest.removeprefix("sha256:")]

    def dependencies(self, digest: str) -> list[LineageEdge]:
        """The links from the node of ``digest`` to what it was made from."""
        digest = digest.removeprefix("sha256:")
        return [e for e in self.edges if e.parent == digest]

    def walk(self) -> Iterator[tuple[LineageNode, LineageEdge | None, tuple[str, ...], bool]]:
        """Depth-first from the top: (node, the edge reaching it, names on the way, seen).

        ``seen`` is True when the node was already reached by another path (it is not
        walked again, so a cycle ends there).
        """
        seen: set[str] = set()

        def visit(
            node: LineageNode, edge: LineageEdge | None, path: tuple[str, ...]
        ) -> Iterator[tuple[LineageNode, LineageEdge | None, tuple[str, ...], bool]]:
            path = (*path, node.name)
            again = node.digest in seen
            yield node, edge, path, again
            if again:
                return
            seen.add(node.digest)
            for dep in self.dependencies(node.digest):
                child = self._index.get(dep.child)
                if child is not None:
                    yield from visit(child, dep, path)

        yield from visit(self.top, None, ())

    def failures(self) -> list[LineageFailure]:
        """Each node that did not verify, in the order of :meth:`walk`, once each."""
        found: list[LineageFailure] = []
        named: set[str] = set()
        for node, edge, path, again in self.walk():
            if again or node.verified or node.digest in named:
                continue
            named.add(node.digest)
            found.append(LineageFailure(node, _role(node.kind, edge is None), path))
        return found

    def check(self) -> None:
        """Returns if the whole chain verifies.

        Raises:
            LineageError: a link is broken; the message names the first one found and
                how many more there are.
        """
        broken = self.failures()
        if not broken:
            return
        more = f" (and {len(broken) - 1} more broken link(s))" if len(broken) > 1 else ""
        where = " <- ".join(broken[0].path[:-1])
        via = f" (in the lineage of {where})" if where else ""
        hint: dict[str, Any] = {}
        if broken[0].node.reason == NO_PROVENANCE:
            hint = {
                "option": "allow_roots",
                "hint": "a model published without provenance can end the lineage: "
                "accept such roots with {option}",
            }
        raise LineageError(f"lineage broken at {broken[0]}{via}{more}", self, **hint)

    def tree(self) -> str:
        """The lineage as an indented text tree, one node per line (names unescaped)."""
        lines: list[str] = []
        stack: list[bool] = []  # for each open level: whether it was its parent's last
        walked = list(self.walk())
        for i, (node, edge, path, again) in enumerate(walked):
            depth = len(path) - 1
            later = [len(p) - 1 for _, _, p, _ in walked[i + 1 :]]
            last = not any(d == depth for d in _until_shallower(later, depth))
            del stack[depth:]
            prefix = "".join("    " if done else "|   " for done in stack[1:])
            if depth:
                prefix += "`-- " if last else "|-- "
            stack.append(last)
            lines.append(prefix + _line(node, edge, again))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The lineage as a JSON-ready document (``omsign lineage --json``).

        Its JSON Schema ships in the package (:func:`lineage_schema`).
        """
        return {
            "format": LINEAGE_FORMAT,
            "version": 1,
            "model": self.model,
            "verified": self.verified,
            "root_digest": self.top.label if self.top.digest else None,
            "search": list(self.search),
            "nodes": [n.to_json() for n in self.nodes],
            "edges": [e.to_json() for e in self.edges],
            "broken": [
                {"digest": f.node.label, "role": f.role, "message": str(f)} for f in self.failures()
            ],
        }


def _until_shallower(depths: list[int], depth: int) -> list[int]:
    """The depths that follow, up to the first one shallower than ``depth``."""
    out = []
    for d in depths:
        if d < depth:
            break
        out.append(d)
    return out


def short(digest: str) -> str:
    """``sha256:<first 12 hex>...`` for display."""
    return f"sha256:{digest[:12]}..." if digest else "unknown digest"


def who(signer: VerifiedSigner) -> str:
    """The signer as shown: its identity, after its method unless it already says it."""
    if signer.signer.startswith(f"{signer.method} "):
        return signer.signer
    return f"{signer.method} {signer.signer}"


def _line(node: LineageNode, edge: LineageEdge | None, again: bool) -> str:
    head = f"{node.kind} {node.name} ({short(node.digest)})"
    if again:
        return f"{head}: see above"
    status = {"verified": "verified", "unverified": "UNVERIFIED", "not-found": "NOT FOUND"}
    text = f"{head} {status[node.status]}"
    if node.reason:
        text += f": {node.reason}"
    details = []
    if node.step:
        details.append(f"step {node.step}")
    if node.signer is not None:
        details.append(f"signed by {who(node.signer)}")
    if node.location:
        details.append(f"at {node.location}")
    if details:
        text += f" [{'; '.join(details)}]"
    return text
