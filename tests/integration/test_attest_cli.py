"""``omsign attest``: predicates signed about a model's root digest, and bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.fixtures import CliResult, KeyPair
from helpers.reports import parse_report

Cli = Callable[..., CliResult]
EVAL = "https://example.com/evaluation/v1"


@pytest.fixture
def predicate(tmp_path: Path) -> Path:
    path = tmp_path / "eval.json"
    path.write_text('{"accuracy": 0.91}')
    return path


def test_attest_appends_to_claims_and_names_the_signed_root_digest(
    cli: Cli, model: Path, p256: KeyPair, predicate: Path
) -> None:
    signed = cli("sign", model, "--key", p256.private)
    assert signed.code == 0, signed.err
    args = ("attest", model, "--key", p256.private, "--predicate-type", EVAL)
    first = cli(*args, "--predicate", predicate)
    assert first.code == 0, first.err
    assert first.out == signed.out  # sha256:<the signed root digest>
    assert f"{model / 'claims.jsonl'}:1" in first.err
    second = cli(*args, "--predicate", predicate, "--json")
    assert second.code == 0, second.err
    report = json.loads(second.out)
    assert report["attestation"] == f"{model / 'claims.jsonl'}:2"
    assert report["root_digest"] == signed.out.strip()
    assert report["predicate_type"] == EVAL
    assert len((model / "claims.jsonl").read_bytes().splitlines()) == 2
    assert cli("verify", model, "--key", p256.public).code == 0  # claims are left out


def test_attest_output_writes_a_bundle_file(
    cli: Cli, model: Path, p256: KeyPair, predicate: Path, tmp_path: Path
) -> None:
    out = tmp_path / "eval.sig"
    result = cli(
        "attest",
        model,
        "--key",
        p256.private,
        "--predicate-type",
        EVAL,
        "--predicate",
        predicate,
        "--output",
        out,
    )
    assert result.code == 0, result.err
    assert json.loads(out.read_text())["mediaType"].startswith("application/vnd.dev.sigstore")
    assert not (model / "claims.jsonl").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "eval.json: the predicate file is not found"),
        (b'{"accuracy": ', "eval.json: the predicate file is not valid JSON (line 1"),
        (b"[1, 2]", "eval.json: the predicate file does not hold a JSON object"),
        (
            b'{"a": 1, "a": 2}',
            "eval.json: the predicate file is not valid JSON (duplicate key 'a')",
        ),
    ],
)
def test_bad_predicate_files_are_usage_errors(
    cli: Cli, model: Path, p256: KeyPair, tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "eval.json"
    if content is not None:
        path.write_bytes(content)
    result = cli(
        "attest", model, "--key", p256.private, "--predicate-type", EVAL, "--predicate", path
    )
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.err
    assert not (model / "claims.jsonl").exists()


def test_predicate_without_its_type_is_a_usage_error(
    cli: Cli, model: Path, p256: KeyPair, predicate: Path
) -> None:
    result = cli("attest", model, "--key", p256.private, "--predicate", predicate)
    assert result.code == 2
    assert "--predicate needs --predicate-type" in result.err


def test_missing_model_is_an_environment_error(
    cli: Cli, tmp_path: Path, p256: KeyPair, predicate: Path
) -> None:
    result = cli(
        "attest",
        tmp_path / "nothing",
        "--key",
        p256.private,
        "--predicate-type",
        EVAL,
        "--predicate",
        predicate,
    )
    assert result.code == 2
    assert "no such file or directory" in result.err


def test_provenance_model_card_and_bom_from_the_command_line(
    cli: Cli, model: Path, p256: KeyPair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GITHUB_ACTIONS", "GITLAB_CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # not a git checkout: no code is named
    base = tmp_path / "base"
    base.mkdir()
    (base / "w.bin").write_bytes(b"base")
    assert cli("sign", base, "--key", p256.private).code == 0
    base_digest = cli("digest", base).out.strip()
    assert cli("sign", model, "--key", p256.private).code == 0
    (tmp_path / "params.json").write_text('{"epochs": 3}')
    made = cli(
        "attest",
        model,
        "--key",
        p256.private,
        "--provenance",
        "--step",
        "fine-tune",
        "--base",
        base,
        "--parameters",
        tmp_path / "params.json",
        "--builder-id",
        "https://ci.example.com/me",
        "--json",
    )
    assert made.code == 0, made.err
    assert json.loads(made.out)["predicate_type"] == "https://slsa.dev/provenance/v1"
    (model / "README.md").write_text("---\nlicense: mit\n---\n# card\n")
    assert cli("sign", model, "--key", p256.private).code == 0
    assert (
        cli("attest", model, "--key", p256.private, "--model-card", model / "README.md").code == 0
    )
    assert cli("attest", model, "--key", p256.private, "--bom").code == 0
    inspected = cli("inspect", model, "--json")
    found = json.loads(inspected.out)["attestations"]
    assert [a["type"] for a in found] == ["provenance", "model-card", "bom"]
    assert found[0]["subject_digest"] != found[1]["subject_digest"]  # the card changed it
    from omsign.bundle import parse_bundle
    from omsign.intoto import parse

    first = (model / "claims.jsonl").read_bytes().splitlines()[0]
    predicate = parse(parse_bundle(first).payload).predicate
    assert predicate is not None
    (dep,) = predicate["buildDefinition"]["resolvedDependencies"]
    assert f"sha256:{dep['digest']['sha256']}" == base_digest
    assert predicate["buildDefinition"]["externalParameters"]["parameters"] == {"epochs": 3}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ((), "give exactly one predicate source"),
        (("--bom", "--provenance", "--step", "t"), "--provenance, --bom were given"),
        (("--bom", "--step", "train"), "--step: only with --provenance"),
        (("--provenance",), "--provenance needs --step"),
        (("--predicate-type", EVAL, "--bom"), "--predicate-type goes with --predicate"),
        (("--model-card", "missing.md"), "missing.md: the model card file is not found"),
    ],
)
def test_predicate_sources_are_strict(
    cli: Cli, model: Path, p256: KeyPair, flags: tuple[str, ...], message: str
) -> None:
    result = cli("attest", model, "--key", p256.private, *flags)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_inspect_lists_attestations_unverified(
    cli: Cli, model: Path, p256: KeyPair, predicate: Path, tmp_path: Path
) -> None:
    assert cli("sign", model, "--key", p256.private).code == 0
    args = ("--key", p256.private, "--predicate-type", EVAL, "--predicate", predicate)
    assert cli("attest", model, *args).code == 0
    with open(model / "claims.jsonl", "ab") as f:
        f.write(b"not a bundle\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "w.bin").write_bytes(b"other")
    assert cli("attest", other, *args, "--output", tmp_path / "other.sig").code == 0
    with open(model / "claims.jsonl", "ab") as f:  # another model's attestation, reused
        f.write(json.dumps(json.loads((tmp_path / "other.sig").read_text())).encode() + b"\n")
    inspected = cli("inspect", model, "--json")
    assert inspected.code == 0, inspected.err
    report = parse_report(inspected.out)
    good, bad, reused = report["attestations"]
    assert good["matches_signature"] is True and good["predicate_type"] == EVAL
    assert good["signer"].startswith("key sha256:")
    assert bad["location"].endswith("claims.jsonl:2") and "not valid UTF-8 JSON" in bad["error"]
    assert reused["matches_signature"] is False
    text = cli("inspect", model)
    assert "attestations: 3  (NOT verified" in text.out
    assert "does NOT match this signature" in text.out
