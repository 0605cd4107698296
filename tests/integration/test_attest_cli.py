"""``omsign attest``: predicates signed about a model's root digest, and bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.fixtures import CliResult, KeyPair

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
        (None, "eval.json: predicate file not found"),
        (b'{"accuracy": ', "eval.json: the predicate is not valid JSON (line 1"),
        (b"[1, 2]", "eval.json: the predicate is not a JSON object"),
        (b'{"a": 1, "a": 2}', "eval.json: the predicate is not valid JSON (duplicate key 'a')"),
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
