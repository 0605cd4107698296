"""``omsign attest --scan`` and ``omsign verify --require-attestation``, end to end."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import CliResult, KeyPair
from helpers.pickles import hostile_pickle, hostile_torch_zip, need_scanner, safetensors_model
from helpers.pki import make_ec_key, write_private_key
from helpers.reports import parse_report
from omsign.attestations import ATTESTATION_TYPES
from omsign.scanners import SCANNERS

Cli = Callable[..., CliResult]


@pytest.fixture
def clean(tmp_path: Path, p256: KeyPair) -> Path:
    model = safetensors_model(tmp_path / "clean")
    omsign.sign(model, key=p256.private)
    return model


@pytest.fixture
def hostile(tmp_path: Path, p256: KeyPair) -> Path:
    model = safetensors_model(tmp_path / "hostile")
    (model / "extra.pkl").write_bytes(hostile_pickle())
    (model / "pytorch_model.bin").write_bytes(hostile_torch_zip())
    omsign.sign(model, key=p256.private)
    return model


@pytest.mark.parametrize("scanner", SCANNERS)
def test_a_clean_model_passes_each_scanner(
    cli: Cli, clean: Path, p256: KeyPair, scanner: str
) -> None:
    need_scanner(scanner)
    made = cli("attest", clean, "--key", p256.private, "--scan", scanner)
    assert made.code == 0, made.err
    assert f"{scanner} " in made.err and ": PASSED (0 file(s) scanned, 2 skipped)" in made.err
    ok = cli("verify", clean, "--key", p256.public, "--require-attestation", "scan")
    assert ok.code == 0, ok.err
    assert "attestations: scan: verified" in ok.out


@pytest.mark.parametrize("scanner", SCANNERS)
def test_a_hostile_model_fails_each_scanner(
    cli: Cli, hostile: Path, p256: KeyPair, scanner: str
) -> None:
    need_scanner(scanner)
    made = cli("attest", hostile, "--key", p256.private, "--scan", scanner)
    assert made.code == 0, made.err  # the verdict is attested, whatever it says
    assert "FAILED" in made.err and "extra.pkl" in made.err
    failed = cli("verify", hostile, "--key", p256.public, "--require-attestation", "scan")
    assert failed.code == 1
    (line,) = failed.err.strip().splitlines()
    assert line.startswith("omsign: error: ")
    assert f"required attestation scan ({ATTESTATION_TYPES['scan']})" in line
    assert f"the {scanner} verdict is FAILED (extra.pkl: " in line
    assert "pytorch_model.bin: " in line


def test_the_json_report_lists_every_attestation(
    cli: Cli, hostile: Path, p256: KeyPair, tmp_path: Path
) -> None:
    need_scanner("picklescan")
    stranger = write_private_key(tmp_path / "stranger.pem", make_ec_key("P-256"))
    assert cli("attest", hostile, "--key", stranger, "--scan", "picklescan").code == 0
    assert cli("attest", hostile, "--key", p256.private, "--scan", "picklescan").code == 0
    plain = parse_report(cli("verify", hostile, "--key", p256.public, "--json").out)
    assert plain["verified"] is True
    untrusted, trusted = plain["attestations"]
    assert not untrusted["verified"] and "key" in untrusted["reason"]
    assert trusted["verified"] and trusted["type"] == "scan"
    failed = cli("verify", hostile, "--key", p256.public, "--require-attestation", "scan", "--json")
    assert failed.code == 1
    report = parse_report(failed.out)
    assert report["kind"] == "AttestationError"
    assert [a["verified"] for a in report["attestations"]] == [False, True]


def test_an_expired_verdict_fails(cli: Cli, clean: Path, p256: KeyPair) -> None:
    need_scanner("picklescan")
    made = cli(
        "attest", clean, "--key", p256.private, "--scan", "picklescan", "--scan-valid-for", "1s"
    )
    assert made.code == 0, made.err
    time.sleep(1.1)
    failed = cli("verify", clean, "--key", p256.public, "--require-attestation", "scan")
    assert failed.code == 1
    assert "it expired at" in failed.err


def test_max_age_without_a_proven_time_fails(cli: Cli, clean: Path, p256: KeyPair) -> None:
    need_scanner("picklescan")
    assert cli("attest", clean, "--key", p256.private, "--scan", "picklescan").code == 0
    failed = cli("verify", clean, "--key", p256.public, "--require-attestation", "scan:max-age=7d")
    assert failed.code == 1
    assert "not proven by a trusted timestamp or log entry (it claims " in failed.err


def test_a_missing_scanner_is_one_line_naming_its_extra(
    cli: Cli, clean: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fickling", None)  # as if it were not installed
    result = cli("attest", clean, "--key", p256.private, "--scan", "fickling")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "omsign: error: the fickling scanner is not installed; "
        "install it with: pip install 'omsign[scan-fickling]'"
    ]
    assert not (clean / "claims.jsonl").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--require-attestation", "scan:max-age=soon"], "'soon' is not a duration"),
        (["--require-attestation", "scna"], "unknown attestation type 'scna'"),
        (["--require-attestation", "scan:min-age=1d"], "unknown attestation option 'min-age'"),
    ],
)
def test_bad_requirements_are_usage_errors(
    cli: Cli, clean: Path, p256: KeyPair, flags: list[str], message: str
) -> None:
    result = cli("verify", clean, "--key", p256.public, *flags)
    assert result.code == 2
    assert message in result.err


def test_scan_and_a_predicate_file_are_exclusive(
    cli: Cli, clean: Path, p256: KeyPair, tmp_path: Path
) -> None:
    predicate = tmp_path / "p.json"
    predicate.write_text(json.dumps({"a": 1}))
    result = cli(
        "attest", clean, "--key", p256.private, "--scan", "picklescan",
        "--predicate-type", "https://example.com/x", "--predicate", predicate,
    )  # fmt: skip
    assert result.code == 2
    assert "give exactly one predicate source" in result.err
    assert "--predicate, --scan were given" in result.err


def test_an_attestation_of_another_type_fails_the_requirement(
    cli: Cli, clean: Path, p256: KeyPair, tmp_path: Path
) -> None:
    predicate = tmp_path / "eval.json"
    predicate.write_text(json.dumps({"accuracy": 0.9}))
    evaluation = "https://example.com/evaluation/v1"
    made = cli(
        "attest", clean, "--key", p256.private,
        "--predicate-type", evaluation, "--predicate", predicate,
    )  # fmt: skip
    assert made.code == 0, made.err
    failed = cli("verify", clean, "--key", p256.public, "--require-attestation", "provenance")
    assert failed.code == 1
    assert "required attestation provenance (https://slsa.dev/provenance/v1): none found; " in (
        failed.err
    )
    assert f"claims.jsonl:1 ({evaluation})" in failed.err
    ok = cli("verify", clean, "--key", p256.public, "--require-attestation", evaluation)
    assert ok.code == 0, ok.err
