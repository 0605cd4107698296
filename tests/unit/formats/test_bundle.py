"""Bundles are built and parsed in one module: what is built parses back to the same values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.fixtures import COMPAT, KeyPair
from omsign.backends._key import KeyBundleSigner
from omsign.backends._pem import load_pem_signing_key
from omsign.bundle import MEDIA_TYPE, Material, build_bundle, parse_bundle
from omsign.errors import MalformedSignatureError

PAYLOAD = b'{"_type":"https://in-toto.io/Statement/v1"}'
SIGSTORE_VECTOR = COMPAT / "v1.1.0-sigstore" / "model.sig"
CERT_VECTOR = COMPAT / "v0.2.0-certificate" / "model.sig"


def _round_trip(payload: bytes, signature: bytes, material: Material) -> Material:
    bundle = parse_bundle(json.dumps(build_bundle(payload, signature, material)).encode())
    assert (bundle.payload, bundle.signature) == (payload, signature)
    return bundle.material


def test_key_signer_returns_material_that_builds_an_oms_key_bundle(p256: KeyPair) -> None:
    signer = KeyBundleSigner(load_pem_signing_key(p256.private, lambda _prompt: None))
    signature, material = signer.sign_statement(PAYLOAD)
    built = build_bundle(PAYLOAD, signature, material)
    assert built["mediaType"] == MEDIA_TYPE
    assert built["verificationMaterial"]["tlogEntries"] == []
    assert set(built["verificationMaterial"]["publicKey"]) == {"hint"}
    assert built["dsseEnvelope"]["signatures"][0]["keyid"] == ""
    assert _round_trip(PAYLOAD, signature, material) == material


@pytest.mark.parametrize("vector", [SIGSTORE_VECTOR, CERT_VECTOR], ids=["sigstore", "chain"])
def test_a_parsed_bundle_rebuilds_to_the_same_material(vector: Path) -> None:
    parsed = parse_bundle(vector.read_bytes())
    assert _round_trip(parsed.payload, parsed.signature, parsed.material) == parsed.material


def test_a_rebuilt_sigstore_bundle_keeps_every_verification_field() -> None:
    original = json.loads(SIGSTORE_VECTOR.read_text())
    parsed = parse_bundle(SIGSTORE_VECTOR.read_bytes())
    rebuilt = build_bundle(parsed.payload, parsed.signature, parsed.material)
    assert rebuilt["verificationMaterial"] == original["verificationMaterial"]
    assert rebuilt["dsseEnvelope"]["payload"] == original["dsseEnvelope"]["payload"]
    assert (
        rebuilt["dsseEnvelope"]["signatures"][0]["sig"]
        == (original["dsseEnvelope"]["signatures"][0]["sig"])
    )


def test_timestamps_and_older_key_fields_round_trip() -> None:
    material = Material(
        "key",
        key_raw=b"-----BEGIN PUBLIC KEY-----\n",
        key_details="PKIX_ECDSA_P256_SHA_256",
        timestamps=(b"\x30\x03\x02\x01\x01",),
    )
    assert _round_trip(PAYLOAD, b"sig", material) == material


def test_a_bundle_without_verification_material_method_is_malformed() -> None:
    built = build_bundle(PAYLOAD, b"sig", Material("key", key_hint="ab"))
    del built["verificationMaterial"]["publicKey"]
    with pytest.raises(MalformedSignatureError, match="exactly one of"):
        parse_bundle(json.dumps(built).encode())
