"""AWS KMS keys against a real KMS-compatible server (moto's, started by the tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

import omsign
from helpers.fixtures import make_model
from omsign.backends import load_signing_key
from omsign.backends._awskms import parse_awskms_uri
from omsign.errors import BackendUnavailableError, IntegrityError, KeyLoadError, UsageError


def _export(uri: str, out: Path) -> Path:
    key = load_signing_key(uri, lambda _prompt: None)
    out.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return out


@pytest.mark.parametrize("spec", ["ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521"])
def test_sign_with_kms_key_verifies_with_exported_public_key(
    spec: str, make_kms_key: Callable[..., str], tmp_path: Path
) -> None:
    model = make_model(tmp_path / "model")
    uri = f"awskms:///{make_kms_key(spec)}"
    public = _export(uri, tmp_path / "public.pem")
    omsign.sign(model, key=uri)
    result = omsign.verify(model, key=public)
    assert result.method == "key"
    (model / "config.json").write_text("tampered")
    with pytest.raises(IntegrityError):
        omsign.verify(model, key=public)


def test_alias_and_arn_forms_name_the_same_key(
    make_kms_key: Callable[..., str], tmp_path: Path
) -> None:
    key_id = make_kms_key("ECC_NIST_P256", alias="model-signing")
    by_alias = load_signing_key("awskms:///alias/model-signing", lambda _p: None)
    by_id = load_signing_key(f"awskms:///{key_id}", lambda _p: None)
    assert by_alias.public_key() == by_id.public_key()


def test_large_statement_is_signed_as_a_digest(
    make_kms_key: Callable[..., str], tmp_path: Path
) -> None:
    # More than 4,096 bytes of PAE: KMS takes it only as a DIGEST message.
    files = {f"shard-{i:04d}-of-0200.safetensors": bytes([i % 256]) * 16 for i in range(200)}
    model = make_model(tmp_path / "model", files)
    uri = f"awskms:///{make_kms_key('ECC_NIST_P384')}"
    signed = omsign.sign(model, key=uri)
    assert len(signed.bundle["dsseEnvelope"]["payload"]) > 4096
    omsign.verify(model, key=_export(uri, tmp_path / "public.pem"))


@pytest.mark.parametrize(
    ("spec", "usage", "words"),
    [
        ("RSA_2048", "SIGN_VERIFY", "RSA_2048"),
        ("ECC_SECG_P256K1", "SIGN_VERIFY", "ECC_SECG_P256K1"),
        ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT"),
    ],
)
def test_keys_that_cannot_sign_ecdsa_are_refused(
    spec: str, usage: str, words: str, make_kms_key: Callable[..., str]
) -> None:
    uri = f"awskms:///{make_kms_key(spec, usage=usage)}"
    with pytest.raises(KeyLoadError, match=words):
        load_signing_key(uri, lambda _p: None)


def test_disabled_key_is_a_key_error(make_kms_key: Callable[..., str]) -> None:
    import boto3

    key_id = make_kms_key("ECC_NIST_P256")
    boto3.client("kms").disable_key(KeyId=key_id)
    with pytest.raises(KeyLoadError, match="Disabled, not Enabled"):
        load_signing_key(f"awskms:///{key_id}", lambda _p: None)


def test_missing_key_is_a_key_error(aws_env: str) -> None:
    with pytest.raises(KeyLoadError, match="no such key"):
        load_signing_key("awskms:///alias/not-there", lambda _p: None)


def test_no_credentials_is_a_key_error(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role lookup
    with pytest.raises(KeyLoadError, match="no AWS credentials"):
        load_signing_key("awskms:///alias/any", lambda _p: None)


def test_unreachable_service_is_an_environment_error(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(BackendUnavailableError, match="cannot reach"):
        load_signing_key("awskms:///alias/any", lambda _p: None)


@pytest.mark.parametrize(
    ("uri", "endpoint", "key", "region"),
    [
        (
            "awskms:///1234abcd-12ab-34cd-56ef-1234567890ab",
            None,
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            None,
        ),
        (
            "awskms://localhost:4566/alias/ExampleAlias",
            "https://localhost:4566",
            "alias/ExampleAlias",
            None,
        ),
        (
            "awskms:///arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            None,
            "arn:aws:kms:us-east-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "us-east-2",
        ),
        (
            "awskms:///arn:aws:kms:eu-west-1:111122223333:alias/ExampleAlias",
            None,
            "arn:aws:kms:eu-west-1:111122223333:alias/ExampleAlias",
            "eu-west-1",
        ),
        (
            "awskms:///mrk-1234abcd12ab34cd56ef1234567890ab",
            None,
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            None,
        ),
    ],
)
def test_uri_forms(uri: str, endpoint: str | None, key: str, region: str | None) -> None:
    ref = parse_awskms_uri(uri)
    assert (ref.endpoint, ref.key_id, ref.region) == (endpoint, key, region)


@pytest.mark.parametrize(
    "uri",
    [
        "awskms://",
        "awskms:///",
        "awskms:///not a key",
        "awskms://h/alias/",
        "awskms:/alias/x",
        "awskms://host/path/alias/x",
    ],
)
def test_malformed_uris_are_usage_errors(uri: str) -> None:
    with pytest.raises(UsageError, match="awskms://"):
        parse_awskms_uri(uri)


def test_service_error_codes_become_one_line_messages() -> None:
    from botocore.exceptions import ClientError

    from omsign.backends._awskms import _explain

    for code, words in [
        ("AccessDeniedException", "kms:Sign"),
        ("ThrottlingException", "try again later"),
        ("KMSInvalidStateException", "state"),
        ("DisabledException", "disabled"),
        ("NotFoundException", "no such key"),
    ]:
        exc = ClientError({"Error": {"Code": code, "Message": "x"}}, "Sign")
        message = str(_explain("awskms:///alias/k", exc))
        assert words in message
        assert "\n" not in message


def test_export_public_key_matches_the_signature_hint(
    make_kms_key: Callable[..., str], tmp_path: Path
) -> None:
    import hashlib

    model = make_model(tmp_path / "model")
    uri = f"awskms:///{make_kms_key('ECC_NIST_P256')}"
    pem = omsign.export_public_key(uri)
    signed = omsign.sign(model, key=uri)
    hint = signed.bundle["verificationMaterial"]["publicKey"]["hint"]
    assert hint == hashlib.sha256(pem).hexdigest()
