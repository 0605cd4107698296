"""Hand-built lineages: a pipeline graph with every status, for renderer tests."""

from __future__ import annotations

from typing import Any

from omsign._lineage import Lineage, LineageEdge, LineageNode, lineage_schema
from omsign.results import VerifiedSigner

__all__ = ["DIGESTS", "check_lineage_json", "sample_lineage"]

DIGESTS = {
    name: ch * 64
    for name, ch in zip(("quant", "tuned", "base", "data1", "data0"), "abcde", strict=True)
}


def _signer(who: str) -> VerifiedSigner:
    return VerifiedSigner("key", f"sha256:{who}", None, None, f"/models/{who}/model.sig")


def sample_lineage(base_name: str = "base") -> Lineage:
    """quant <- tuned <- (base <- data0, data1): three verified, one unverified, one not found."""
    d = DIGESTS
    nodes = (
        LineageNode(
            d["quant"],
            "model",
            "quant",
            "verified",
            location="/models/quant",
            signer=_signer("b"),
            step="quantize",
            depth=0,
        ),
        LineageNode(
            d["tuned"],
            "model",
            "tuned",
            "verified",
            location="/models/tuned",
            signer=_signer("b"),
            step="fine-tune",
            depth=1,
        ),
        LineageNode(
            d["base"],
            "model",
            base_name,
            "unverified",
            reason="content does not match its signature: changed: weights.bin",
            location="/models/base",
            depth=2,
        ),
        LineageNode(
            d["data1"],
            "dataset",
            "data1",
            "verified",
            location="/data/data1",
            depth=2,
            notes=("content matches the digest its provenance names",),
        ),
        LineageNode(
            d["data0"],
            "dataset",
            "data0",
            "not-found",
            reason="no copy in the search places",
            depth=3,
        ),
    )
    edges = (
        LineageEdge(d["quant"], d["tuned"], "model", "tuned"),
        LineageEdge(d["tuned"], d["base"], "model", "base", "hf://acme/base"),
        LineageEdge(d["tuned"], d["data1"], "dataset", "data1"),
        LineageEdge(d["base"], d["data0"], "dataset", "data0"),
    )
    return Lineage("/models/quant", nodes, edges, ("/models", "/data"))


def check_lineage_json(doc: Any) -> dict[str, Any]:
    """Validates a lineage document against the schema shipped in the package."""
    import jsonschema

    schema = lineage_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    cls(schema).validate(doc)
    return dict(doc)
