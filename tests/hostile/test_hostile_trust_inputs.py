"""Bad trust inputs given by mistake: keys, anchors and trust configs.

An unknown key algorithm, a device, a FIFO, a huge or deeply nested file end as a usage
error (exit 2): one line naming the file, no traceback, bounded reads.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from helpers.fixtures import CliResult, KeyPair
from helpers.pki import (
    build_certificate,
    issue_leaf,
    make_ca,
    make_dsa_key,
    make_ed448_key,
    make_ed25519_key,
    make_rsa_key,
    write_certs,
    write_public_key,
)
from hostile.signed import deadline
from omsign.errors import KeyLoadError

Cli = Callable[..., CliResult]

_ED25519_OID = bytes([0x06, 0x03, 0x2B, 0x65, 0x70])  # 1.3.101.112
_UNKNOWN_OID = bytes([0x06, 0x03, 0x2B, 0x65, 0x63])  # 1.3.101.99: no such algorithm


def _usage_error(result: CliResult, *needles: str) -> None:
    assert result.code == 2, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("omsign: error: "), result.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert "Traceback" not in result.err


def _pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN {label}-----\n{body}-----END {label}-----\n".encode()


def _unknown_algorithm_public_key(path: Path) -> Path:
    der = (
        make_ed25519_key()
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert der.count(_ED25519_OID) == 1
    path.write_bytes(_pem("PUBLIC KEY", der.replace(_ED25519_OID, _UNKNOWN_OID)))
    return path


def _unknown_algorithm_certificate(path: Path) -> Path:
    """A CA certificate (signed by a P-256 root) whose own key has an unknown algorithm."""
    from cryptography import x509

    from helpers.pki import key_usage_extension

    ca = build_certificate(
        subject="Unknown-key CA",
        key=make_ed25519_key(),
        issuer=make_ca("EC root"),
        not_before=None,
        not_after=None,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (key_usage_extension(cert_sign=True), True),
        ],
    )
    der = ca.cert.public_bytes(serialization.Encoding.DER)
    assert der.count(_ED25519_OID) == 1
    path.write_bytes(_pem("CERTIFICATE", der.replace(_ED25519_OID, _UNKNOWN_OID)))
    return path


# --- keys and anchors of an algorithm omsign cannot use -------------------------------------


def test_a_public_key_of_an_unknown_algorithm_is_a_usage_error(
    tmp_path: Path, signed: tuple[Path, dict[str, Any]], cli: Cli
) -> None:
    model, _ = signed
    key = _unknown_algorithm_public_key(tmp_path / "unknown.pub")
    _usage_error(cli("verify", model, "--key", key), str(key), "unsupported public key algorithm")
    import omsign

    with pytest.raises(KeyLoadError, match="unsupported public key algorithm"):
        omsign.verify(model, key=key)


@pytest.mark.parametrize(
    "make",
    [
        make_ed25519_key,
        make_ed448_key,
        make_rsa_key,
        make_dsa_key,
    ],
    ids=["ed25519", "ed448", "rsa", "dsa"],
)
def test_a_public_key_of_another_algorithm_is_a_usage_error(
    tmp_path: Path, signed: tuple[Path, dict[str, Any]], cli: Cli, make: Callable[[], Any]
) -> None:
    model, _ = signed
    key = tmp_path / "other.pub"
    write_public_key(key, make())
    _usage_error(cli("verify", model, "--key", key), str(key), "not an elliptic-curve key")


def test_an_anchor_of_an_unknown_algorithm_is_a_usage_error(
    tmp_path: Path, model: Path, cli: Cli
) -> None:
    root = make_ca("Root").write(tmp_path / "pki", "root")
    leaf = issue_leaf(root).write(tmp_path / "pki", "leaf")
    assert cli("sign", model, "--key", leaf.key_path, "--cert", leaf.cert_path).code == 0
    bad = _unknown_algorithm_certificate(tmp_path / "unknown-ca.pem")
    both = tmp_path / "both.pem"
    both.write_bytes(root.cert_path.read_bytes() + bad.read_bytes())  # type: ignore[union-attr]
    for anchors in (bad, both):
        result = cli("verify", model, "--cert-chain", anchors)
        _usage_error(result, str(anchors), "Unknown-key CA", "has a key omsign cannot use")
    signing = cli(
        "sign", model, "--key", leaf.key_path, "--cert", leaf.cert_path, "--cert-chain", bad
    )
    _usage_error(signing, str(bad), "has a key omsign cannot use")
    import omsign

    with pytest.raises(KeyLoadError, match="has a key omsign cannot use"):
        omsign.verify(model, cert_chain=bad)


def test_a_bundle_certificate_of_an_unknown_algorithm_fails_verification(
    tmp_path: Path, model: Path, cli: Cli
) -> None:
    """In the bundle (attacker's input) it is a failed verification, not a crash."""
    root = make_ca("Root").write(tmp_path / "pki", "root")
    leaf = issue_leaf(root).write(tmp_path / "pki", "leaf")
    assert cli("sign", model, "--key", leaf.key_path, "--cert", leaf.cert_path).code == 0
    bundle = json.loads((model / "model.sig").read_text())
    bad = _unknown_algorithm_certificate(tmp_path / "unknown-ca.pem").read_text()
    der = base64.b64decode("".join(bad.splitlines()[1:-1]))
    certs = bundle["verificationMaterial"]["x509CertificateChain"]["certificates"]
    original = list(certs)
    for placed in ([*original, {"rawBytes": base64.b64encode(der).decode()}],
                   [{"rawBytes": base64.b64encode(der).decode()}]):  # fmt: skip
        certs[:] = placed
        (model / "model.sig").write_text(json.dumps(bundle))
        result = cli("verify", model, "--cert-chain", root.cert_path)
        assert result.code == 1, result
        assert "Traceback" not in result.err
        assert len(result.err.strip().splitlines()) == 1


# --- files that are not small regular files ------------------------------------------------


@pytest.mark.parametrize("option", ["--key", "--cert-chain", "--tsa-cert"])
def test_a_device_as_trust_input_is_refused_before_reading(
    model: Path, p256: KeyPair, cli: Cli, option: str
) -> None:
    args = [option, "/dev/zero"]
    if option == "--tsa-cert":
        args = ["--key", str(p256.public), *args]
    with deadline(10):
        result = cli("verify", model, *args)
    _usage_error(result, "/dev/zero: not a regular file")


def test_a_fifo_as_key_is_refused_without_blocking(tmp_path: Path, model: Path, cli: Cli) -> None:
    fifo = tmp_path / "key.pem"
    os.mkfifo(fifo)
    with deadline(10):
        result = cli("verify", model, "--key", fifo)
        signing = cli("sign", model, "--key", fifo)
    _usage_error(result, f"{fifo}: not a regular file")
    _usage_error(signing, f"{fifo}: not a regular file")


def test_a_huge_key_file_is_refused_before_reading(tmp_path: Path, model: Path, cli: Cli) -> None:
    huge = tmp_path / "huge.pem"
    with huge.open("wb") as f:
        f.truncate(1 << 30)  # sparse: a gigabyte of nothing
    with deadline(10):
        result = cli("verify", model, "--key", huge)
    _usage_error(result, f"{huge}: too large for a public key file")
    import omsign

    with pytest.raises(KeyLoadError, match="too large"):
        omsign.verify(model, key=huge)


def _trust_config_cases(
    model: Path, p256: KeyPair, cli: Cli, copy_vector: Callable[[str], Path]
) -> list[list[str | Path]]:
    """Verifications that read a trust config: a key signature, and a Sigstore one."""
    assert cli("sign", model, "--key", p256.private).code == 0
    sigstore = copy_vector("v1.1.0-sigstore")
    return [
        [model, "--key", p256.public],
        [sigstore, "--identity", "someone@example.com", "--issuer", "https://issuer.example"],
    ]


@pytest.mark.parametrize("shape", ["deep", "wide"])
def test_a_pathological_trust_config_is_a_usage_error(
    tmp_path: Path,
    model: Path,
    p256: KeyPair,
    cli: Cli,
    copy_vector: Callable[[str], Path],
    shape: str,
) -> None:
    config = tmp_path / "trust.json"
    text = "[" * 100_000 + "]" * 100_000 if shape == "deep" else "[" + "0," * 200_000 + "0]"
    config.write_text(text)
    for args in _trust_config_cases(model, p256, cli, copy_vector):
        with deadline(10):
            result = cli("verify", *args, "--trust-config", config)
        _usage_error(result, str(config))
    import omsign

    with pytest.raises(KeyLoadError, match=str(config)):
        omsign.verify(model, key=p256.public, trust_config=config)


def test_a_device_as_trust_config_is_refused(
    model: Path, p256: KeyPair, cli: Cli, copy_vector: Callable[[str], Path]
) -> None:
    for args in _trust_config_cases(model, p256, cli, copy_vector):
        with deadline(10):
            result = cli("verify", *args, "--trust-config", "/dev/zero")
        _usage_error(result, "/dev/zero: not a regular file")


def test_well_formed_anchors_still_load(tmp_path: Path) -> None:
    from omsign.backends._pem import load_certificates

    root = make_ca("Root")
    path = write_certs(tmp_path / "chain.pem", [root.cert, make_ca("Other").cert])
    assert [c.subject for c in load_certificates(path)] == [
        root.cert.subject,
        load_certificates(path)[1].subject,
    ]
