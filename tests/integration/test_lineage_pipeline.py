"""A three-step pipeline, followed back by ``omsign lineage``: each broken link is named.

See :mod:`helpers.pipeline` for the pipeline: base (key A) <- fine-tuned (key B) <-
quantised (key B), with datasets ``data0`` (unsigned) and ``data1`` (signed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from helpers.lineage_values import check_lineage_json
from helpers.pipeline import Pipeline, attest_step, build_pipeline, provenance


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return build_pipeline(tmp_path_factory.mktemp("pipeline"))


@pytest.fixture
def pipeline(built: Pipeline, tmp_path: Path) -> Pipeline:
    """A fresh copy of the pipeline, to break."""
    return built.copy(tmp_path / "copy")


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
    doc = check_lineage_json(json.loads(built.cli(cli, "--json").out))
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
    assert (
        "no provenance attestation says what it was made from (in the lineage of quant); "
        "a model published without provenance can end the lineage: "
        "accept such roots with --allow-roots"
    ) in message
    # The remedy is named, as a flag on the command line and a keyword in the library.
    with pytest.raises(omsign.LineageError) as caught:
        pipeline.lineage().check()
    assert caught.value.options == ("allow_roots",)
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
    digest = attest_step(loop, pipeline.b, "merge", [])
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


def test_the_walk_stops_at_its_size_limit_and_fails_closed(built: Pipeline, tmp_path: Path) -> None:
    # 254 signed datasets and a base model named by the model asked about fill the
    # 256-artifact bound; the two datasets the base names are beyond it.
    from omsign._lineage._follow import MAX_NODES

    data = tmp_path / "data"
    named = []
    for i in range(MAX_NODES):
        folder = make_model(data / f"d{i:03}", {"rows.jsonl": f"{i}\n".encode()})
        digest = omsign.sign(folder, key=built.a.private, workers=1).root_digest
        named.append(("dataset", f"d{i:03}", digest))
    over = named[MAX_NODES - 2 :]
    base_digest = attest_step(make_model(data / "base", {"w.bin": b"base"}), built.a, "train", over)
    top = make_model(tmp_path / "top", {"w.bin": b"top"})
    attest_step(top, built.a, "tune", [("model", "base", base_digest), *named[: MAX_NODES - 2]])
    found = omsign.lineage(top, search=[data], key=[built.a.public], workers=1)
    assert len(found.nodes) == MAX_NODES + 2
    assert [(f.node.name, f.node.reason) for f in found.failures()] == [
        (name, f"not followed: the lineage goes beyond its {MAX_NODES}-artifact limit")
        for _, name, _ in over
    ]
    assert sum(n.verified for n in found.nodes) == MAX_NODES
    with pytest.raises(omsign.LineageError, match=r"beyond its 256-artifact limit") as caught:
        found.check()
    assert caught.value.exit_code == 1
    assert str(caught.value).startswith(f"lineage broken at dataset {over[0][1]} (sha256:")


def test_a_model_without_any_search_place_has_its_dependencies_not_found(
    built: Pipeline,
) -> None:
    found = omsign.lineage(
        built.path("models", "quant"), search=[built.path("keys")], key=built.trusted
    )
    assert [(f.node.name, f.node.status) for f in found.failures()] == [("tuned", "not-found")]
    assert "no signed copy among the search places" in found.failures()[0].node.reason


def test_a_base_model_in_the_hugging_face_cache_is_found_there(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The base model, as huggingface_hub caches it: files are links into blobs/.
    hub = pipeline.path("hub")
    repo = hub / "models--acme--base"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    base = pipeline.path("models", "base")
    for item in sorted(base.iterdir()):
        if item.name in ("model.sig", "claims.jsonl"):
            shutil.copy(item, snapshot / item.name)
        else:
            blob = hashlib.sha256(item.read_bytes()).hexdigest()
            shutil.copy(item, repo / "blobs" / blob)
            (snapshot / item.name).symlink_to(f"../../blobs/{blob}")
    shutil.rmtree(base)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    found = omsign.lineage(
        pipeline.path("models", "quant"),
        search=[*pipeline.search, "hf://"],
        key=pipeline.trusted,
    )
    assert found.verified, found.tree()
    node = found.node(pipeline.digests["base"])
    assert node.location == f"hf://acme/base@{commit}" and node.step == "train"
    # Without the cache among the search places, the base is not found.
    assert not omsign.lineage(
        pipeline.path("models", "quant"), search=pipeline.search, key=pipeline.trusted
    ).verified


def test_a_pinning_rule_holds_each_artifact_to_its_first_signers(pipeline: Pipeline) -> None:
    policy = pipeline.path("policy.toml")
    policy.write_text(
        'version = 1\ndefault = "deny"\n'
        '[signers.a]\nkey = "keys/a.pub"\n[signers.b]\nkey = "keys/b.pub"\n'
        '[[rules]]\nmatch = ["models/**", "data/**"]\nsigners = ["a", "b"]\nthreshold = 1\n'
        "pin = true\n"
    )
    history = pipeline.path("history.json")
    quant = pipeline.path("models", "quant")

    def walk() -> omsign.Lineage:
        return omsign.lineage(
            quant, search=pipeline.search, policy=omsign.load_policy(policy), history=history
        )

    assert walk().verified
    assert history.is_file()
    # The fine-tuned model re-signed by key A, trusted by the rule but not its first signer.
    omsign.sign(pipeline.path("models", "tuned"), key=pipeline.a.private)
    (failure,) = walk().failures()
    assert failure.node.name == "tuned" and failure.role == "base model"
    assert "not by the signer(s) pinned at first use" in failure.node.reason


def test_a_history_needs_a_policy_file(built: Pipeline, cli: Any) -> None:
    result = built.cli(cli, "--history", built.path("history.json"))
    assert result.code == 2
    assert "a signer history applies to a trust policy file" in result.err


def _scan(p: Pipeline, model: str, key: KeyPair, *, age: dt.timedelta, valid: dt.timedelta) -> None:
    """Signs a passing scan verdict for a model, made ``age`` ago and valid for ``valid``."""
    from omsign.predicates._scan import FileVerdict, build_scan_predicate

    predicate = build_scan_predicate(
        scanner="picklescan",
        scanner_version="0.0.0",
        omsign_version=omsign.__version__,
        root_digest=p.digests[model],
        resource_uri=str(p.path("models", model)),
        scanned=[FileVerdict("weights.bin", True)],
        skipped={"config.json": "not a pickle"},
        time_verified=dt.datetime.now(dt.timezone.utc) - age,
        valid_for=valid,
    )
    omsign.attest(
        p.path("models", model), predicate_type="scan", predicate=predicate, key=key.private
    )


def test_an_expired_scan_verdict_is_the_broken_link(pipeline: Pipeline, cli: Any) -> None:
    day = dt.timedelta(days=1)
    _scan(pipeline, "base", pipeline.a, age=dt.timedelta(0), valid=30 * day)
    _scan(pipeline, "quant", pipeline.b, age=dt.timedelta(0), valid=30 * day)
    _scan(pipeline, "tuned", pipeline.b, age=10 * day, valid=day)  # expired 9 days ago
    message = _broken(pipeline, cli, "--require-attestation", "scan")
    claims = pipeline.path("models", "tuned", "claims.jsonl")
    assert message.startswith(
        f"omsign: error: lineage broken at base model tuned (sha256:{pipeline.digests['tuned']}): "
        f"required attestation scan"
    )
    assert f"{claims}:2" in message and "expired" in message
    # A fresh verdict for the fine-tuned model mends the chain.
    _scan(pipeline, "tuned", pipeline.b, age=dt.timedelta(0), valid=30 * day)
    assert pipeline.cli(cli, "--require-attestation", "scan").code == 0
    # The requirement applies to models; the datasets carry no verdict and need none.
    assert pipeline.lineage(require_attestations=["scan"]).verified


def test_a_good_copy_beside_a_tampered_one_holds_and_the_bad_one_is_noted(
    pipeline: Pipeline,
) -> None:
    good = pipeline.path("models", "zz-base-copy")
    shutil.copytree(pipeline.path("models", "base"), good)
    weights = pipeline.path("models", "base", "weights.bin")
    weights.write_bytes(weights.read_bytes()[::-1])
    found = pipeline.lineage()
    assert found.verified, found.tree()
    node = found.node(pipeline.digests["base"])
    assert node.location == str(good)
    assert node.notes[0] == (
        f"another copy does not verify: {pipeline.path('models', 'base')}: "
        "content does not match its signature: changed: weights.bin"
    )
