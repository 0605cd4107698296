"""Hostile signature files: every attack ends in exit code 1 and a one-line reason.

Attacks edit a valid bundle, or replace it with something that is not a bundle at all.
Validly signed hostile statements are in ``test_hostile_manifests.py``.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers.fixtures import CliResult, KeyPair
from hostile.signed import (
    deadline,
    resource,
    statement,
    write_signed,
)

Cli = Callable[..., CliResult]


def _verify(cli: Cli, model: Path, key: KeyPair, data: bytes | str | dict[str, Any]) -> CliResult:
    sig = model.parent / "hostile.sig"
    if isinstance(data, dict):
        data = json.dumps(data)
    sig.write_bytes(data if isinstance(data, bytes) else data.encode())
    with deadline(20):
        return cli("verify", model, "--key", key.public, "--signature", sig)


def _rejected(result: CliResult, *needles: str) -> None:
    assert result.code == 1, result
    assert "verified" not in result.out
    line = result.err.strip().splitlines()[0]
    assert line.startswith("omsign: error: "), result.err
    for needle in needles:
        assert needle in line, (needle, line)
    assert "Traceback" not in result.err


# --- size, nesting, JSON --------------------------------------------------------------


def test_bundle_larger_than_the_limit_is_rejected_before_reading(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, _ = signed
    huge = model.parent / "huge.sig"
    with huge.open("wb") as f:  # sparse: nothing is written, nothing must be read
        f.truncate(257 << 20)
    result = cli("verify", model, "--key", p256.public, "--signature", huge)
    _rejected(result, "huge.sig", "larger than 256 MiB")


def test_json_nested_deeper_than_the_limit_is_rejected(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, bundle = signed
    bundle["extra"] = json.loads("[" * 40 + "]" * 40)
    _rejected(_verify(cli, model, p256, bundle), "nested deeper than 32 levels")


def test_json_with_a_million_values_is_rejected_before_parsing(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, bundle = signed
    text = json.dumps(bundle)[:-1] + ', "extra": [' + "0," * 1_000_000 + "0]}"
    _rejected(_verify(cli, model, p256, text), "more than 100000 JSON values")


def test_escaped_quotes_do_not_make_the_shape_check_slow(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, _ = signed
    start = time.monotonic()
    result = _verify(cli, model, p256, b'"' + b'\\"' * 4_000_000)
    assert time.monotonic() - start < 5
    _rejected(result, "malformed signature", "not valid UTF-8 JSON")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "the file is empty"),
        (b"\xff\xfe{}", "not valid UTF-8 JSON"),
        (b'{"mediaType": ', "not valid UTF-8 JSON"),
        (b"[]", "not a JSON object"),
        (b'{"mediaType": NaN}', "not valid UTF-8 JSON"),
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
    ],
    ids=["empty", "not_utf8", "truncated", "array", "nan", "duplicate_key"],
)
def test_invalid_json_is_a_malformed_signature(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli, data: bytes, needle: str
) -> None:
    model, _ = signed
    _rejected(_verify(cli, model, p256, data), "hostile.sig: malformed signature", needle)


def test_duplicate_payload_key_is_rejected(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, bundle = signed
    text = json.dumps(bundle).replace('"payload":', '"payload": "e30=", "payload":', 1)
    _rejected(_verify(cli, model, p256, text), "duplicate key 'payload'")


# --- every field checked for type -------------------------------------------------------

_WRONG_TYPES: list[tuple[str, Any]] = [
    ("mediaType", ["application/vnd.dev.sigstore.bundle.v0.3+json"]),
    ("mediaType", {"x": 1}),
    ("verificationMaterial", []),
    ("verificationMaterial.publicKey", "key"),
    ("verificationMaterial.publicKey.hint", 7),
    ("verificationMaterial.publicKey.rawBytes", 7),
    ("verificationMaterial.tlogEntries", {}),
    ("verificationMaterial.tlogEntries", [1]),
    ("verificationMaterial.timestampVerificationData", []),
    ("verificationMaterial.timestampVerificationData", {"rfc3161Timestamps": {}}),
    ("verificationMaterial.timestampVerificationData", {"rfc3161Timestamps": [1]}),
    ("dsseEnvelope", "envelope"),
    ("dsseEnvelope.payloadType", None),
    ("dsseEnvelope.payload", 12),
    ("dsseEnvelope.payload", None),
    ("dsseEnvelope.signatures", {}),
    ("dsseEnvelope.signatures", []),
    ("dsseEnvelope.signatures.0", "sig"),
    ("dsseEnvelope.signatures.0.sig", ["x"]),
    ("dsseEnvelope.signatures.0.keyid", 5),
]


def _set(obj: Any, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    if isinstance(obj, list):
        obj[int(last)] = value
    else:
        obj[last] = value


@pytest.mark.parametrize(
    ("path", "value"), _WRONG_TYPES, ids=[f"{p}={v!r}" for p, v in _WRONG_TYPES]
)
def test_field_with_the_wrong_type_is_rejected(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli, path: str, value: Any
) -> None:
    model, bundle = signed
    bundle = copy.deepcopy(bundle)
    _set(bundle, path, value)
    _rejected(_verify(cli, model, p256, bundle), "hostile.sig: malformed signature")


# --- base64 -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("QUJD!A==", "not valid base64"),
        ("QUJD\nRA==", "not valid base64"),
        ("QUJD RA==", "not valid base64"),
        ("QQ=", "not valid base64"),
        ("QQ===", "not valid base64"),
        ("ab-/", "not valid base64"),
        ("QR==", "not canonical base64"),
        ("QR", "not canonical base64"),
        ("", "is not a base64 string"),
    ],
    ids=[
        "bad_character",
        "newline",
        "space",
        "partial_padding",
        "extra_padding",
        "mixed_alphabets",
        "slack_bits",
        "slack_bits_unpadded",
        "empty",
    ],
)
def test_base64_that_is_not_canonical_is_rejected(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli, value: str, needle: str
) -> None:
    model, bundle = signed
    bundle["verificationMaterial"]["publicKey"]["rawBytes"] = value
    _rejected(_verify(cli, model, p256, bundle), "publicKey.rawBytes", needle)


def test_payload_with_a_character_outside_base64_is_rejected(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, bundle = signed
    env = bundle["dsseEnvelope"]
    env["payload"] = env["payload"][:10] + "!" + env["payload"][10:]
    _rejected(_verify(cli, model, p256, bundle), "dsseEnvelope.payload is not valid base64")


def test_url_safe_unpadded_base64_of_the_same_bytes_still_verifies(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, bundle = signed
    env = bundle["dsseEnvelope"]
    raw = base64.b64decode(env["payload"])
    env["payload"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert _verify(cli, model, p256, bundle).code == 0


# --- unknown types and methods ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        ("mediaType", "application/vnd.dev.sigstore.bundle.v0.4+json", "unsupported mediaType"),
        ("dsseEnvelope.payloadType", "application/json", "unsupported DSSE payloadType"),
        ("verificationMaterial", {"tlogEntries": []}, "exactly one of publicKey"),
        ("verificationMaterial", {"publicKey": {}, "certificate": {}}, "exactly one of"),
        ("verificationMaterial", {"x509Certificate": {}}, "exactly one of"),
    ],
    ids=["media_type", "payload_type", "no_method", "two_methods", "unknown_method"],
)
def test_unknown_type_or_method_is_rejected(
    signed: tuple[Path, dict[str, Any]],
    p256: KeyPair,
    cli: Cli,
    path: str,
    value: Any,
    needle: str,
) -> None:
    model, bundle = signed
    _set(bundle, path, value)
    _rejected(_verify(cli, model, p256, bundle), needle)


def test_signed_unknown_predicate_type_is_rejected(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, _ = signed
    st = statement([resource("a.bin", b"a" * 1000)])
    st["predicateType"] = "https://example.com/other/v1"
    sig = model.parent / "s.sig"
    write_signed(sig, p256.private, st)
    result = cli("verify", model, "--key", p256.public, "--signature", sig)
    _rejected(result, "unsupported predicate type")


def test_signed_unknown_statement_type_is_rejected(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, _ = signed
    st = statement([resource("a.bin", b"a" * 1000)])
    st["_type"] = "https://in-toto.io/Statement/v0.1"
    sig = model.parent / "s.sig"
    write_signed(sig, p256.private, st)
    _rejected(cli("verify", model, "--key", p256.public, "--signature", sig), "statement type")


# --- payload and signature tampering -------------------------------------------------------


def test_payload_changed_after_signing_fails_the_signature(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, bundle = signed
    env = bundle["dsseEnvelope"]
    payload = base64.b64decode(env["payload"]).replace(b'"model"', b'"modex"')
    env["payload"] = base64.b64encode(payload).decode()
    _rejected(_verify(cli, model, p256, bundle), "signature does not verify")


def test_signature_bit_flip_fails(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, bundle = signed
    sig = bytearray(base64.b64decode(bundle["dsseEnvelope"]["signatures"][0]["sig"]))
    sig[-5] ^= 0x10
    bundle["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(sig).decode()
    _rejected(_verify(cli, model, p256, bundle), "signature")


def test_bundle_signed_by_another_key_is_rejected(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli, tmp_path: Path
) -> None:
    from helpers.pki import make_ec_key, write_private_key

    model, _ = signed
    other = write_private_key(tmp_path / "other.pem", make_ec_key("P-256"))
    st = statement([resource("a.bin", b"a" * 1000), resource("sub/b.txt", b"b")])
    sig = model.parent / "s.sig"
    write_signed(sig, other, st)
    _rejected(cli("verify", model, "--key", p256.public, "--signature", sig), "different key")


def test_long_hostile_values_are_shortened_in_the_message(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, bundle = signed
    bundle["mediaType"] = "x" * 100_000
    result = _verify(cli, model, p256, bundle)
    _rejected(result, "unsupported mediaType 'xxx")
    assert len(result.err) < 300


# --- the signature file itself -------------------------------------------------------------


def test_signature_that_is_a_fifo_is_refused_without_blocking(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, _ = signed
    (model / "model.sig").unlink()
    os.mkfifo(model / "model.sig")  # the default location, inside a model an attacker controls
    with deadline(10):
        result = cli("verify", model, "--key", p256.public)
    _rejected(result, "model.sig: malformed signature: not a regular file")


def test_signature_that_is_a_link_to_a_device_is_refused(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, _ = signed
    (model / "model.sig").unlink()
    (model / "model.sig").symlink_to("/dev/zero")
    with deadline(10):
        result = cli("verify", model, "--key", p256.public)
    _rejected(result, "model.sig: malformed signature: not a regular file")


def test_signature_that_is_a_directory_is_a_usage_error(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, _ = signed
    result = cli("verify", model, "--key", p256.public, "--signature", model / "sub")
    assert result.code == 2
    assert "sub: signature path is a directory" in result.err


def test_statement_errors_can_name_the_signature_file() -> None:
    from omsign.errors import MalformedSignatureError
    from omsign.statement import parse_statement

    with pytest.raises(MalformedSignatureError) as caught:
        parse_statement(b"[]", "dir/model.sig")
    assert str(caught.value) == "dir/model.sig: malformed statement: payload is not a JSON object"
