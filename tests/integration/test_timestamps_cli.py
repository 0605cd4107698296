"""RFC 3161 timestamps on key and certificate signatures, against a real TSA (openssl ts)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.fixtures import CliResult, KeyPair
from helpers.pki import issue_leaf, make_ca, make_ec_key
from helpers.reports import parse_report
from services.tsa import RunningTSA

Cli = Callable[..., CliResult]


@pytest.fixture
def short_lived(tmp_path: Path) -> dict[str, Path]:
    """A CA and a leaf certificate that expires six seconds from now."""
    root = make_ca("Timestamp Test Root").write(tmp_path / "pki", "root")
    now = dt.datetime.now(dt.timezone.utc)
    leaf = issue_leaf(
        root,
        make_ec_key("P-256"),
        not_before=now - dt.timedelta(minutes=1),
        not_after=now + dt.timedelta(seconds=6),
    ).write(tmp_path / "pki", "leaf")
    assert root.cert_path and leaf.cert_path and leaf.key_path
    return {"root": root.cert_path, "leaf": leaf.cert_path, "key": leaf.key_path}


def _wait_for_expiry(cert: Path) -> None:
    from cryptography import x509

    expiry = x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc
    time.sleep(max(0.0, (expiry - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 1.1)


def test_expired_certificate_verifies_with_a_trusted_timestamp_and_fails_without(
    cli: Cli, model: Path, short_lived: dict[str, Path], tsa: RunningTSA
) -> None:
    stamped = cli(
        "sign",
        model,
        "--key",
        short_lived["key"],
        "--cert",
        short_lived["leaf"],
        "--tsa-url",
        tsa.url,
    )
    assert stamped.code == 0, stamped.err
    plain = model.parent / "plain.sig"
    assert (
        cli(
            "sign",
            model,
            "--key",
            short_lived["key"],
            "--cert",
            short_lived["leaf"],
            "--signature",
            plain,
        ).code
        == 0
    )
    _wait_for_expiry(short_lived["leaf"])

    ok = cli(
        "verify", model, "--cert-chain", short_lived["root"], "--tsa-cert", tsa.root_path, "--json"
    )
    assert ok.code == 0, ok.err
    assert parse_report(ok.out)["signed_at"] is not None

    no_anchor = cli("verify", model, "--cert-chain", short_lived["root"])
    assert no_anchor.code == 1
    assert "not valid at" in no_anchor.err
    assert "no timestamp authority is trusted" in no_anchor.err

    no_stamp = cli(
        "verify",
        model,
        "--signature",
        plain,
        "--cert-chain",
        short_lived["root"],
        "--tsa-cert",
        tsa.root_path,
    )
    assert no_stamp.code == 1
    assert "not valid at" in no_stamp.err


def test_timestamp_from_an_untrusted_authority_is_rejected(
    cli: Cli, model: Path, tmp_path: Path, tsa: RunningTSA, untrusted_tsa: RunningTSA
) -> None:
    root = make_ca("Root").write(tmp_path / "pki", "root")
    leaf = issue_leaf(root, make_ec_key("P-256")).write(tmp_path / "pki", "leaf")
    assert (
        cli(
            "sign",
            model,
            "--key",
            leaf.key_path,
            "--cert",
            leaf.cert_path,
            "--tsa-url",
            untrusted_tsa.url,
        ).code
        == 0
    )
    result = cli("verify", model, "--cert-chain", root.cert_path, "--tsa-cert", tsa.root_path)
    assert result.code == 1
    assert "untrusted authority" in result.err


def test_key_signature_timestamp_is_checked_and_shown(
    cli: Cli, model: Path, p256: KeyPair, tsa: RunningTSA, untrusted_tsa: RunningTSA
) -> None:
    assert cli("sign", model, "--key", p256.private, "--tsa-url", tsa.url).code == 0
    ok = cli("verify", model, "--key", p256.public, "--tsa-cert", tsa.root_path, "--json")
    assert ok.code == 0, ok.err
    assert parse_report(ok.out)["signed_at"]
    bad = cli("verify", model, "--key", p256.public, "--tsa-cert", untrusted_tsa.root_path)
    assert bad.code == 1
    inspected = parse_report(cli("inspect", model / "model.sig", "--json").out)
    assert len(inspected["timestamps"]) == 1
    assert inspected["timestamps"][0]["authority"]


def test_unreachable_timestamp_authority_is_an_environment_error(
    cli: Cli, model: Path, p256: KeyPair
) -> None:
    result = cli("sign", model, "--key", p256.private, "--tsa-url", "http://127.0.0.1:9/tsa")
    assert result.code == 2
    assert "127.0.0.1:9" in result.err
    assert not (model / "model.sig").exists()


def test_timestamp_authority_trusted_through_a_trust_config(
    cli: Cli, model: Path, p256: KeyPair, local_sigstore: object, tsa: RunningTSA
) -> None:
    url = f"{local_sigstore.url}/api/v1/timestamp"  # type: ignore[attr-defined]
    config = local_sigstore.trust_config  # type: ignore[attr-defined]
    assert cli("sign", model, "--key", p256.private, "--tsa-url", url).code == 0
    ok = cli("verify", model, "--key", p256.public, "--trust-config", config, "--json")
    assert ok.code == 0, ok.err
    assert parse_report(ok.out)["signed_at"]
    other = cli("verify", model, "--key", p256.public, "--tsa-cert", tsa.root_path)
    assert other.code == 1
