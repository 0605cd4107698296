"""A three-step pipeline, followed back by ``omsign lineage``: each broken link is named.

The base model (trained on ``data0``) is signed by key A; the fine-tuned model, made
from the base and ``data1``, by key B; the quantised model, made from the fine-tuned
one, by key B. Each model carries its SLSA provenance in ``claims.jsonl``, signed by
the key that signed it. ``data0`` is unsigned (proven by its digest), ``data1`` signed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import omsign
from helpers.fixtures import CliResult, KeyPair, make_model
from helpers.pki import make_ec_key, write_private_key, write_public_key


@dataclass(frozen=True)
class Pipeline:
    root: Path
    a: KeyPair
    b: KeyPair
    c: KeyPair  # trusted by nobody
    digests: dict[str, str]

    def path(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    @property
    def search(self) -> list[Path]:
        return [self.path("models"), self.path("data")]

    @property
    def trusted(self) -> list[Path]:
        return [self.a.public, self.b.public]

    def lineage(self, model: str = "quant", **kw: Any) -> omsign.Lineage:
        return omsign.lineage(
            self.path("models", model), search=self.search, key=self.trusted, workers=2, **kw
        )

    def cli(self, run: Callable[..., CliResult], *extra: str | Path) -> CliResult:
        flags: list[str | Path] = []
        for place in self.search:
            flags += ["--search", place]
        for key in self.trusted:
            flags += ["--key", key]
        return run("lineage", self.path("models", "quant"), *flags, "--workers", "2", *extra)


def _keypair(folder: Path, name: str) -> KeyPair:
    key = make_ec_key("P-256")
    write_private_key(folder / f"{name}.pem", key)
    write_public_key(folder / f"{name}.pub", key)
    return KeyPair("P-256", folder / f"{name}.pem", folder / f"{name}.pub")


def provenance(step: str, deps: list[tuple[str, str, str]]) -> dict[str, Any]:
    """A SLSA provenance v1 predicate for one pipeline step, naming its inputs."""
    return {
        "buildDefinition": {
            "buildType": "https://omsign.dev/model-step/v1",
            "externalParameters": {"step": step},
            "resolvedDependencies": [
                {
                    "name": name,
                    "uri": f"file:///pipeline/{name}",
                    "digest": {"sha256": digest},
                    "annotations": {"omsign.kind": kind},
                }
                for kind, name, digest in deps
            ]
            + [{"uri": "git+https://example.com/train@1234", "digest": {"gitCommit": "1234"}}],
        },
        "runDetails": {"builder": {"id": "https://ci.example.com/runner"}},
    }


def _step(model: Path, key: KeyPair, step: str, deps: list[tuple[str, str, str]]) -> str:
    signed = omsign.sign(model, key=key.private, workers=2)
    omsign.attest(
        model, predicate_type="provenance", predicate=provenance(step, deps), key=key.private
    )
    return signed.root_digest


def build(root: Path) -> Pipeline:
    keys = root / "keys"
    keys.mkdir(parents=True)
    a, b, c = (_keypair(keys, n) for n in "abc")
    digests: dict[str, str] = {}
    data0 = make_model(root / "data" / "data0", {"train.jsonl": b'{"text": "zero"}\n' * 50})
    data1 = make_model(root / "data" / "data1", {"tune.jsonl": b'{"text": "one"}\n' * 50})
    digests["data0"] = omsign.digest(data0)
    digests["data1"] = omsign.sign(data1, key=a.private).root_digest
    models = root / "models"
    weights = {"config.json": b'{"layers": 2}\n', "weights.bin": os.urandom(4096)}
    base = make_model(models / "base", weights)
    digests["base"] = _step(base, a, "train", [("dataset", "data0", digests["data0"])])
    tuned = make_model(models / "tuned", {**weights, "weights.bin": os.urandom(4096)})
    digests["tuned"] = _step(
        tuned,
        b,
        "fine-tune",
        [("model", "base", digests["base"]), ("dataset", "data1", digests["data1"])],
    )
    quant = make_model(models / "quant", {**weights, "weights.bin": os.urandom(1024)})
    digests["quant"] = _step(quant, b, "quantize", [("model", "tuned", digests["tuned"])])
    return Pipeline(root, a, b, c, digests)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return build(tmp_path_factory.mktemp("pipeline"))


@pytest.fixture
def pipeline(built: Pipeline, tmp_path: Path) -> Pipeline:
    """A fresh copy of the pipeline, to break."""
    root = tmp_path / "copy"
    shutil.copytree(built.root, root, symlinks=True)
    return Pipeline(
        root,
        *(
            KeyPair(k.curve, root / "keys" / k.private.name, root / "keys" / k.public.name)
            for k in (built.a, built.b, built.c)
        ),
        built.digests,
    )


def test_the_whole_chain_verifies(built: Pipeline) -> None:
    lineage = built.lineage()
    assert lineage.verified, lineage.tree()
    lineage.check()
    d = built.digests
    by_name = {n.name: n for n in lineage.nodes}
    assert set(by_name) == {"quant", "tuned", "base", "data0", "data1"}
    assert {n.name: n.digest for n in lineage.nodes} == d
    assert [by_name[m].step for m in ("quant", "tuned", "base")] == [
        "quantize",
        "fine-tune",
        "train",
    ]
    assert by_name["quant"].signer is not None and by_name["base"].signer is not None
    assert by_name["base"].signer.signer != by_name["tuned"].signer.signer  # keys A and B
    assert by_name["data0"].signer is None and "unsigned" in by_name["data0"].notes[0]
    assert by_name["data1"].signer is not None
    assert by_name["base"].builder == "https://ci.example.com/runner"
    assert {(e.parent, e.child) for e in lineage.edges} == {
        (d["quant"], d["tuned"]),
        (d["tuned"], d["base"]),
        (d["tuned"], d["data1"]),
        (d["base"], d["data0"]),
    }
    assert by_name["data0"].location == str(built.path("data", "data0"))


def test_the_cli_prints_the_tree_and_writes_the_page(
    built: Pipeline, cli: Any, tmp_path: Path
) -> None:
    page = tmp_path / "lineage.html"
    result = built.cli(cli, "--html", page)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("model quant (sha256:") and " verified [step quantize" in lines[0]
    assert lines[1].startswith("`-- model tuned")
    assert any(line.startswith("    |-- model base") for line in lines)
    assert any("`-- dataset data0" in line and "verified" in line for line in lines)
    html = page.read_text()
    for name, digest in built.digests.items():
        assert f'data-digest="sha256:{digest}" data-status="verified"' in html, name
    doc = json.loads(built.cli(cli, "--json").out)
    assert doc["verified"] is True and doc["broken"] == []
    assert len(doc["nodes"]) == 5 and len(doc["edges"]) == 4


def _broken(pipeline: Pipeline, cli: Any, *extra: str | Path) -> str:
    result = pipeline.cli(cli, *extra)
    assert result.code == 1, (result.out, result.err)
    lines = [line for line in result.err.splitlines() if line.startswith("omsign: error:")]
    assert len(lines) == 1, result.err
    return lines[0]


def test_a_tampered_base_model_is_the_broken_link(pipeline: Pipeline, cli: Any) -> None:
    weights = pipeline.path("models", "base", "weights.bin")
    weights.write_bytes(b"\0" + weights.read_bytes()[1:])
    message = _broken(pipeline, cli)
    assert message == (
        f"omsign: error: lineage broken at base model base (sha256:{pipeline.digests['base']}): "
        "content does not match its signature: changed: weights.bin "
        "(in the lineage of quant <- tuned)"
    )
    node = pipeline.lineage().node(pipeline.digests["base"])
    assert node.status == "unverified"
    # What the tampered base claims to be made from is not followed.
    assert pipeline.digests["data0"] not in {n.digest for n in pipeline.lineage().nodes}


def test_a_dropped_provenance_line_is_the_broken_link(pipeline: Pipeline, cli: Any) -> None:
    claims = pipeline.path("models", "tuned", "claims.jsonl")
    assert len(claims.read_text().splitlines()) == 1
    claims.write_text("")
    message = _broken(pipeline, cli)
    assert f"base model tuned (sha256:{pipeline.digests['tuned']})" in message
    assert message.endswith(
        "no provenance attestation says what it was made from (in the lineage of quant)"
    )
    # A caller who accepts roots sees the fine-tuned model as one: nothing else proves it.
    assert pipeline.lineage(allow_roots=True).verified


def test_an_attestation_reused_from_another_model_is_the_broken_link(
    pipeline: Pipeline, cli: Any
) -> None:
    # The base model's provenance, signed by a trusted key, pasted as the fine-tuned one's.
    base_claims = pipeline.path("models", "base", "claims.jsonl").read_bytes()
    claims = pipeline.path("models", "tuned", "claims.jsonl")
    claims.write_bytes(base_claims)
    message = _broken(pipeline, cli)
    assert f"base model tuned (sha256:{pipeline.digests['tuned']}): provenance " in message
    assert f"{claims}:1 does not verify" in message
    assert pipeline.digests["base"] in message  # the subject it is really about


def test_an_untrusted_signer_is_the_broken_link(pipeline: Pipeline, cli: Any) -> None:
    omsign.sign(pipeline.path("models", "tuned"), key=pipeline.c.private)
    message = _broken(pipeline, cli)
    assert f"base model tuned (sha256:{pipeline.digests['tuned']}): " in message
    untrusted = hashlib.sha256(pipeline.c.public.read_bytes()).hexdigest()
    assert (
        f"signature does not verify: the model was signed with a different key sha256:{untrusted}"
        in message
    )


def test_a_copy_that_is_not_found_is_the_broken_link(pipeline: Pipeline, cli: Any) -> None:
    shutil.rmtree(pipeline.path("data", "data1"))
    message = _broken(pipeline, cli)
    assert message.startswith(
        f"omsign: error: lineage broken at dataset data1 (sha256:{pipeline.digests['data1']}): "
        "no copy among the search places (its provenance says it came from file:///pipeline/data1)"
    )


def test_an_unsigned_dataset_that_changed_is_not_found(pipeline: Pipeline) -> None:
    (pipeline.path("data", "data0", "train.jsonl")).write_text("other data\n")
    lineage = pipeline.lineage()
    assert lineage.node(pipeline.digests["data0"]).status == "not-found"
    assert [f.node.name for f in lineage.failures()] == ["data0"]


def test_a_model_whose_own_signature_fails_is_named_as_the_model(
    pipeline: Pipeline, cli: Any
) -> None:
    (pipeline.path("models", "quant", "config.json")).write_text("{}")
    message = _broken(pipeline, cli)
    assert message.startswith(
        f"omsign: error: lineage broken at model quant (sha256:{pipeline.digests['quant']}): "
        "content does not match its signature: changed: config.json"
    )


def test_a_policy_file_says_who_signs_each_artifact(pipeline: Pipeline) -> None:
    policy = pipeline.path("policy.toml")
    policy.write_text(
        'version = 1\ndefault = "deny"\n'
        '[signers.a]\nkey = "keys/a.pub"\n[signers.b]\nkey = "keys/b.pub"\n'
        '[[rules]]\nmatch = ["models/base", "data/data1"]\nsigners = ["a"]\n'
        '[[rules]]\nmatch = ["models/**"]\nsigners = ["b"]\n'
    )
    quant = pipeline.path("models", "quant")
    found = omsign.lineage(quant, search=pipeline.search, policy=omsign.load_policy(policy))
    assert found.verified, found.tree()
    # The fine-tuned model's rule names key A alone: its signature by key B is refused.
    policy.write_text(policy.read_text().replace('"models/base"', '"models/base", "models/tuned"'))
    broken = omsign.lineage(quant, search=pipeline.search, policy=omsign.load_policy(policy))
    assert [f.node.name for f in broken.failures()] == ["tuned"]


def test_a_provenance_naming_its_own_model_is_a_cycle(pipeline: Pipeline) -> None:
    loop = make_model(pipeline.path("models", "loop"), {"w.bin": os.urandom(256)})
    digest = _step(loop, pipeline.b, "merge", [])
    omsign.attest(
        loop,
        predicate_type="provenance",
        predicate=provenance("merge", [("model", "loop", digest)]),
        key=pipeline.b.private,
    )
    found = pipeline.lineage("loop")
    (failure,) = found.failures()
    assert failure.node.name == "loop"
    assert failure.node.reason == "its provenance names loop, made from it (a cycle)"


def test_the_walk_stops_at_its_depth_limit_and_fails_closed(built: Pipeline) -> None:
    found = built.lineage(max_depth=1)
    assert {f.node.name for f in found.failures()} == {"base", "data1"}
    assert all("beyond its depth 1 limit" in f.node.reason for f in found.failures())


def test_a_model_without_any_search_place_has_its_dependencies_not_found(
    built: Pipeline,
) -> None:
    found = omsign.lineage(
        built.path("models", "quant"), search=[built.path("keys")], key=built.trusted
    )
    assert [(f.node.name, f.node.status) for f in found.failures()] == [("tuned", "not-found")]
    assert "no signed copy among the search places" in found.failures()[0].node.reason
