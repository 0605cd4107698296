"""The lineage graph as values: which links are broken, the text tree, the JSON document."""

from __future__ import annotations

import json

import pytest

from helpers.lineage_values import DIGESTS, check_lineage_json, sample_lineage
from omsign._lineage import Lineage, LineageEdge, LineageError, LineageNode


def _node(digest: str, name: str, depth: int, status: str = "verified") -> LineageNode:
    return LineageNode(digest, "model", name, status, depth=depth)  # type: ignore[arg-type]


def test_a_broken_link_is_named_with_its_role_digest_and_reason() -> None:
    lineage = sample_lineage()
    assert not lineage.verified
    broken = lineage.failures()
    assert [f.node.name for f in broken] == ["base", "data0"]
    assert str(broken[0]) == (
        f"base model base (sha256:{DIGESTS['base']}): "
        "content does not match its signature: changed: weights.bin"
    )
    assert broken[0].path == ("quant", "tuned", "base")
    with pytest.raises(LineageError) as caught:
        lineage.check()
    assert caught.value.exit_code == 1
    assert caught.value.lineage is lineage
    assert str(caught.value).startswith(
        f"lineage broken at base model base (sha256:{DIGESTS['base']})"
    )
    assert "(in the lineage of quant <- tuned)" in str(caught.value)
    assert str(caught.value).endswith("(and 1 more broken link(s))")


def test_a_verified_chain_passes_check() -> None:
    a, b = "1" * 64, "2" * 64
    lineage = Lineage(
        "m", (_node(a, "m", 0), _node(b, "base", 1)), (LineageEdge(a, b, "model", "base"),)
    )
    assert lineage.verified
    lineage.check()
    assert lineage.dependencies(a) == [LineageEdge(a, b, "model", "base")]
    assert lineage.node(f"sha256:{b}").name == "base"


def test_the_top_model_is_named_as_the_model_when_it_fails() -> None:
    top = LineageNode("1" * 64, "model", "m", "unverified", reason="no signature found")
    with pytest.raises(
        LineageError, match=r"^lineage broken at model m \(sha256:1{64}\): no signature found$"
    ):
        Lineage("m", (top,)).check()


def test_the_tree_shows_every_node_once_and_shared_nodes_as_see_above() -> None:
    a, b, c, d = ("1" * 64, "2" * 64, "3" * 64, "4" * 64)
    nodes = (_node(a, "merged", 0), _node(b, "left", 1), _node(c, "right", 1), _node(d, "data", 2))
    edges = (
        LineageEdge(a, b, "model", "left"),
        LineageEdge(a, c, "model", "right"),
        LineageEdge(b, d, "dataset", "data"),
        LineageEdge(c, d, "dataset", "data"),
    )
    tree = Lineage("merged", nodes, edges).tree().splitlines()
    assert tree[0].startswith("model merged (sha256:111111111111...) verified")
    assert tree[1].startswith("|-- model left")
    assert tree[2].startswith("|   `-- model data")
    assert tree[3].startswith("`-- model right")
    assert tree[4] == "    `-- model data (sha256:444444444444...): see above"


def test_a_cycle_ends_where_a_node_repeats() -> None:
    a, b = "1" * 64, "2" * 64
    edges = (LineageEdge(a, b, "model", "b"), LineageEdge(b, a, "model", "a"))
    lineage = Lineage("a", (_node(a, "a", 0), _node(b, "b", 1)), edges)
    walked = [(n.name, again) for n, _, _, again in lineage.walk()]
    assert walked == [("a", False), ("b", False), ("a", True)]
    assert lineage.tree().splitlines()[-1].endswith(": see above")


def test_the_json_document_lists_nodes_edges_and_broken_links() -> None:
    doc = check_lineage_json(json.loads(json.dumps(sample_lineage().to_json())))
    assert doc["format"] == "omsign-lineage" and doc["version"] == 1
    assert doc["verified"] is False
    assert doc["root_digest"] == f"sha256:{DIGESTS['quant']}"
    statuses = {n["name"]: n["status"] for n in doc["nodes"]}
    assert statuses == {
        "quant": "verified",
        "tuned": "verified",
        "base": "unverified",
        "data1": "verified",
        "data0": "not-found",
    }
    assert doc["nodes"][0]["signer"]["signer"] == "sha256:b"
    assert doc["nodes"][1]["step"] == "fine-tune"
    assert {
        "from": f"sha256:{DIGESTS['tuned']}",
        "to": f"sha256:{DIGESTS['base']}",
        "kind": "model",
        "name": "base",
        "uri": "hf://acme/base",
    } in doc["edges"]
    assert [b["role"] for b in doc["broken"]] == ["base model", "dataset"]


def test_a_lineage_needs_its_model() -> None:
    with pytest.raises(ValueError):
        Lineage("m", ())


def test_the_schema_refuses_what_a_lineage_never_prints() -> None:
    import jsonschema

    doc = sample_lineage().to_json()
    doc["nodes"][0]["status"] = "trusted"
    with pytest.raises(jsonschema.ValidationError):
        check_lineage_json(doc)
