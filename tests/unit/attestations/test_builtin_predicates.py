"""The built-in predicates: provenance, model card, bill of materials."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from omsign.errors import MalformedSignatureError, ModelError, UsageError
from omsign.predicates._slsa import read_provenance

BUILDER = "https://ci.example.com/runner"


def test_provenance_names_bases_and_datasets_by_root_digest(tmp_path: Path, p256: KeyPair) -> None:
    base = make_model(tmp_path / "base", {"w.bin": b"base weights"})
    data = make_model(tmp_path / "data", {"train.csv": b"x,y\n1,2\n"})
    signed = omsign.sign(base, key=p256.private, hash_algorithm="blake3")
    predicate = omsign.provenance_predicate(
        step="fine-tune",
        base=[base],
        dataset=[data],
        code="https://git.example.com/org/train@" + "ab" * 20,
        parameters={"lr": 0.1},
        builder_id=BUILDER,
        environ={},
        cwd=tmp_path,
    )
    deps = predicate["buildDefinition"]["resolvedDependencies"]
    assert deps[0] == {
        "name": "base",
        "uri": str(base),
        "digest": {"sha256": signed.root_digest},  # hashed as its signature was (blake3)
        "annotations": {"omsign.kind": "model"},
    }
    assert deps[1]["digest"] == {"sha256": omsign.digest(data)}
    assert deps[1]["annotations"] == {"omsign.kind": "dataset"}
    assert deps[2]["digest"] == {"gitCommit": "ab" * 20}
    read = read_provenance(predicate)
    assert read.step == "fine-tune" and read.builder_id == BUILDER
    assert [d.kind for d in read.dependencies] == ["model", "dataset", "code"]
    assert read.parameters == {"lr": 0.1}
    assert predicate["buildDefinition"]["externalParameters"]["step"] == "fine-tune"


def test_the_builder_comes_from_github_actions_or_gitlab_ci(tmp_path: Path) -> None:
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "org/repo",
        "GITHUB_WORKFLOW_REF": "org/repo/.github/workflows/train.yml@refs/heads/main",
        "GITHUB_RUN_ID": "42",
        "GITHUB_RUN_ATTEMPT": "2",
        "GITHUB_SHA": "cd" * 20,
    }
    made = omsign.provenance_predicate(step="train", environ=github, cwd=tmp_path)
    run = made["runDetails"]
    assert run["builder"]["id"] == (
        "https://github.com/org/repo/.github/workflows/train.yml@refs/heads/main"
    )
    assert (
        run["metadata"]["invocationId"] == "https://github.com/org/repo/actions/runs/42/attempts/2"
    )
    (code,) = made["buildDefinition"]["resolvedDependencies"]
    assert (
        code["uri"] == "git+https://github.com/org/repo"
        and code["digest"]["gitCommit"] == "cd" * 20
    )
    gitlab = {
        "GITLAB_CI": "true",
        "CI_SERVER_URL": "https://gitlab.example.com",
        "CI_PROJECT_PATH": "org/repo",
        "CI_RUNNER_ID": "7",
        "CI_JOB_URL": "https://gitlab.example.com/org/repo/-/jobs/9",
    }
    made = omsign.provenance_predicate(step="train", environ=gitlab, cwd=tmp_path)
    assert made["runDetails"]["builder"]["id"] == "https://gitlab.example.com/org/repo/-/runners/7"
    with pytest.raises(UsageError, match="no builder"):
        omsign.provenance_predicate(step="train", environ={}, cwd=tmp_path)


def test_the_code_is_the_git_checkout_it_runs_in(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "train.py").write_text("print('train')\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "train"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    made = omsign.provenance_predicate(step="train", builder_id=BUILDER, environ={}, cwd=repo)
    (code,) = made["buildDefinition"]["resolvedDependencies"]
    assert code["digest"] == {"gitCommit": head}
    assert code["annotations"] == {"omsign.kind": "code"}
    outside = omsign.provenance_predicate(
        step="train", builder_id=BUILDER, environ={}, cwd=tmp_path
    )
    assert outside["buildDefinition"]["resolvedDependencies"] == []


@pytest.mark.parametrize("code", ["https://x/y", "https://x/y@main", "@" + "ab" * 20])
def test_code_must_name_a_full_commit(tmp_path: Path, code: str) -> None:
    with pytest.raises(UsageError, match="URI@COMMIT"):
        omsign.provenance_predicate(step="t", code=code, builder_id=BUILDER, cwd=tmp_path)


def test_parameters_from_json_or_toml(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text("lr = 0.1\n[sched]\nwarmup = 100\nday = 2024-01-02\n")
    made = omsign.provenance_predicate(
        step="t", parameters=tmp_path / "p.toml", builder_id=BUILDER, environ={}, cwd=tmp_path
    )
    params = made["buildDefinition"]["externalParameters"]["parameters"]
    assert params == {"lr": 0.1, "sched": {"warmup": 100, "day": "2024-01-02"}}
    (tmp_path / "p.json").write_text('{"lr": ')
    with pytest.raises(UsageError, match=r"p\.json: the parameters file is not valid JSON"):
        omsign.provenance_predicate(
            step="t", parameters=tmp_path / "p.json", builder_id=BUILDER, cwd=tmp_path
        )
    (tmp_path / "bad.toml").write_text("lr = = 1")
    with pytest.raises(UsageError, match=r"bad\.toml: the parameters file is not valid TOML"):
        omsign.provenance_predicate(
            step="t", parameters=tmp_path / "bad.toml", builder_id=BUILDER, cwd=tmp_path
        )


def test_a_missing_base_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="nothing: no such file or directory"):
        omsign.provenance_predicate(
            step="t", base=[tmp_path / "nothing"], builder_id=BUILDER, cwd=tmp_path
        )


def test_read_provenance_rejects_a_model_without_its_digest() -> None:
    made = {
        "buildDefinition": {
            "buildType": "x",
            "externalParameters": {"step": "t"},
            "resolvedDependencies": [
                {"name": "b", "digest": {"md5": "00"}, "annotations": {"omsign.kind": "model"}}
            ],
        },
        "runDetails": {"builder": {"id": BUILDER}},
    }
    with pytest.raises(MalformedSignatureError, match="without its sha256 root digest"):
        read_provenance(made)


CARD = b"""---
license: apache-2.0
base_model: org/base
datasets: [org/data]
model-index:
  - name: m
    results: []
