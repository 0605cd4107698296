"""What the command line says: file names, differences, wrong key kinds, usage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.fixtures import CliResult, KeyPair, make_model
from helpers.pki import issue_leaf, make_ca
from helpers.reports import parse_report

Cli = Callable[..., CliResult]


@pytest.mark.parametrize("compat", [[], ["--compat", "model-signing"]])
def test_a_single_file_model_is_named_never_dot(
    cli: Cli, tmp_path: Path, p256: KeyPair, compat: list[str]
) -> None:
    model = tmp_path / "weights.bin"
    model.write_bytes(b"signed")
    assert cli("sign", model, "--key", p256.private, *compat).code == 0
    model.write_bytes(b"tampered")
    result = cli("verify", model, "--key", p256.public)
    assert result.code == 1
    assert "changed: weights.bin" in result.err
    assert ": ." not in result.err
    report = cli("verify", model, "--key", p256.public, "--json")
    assert parse_report(report.out)["difference"]["changed"] == ["weights.bin"]


def test_every_difference_is_printed_once(cli: Cli, tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a", "b.bin": b"b", "c.bin": b"c"})
    assert cli("sign", model, "--key", p256.private).code == 0
    (model / "a.bin").write_bytes(b"A")
    (model / "b.bin").unlink()
    (model / "new.bin").write_bytes(b"n")
    result = cli("verify", model, "--key", p256.public)
    assert result.code == 1
    for line in ("changed: a.bin", "missing: b.bin", "unsigned: new.bin"):
        assert result.err.count(line) == 1, result.err
    assert result.err.count("a.bin") == 1
    assert "1 changed, 1 missing, 1 unsigned" in result.err


def test_a_long_difference_ends_with_a_count(cli: Cli, tmp_path: Path, p256: KeyPair) -> None:
    names = {f"f{i:04d}.bin": b"%d" % i for i in range(1_300)}
    model = make_model(tmp_path / "m", names)
    assert cli("sign", model, "--key", p256.private).code == 0
    for name in names:
        (model / name).write_bytes(b"x")
    result = cli("verify", model, "--key", p256.public)
    assert result.code == 1
    lines = result.err.splitlines()
    assert len(lines) < 30
    shown = [line for line in lines if line.strip().startswith("changed: ")]
    assert lines[-1].strip() == f"... and {1_300 - len(shown):,} more"
    assert "1,300 changed" in lines[0]
    everything = cli("verify", model, "--key", p256.public, "--verbose")
    listed = [line for line in everything.err.splitlines() if line.startswith("  changed: f")]
    assert len(listed) == 1_300


def test_long_partial_lists_end_with_a_count(cli: Cli, tmp_path: Path, p256: KeyPair) -> None:
    names = {f"f{i:03d}.bin": b"%d" % i for i in range(40)}
    model = make_model(tmp_path / "m", names)
    assert cli("sign", model, "--key", p256.private).code == 0
    for i in range(1, 40):
        (model / f"f{i:03d}.bin").unlink()
    result = cli("verify", model, "--key", p256.public, "--allow-missing")
    assert result.code == 0, result.err
    assert "absent: 39 file(s): f001.bin" in result.out
    assert result.out.rstrip().endswith("... and 29 more")


@pytest.mark.parametrize("before", [True, False])
def test_files_works_before_or_after_model(
    cli: Cli, tmp_path: Path, p256: KeyPair, before: bool
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a", "b.bin": b"b", "c.bin": b"c"})
    assert cli("sign", model, "--key", p256.private).code == 0
    (model / "c.bin").write_bytes(b"changed, but not checked")
    files = ["--files", "a.bin", "b.bin"]
    args = [*files, model] if before else [model, *files]
    result = cli("verify", *args, "--key", p256.public, "--json")
    assert result.code == 0, result.err
    report = parse_report(result.out)
    assert report["files"]["verified"] == ["a.bin", "b.bin"]
    assert report["files"]["unchecked"] == ["c.bin"]


def test_files_without_a_model_is_a_usage_error(cli: Cli, p256: KeyPair) -> None:
    result = cli("verify", "--key", p256.public, "--files", "a.bin")
    assert result.code == 2
    assert "MODEL" in result.err


def test_a_public_key_given_to_sign_gets_a_hint(cli: Cli, model: Path, p256: KeyPair) -> None:
    result = cli("sign", model, "--key", p256.public)
    assert result.code == 2
    assert f"{p256.public}: is a public key" in result.err
    assert "give the private key with --key" in result.err
    assert not (model / "model.sig").exists()


def test_a_certificate_given_to_verify_key_gets_a_hint(
    cli: Cli, model: Path, p256: KeyPair, tmp_path: Path
) -> None:
    cert = issue_leaf(make_ca("test CA")).write(tmp_path, "leaf").cert_path
    assert cert is not None
    assert cli("sign", model, "--key", p256.private).code == 0
    result = cli("verify", model, "--key", cert)
    assert result.code == 2
    assert f"{cert}: is a certificate, not a public key" in result.err
    assert "--cert-chain" in result.err


def test_a_certificate_given_to_sign_key_gets_a_hint(cli: Cli, model: Path, tmp_path: Path) -> None:
    cert = issue_leaf(make_ca("test CA")).write(tmp_path, "leaf").cert_path
    assert cert is not None
    result = cli("sign", model, "--key", cert)
    assert result.code == 2
    assert f"{cert}: is a certificate" in result.err
    assert "--cert" in result.err


@pytest.mark.parametrize("command", ["sign", "verify", "digest", "inspect"])
def test_an_unknown_flag_prints_the_command_usage(cli: Cli, model: Path, command: str) -> None:
    result = cli(command, model, "--no-such-flag")
    assert result.code == 2
    assert result.err.startswith(f"usage: omsign {command} ")
    assert "unrecognized arguments: --no-such-flag" in result.err


@pytest.mark.parametrize("single_file", [True, False])
def test_inspect_finds_a_models_signature(
    cli: Cli, tmp_path: Path, p256: KeyPair, single_file: bool
) -> None:
    if single_file:
        model = tmp_path / "weights.bin"
        model.write_bytes(b"weights")
        signature = tmp_path / "weights.bin.sig"
    else:
        model = make_model(tmp_path / "m", {"weights.bin": b"weights"})
        signature = model / "model.sig"
    assert cli("sign", model, "--key", p256.private).code == 0
    result = cli("inspect", model)
    assert result.code == 0, result.err
    assert f"signature:   {signature}" in result.out
    assert "weights.bin" in result.out
    as_json = cli("inspect", model, "--json")
    assert parse_report(as_json.out)["signature"] == str(signature)