released: 2024-05-01
---
# My model
"""


def test_model_card_metadata(tmp_path: Path) -> None:
    card = tmp_path / "README.md"
    card.write_bytes(CARD)
    predicate = omsign.model_card_predicate(card)
    assert predicate["metadata"]["license"] == "apache-2.0"
    assert predicate["metadata"]["released"] == "2024-05-01"
    assert predicate["metadata"]["datasets"] == ["org/data"]
    assert predicate["file"]["name"] == "README.md"
    json.dumps(predicate)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"# no metadata\n", "does not begin with a '---' line"),
        (b"---\nlicense: x\n", "no closing '---' line"),
        (b"---\n- a list\n---\n", "not a mapping"),
        (b"---\na: &x [1, 2]\nb: *x\n---\n", "aliases"),
        (b"---\na: !!python/object:os.system ls\n---\n", "not valid YAML"),
        (b"---\na: [\n---\n", "not valid YAML"),
        (b"---\na: .nan\n---\n", "JSON cannot"),
    ],
)
def test_bad_model_cards(tmp_path: Path, content: bytes, message: str) -> None:
    card = tmp_path / "README.md"
    card.write_bytes(content)
    with pytest.raises(UsageError, match=message) as caught:
        omsign.model_card_predicate(card)
    assert str(card) in str(caught.value)


def test_a_model_card_is_bounded(tmp_path: Path) -> None:
    card = tmp_path / "README.md"
    card.write_bytes(b"---\na: 1\n---\n" + b"x" * (1 << 20))
    with pytest.raises(UsageError, match="larger than 1 MiB"):
        omsign.model_card_predicate(card)


def test_bom_hashes_are_the_oms_resources(model: Path, p256: KeyPair) -> None:
    omsign.sign(model, key=p256.private)
    made = omsign.attest(
        model, key=p256.private, predicate_type="bom", predicate=omsign.bom_predicate
    )
    verified = omsign.verify(model, key=p256.public)
    from omsign.attestations import check_attestations
    from omsign.sources import resolve_source
    from omsign.storage import resolve_store

    (found,) = check_attestations(
        resolve_store(resolve_source(model)),
        verified.root_digest,
        omsign.make_policy(key=p256.public),
    )
    assert found.verified and found.type_name == "bom"
    bom = found.predicate
    assert bom is not None and bom["specVersion"] == "1.6"
    assert bom["metadata"]["component"]["type"] == "machine-learning-model"
    assert bom["metadata"]["component"]["hashes"] == [
        {"alg": "SHA-256", "content": made.root_digest}
    ]
    files = {c["name"]: c["hashes"][0] for c in bom["components"]}
    assert files == {
        item.name: {"alg": "SHA-256", "content": item.digest.hex()}
        for item in verified.manifest.items
    }


def test_bom_of_shards_lists_each_range(model: Path, p256: KeyPair) -> None:
    omsign.sign(model, key=p256.private, hash_algorithm="blake2b", shard_size=100_000)
    made = omsign.attest(
        model, key=p256.private, predicate_type="bom", predicate=omsign.bom_predicate
    )
    from omsign.bundle import parse_bundle
    from omsign.intoto import parse

    line = (model / "claims.jsonl").read_bytes().splitlines()[0]
    bom = parse(parse_bundle(line).payload).predicate
    assert bom is not None
    shards = [c for c in bom["components"] if c["name"] == "model.safetensors"]
    assert [c["properties"][0]["value"] for c in shards] == [
        "0:100000",
        "100000:200000",
        "200000:300000",
    ]
    assert {c["hashes"][0]["alg"] for c in bom["components"]} == {"BLAKE2b-512"}
    assert made.root_digest == bom["metadata"]["component"]["hashes"][0]["content"]
