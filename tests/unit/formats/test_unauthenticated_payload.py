"""Before a signature verifies, the payload is hashed, never parsed (OMS 8.2 before 8.3).

A bundle's payload is attacker-controlled until a trusted key's signature over it
verifies: parsing it as JSON first (to pick an encoding, say) costs memory and time
in proportion to whatever the attacker sends, once per trusted key. The legacy v0.2
encoding is chosen by trying it after the standard one fails, and allowed by the
predicate only after authentication.
"""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import omsign
from helpers.fixtures import CliResult, make_model
from helpers.pki import make_ec_key
from omsign.backends._ec import key_hint
from omsign.bundle import Material, build_bundle, parse_bundle, write_bundle
from omsign.dsse import PAYLOAD_TYPE, legacy_pae, pae
from omsign.errors import SignatureError
from omsign.policy import KeyPolicy, verify_signature
from omsign.predicates import LEGACY_PREDICATE_TYPE, PREDICATE_TYPE

KEYS = 8
FILES = {"method": "files", "hash_type": "sha256", "allow_symlinks": False}


def _statement(resources: list[dict[str, Any]], predicate_type: str = PREDICATE_TYPE) -> bytes:
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).hexdigest()
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "model", "digest": {"sha256": root}}],
            "predicateType": predicate_type,
            "predicate": {
                "resources": resources,
                "serialization": {
                    "method": "files",
                    "hash_type": "sha256",
                    "allow_symlinks": False,
                },
            },
        },
        sort_keys=True,
    ).encode()


def _huge_payload(count: int) -> bytes:
    """A valid-looking OMS statement with ``count`` resources (about 120 bytes each)."""
    item = '{"algorithm":"sha256","digest":"' + "ab" * 32 + '","name":"w/%08d"}'
    resources = ",".join(item % i for i in range(count))
    head = '{"_type":"https://in-toto.io/Statement/v1","predicate":{"resources":['
    serialization = '{"allow_symlinks":false,"hash_type":"sha256","method":"files"}'
    subject = '[{"digest":{"sha256":"' + "cd" * 32 + '"},"name":"model"}]'
    tail = f'],"serialization":{serialization}}},"predicateType":"{PREDICATE_TYPE}"'
    return (head + resources + tail + f',"subject":{subject}}}').encode()


def _trusted_keys(directory: Path) -> tuple[Path, list[ec.EllipticCurvePrivateKey]]:
    keys = [make_ec_key("P-256") for _ in range(KEYS)]
    pem = b"".join(
        k.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for k in keys
    )
    path = directory / "trusted.pem"
    path.write_bytes(pem)
    return path, keys


def _key_bundle(payload: bytes, signature: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    material = Material("key", key_hint=key_hint(key.public_key()))
    return json.dumps(build_bundle(payload, signature, material)).encode()


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes, Path]:
    """A ~30 MB payload signed by an untrusted key, and a file of 8 trusted keys."""
    payload = _huge_payload(280_000)
    attacker = make_ec_key("P-256")
    signature = attacker.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    trusted, _ = _trusted_keys(tmp_path_factory.mktemp("keys"))
    return payload, _key_bundle(payload, signature, attacker), trusted


def test_a_huge_bundle_with_a_bad_signature_is_rejected_without_parsing_its_payload(
    huge: tuple[bytes, bytes, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    payload, data, trusted = huge
    bundle = parse_bundle(data, "model.sig")
    policy = KeyPolicy.from_files([trusted])
    parsed: list[int] = []
    real_loads = json.loads

    def recording_loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        parsed.append(len(text))
        return real_loads(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", recording_loads)
    tracemalloc.start()
    try:
        with pytest.raises(SignatureError):
            verify_signature(bundle, policy)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parsed == []  # nothing was parsed as JSON, let alone the payload
    assert len(payload) > 30_000_000
    # Hashing streams the payload: far below one copy of it, let alone one per key.
    assert peak < len(payload) // 4, f"peak {peak} bytes for a {len(payload)}-byte payload"


def test_omsign_verify_parses_only_the_bundle_never_the_unauthenticated_payload(
    huge: tuple[bytes, bytes, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload, data, trusted = huge
    model = make_model(tmp_path / "m", {"a": b"a"})
    (model / "model.sig").write_bytes(data)
    payload_text = payload.decode()
    parsed_payload: list[bool] = []
    real_loads = json.loads

    def recording_loads(text: Any, *args: Any, **kwargs: Any) -> Any:
        parsed_payload.append(len(text) == len(payload_text) and text == payload_text)
        return real_loads(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", recording_loads)
    with pytest.raises(SignatureError):
        omsign.verify(model, key=trusted)
    assert parsed_payload == [False]  # the bundle, once


def _sign_model_legacy(model: Path, predicate_type: str, tmp_path: Path) -> Path:
    """Signs ``model`` (one file ``a``) over the legacy v0.2 encoding; returns the public key."""
    resource = {"name": "a", "digest": hashlib.sha256(b"a").hexdigest(), "algorithm": "sha256"}
    if predicate_type == LEGACY_PREDICATE_TYPE:
        payload = json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "a", "digest": {"sha256": resource["digest"]}}],
                "predicateType": LEGACY_PREDICATE_TYPE,
                "predicate": {},
            }
        ).encode()
    else:
        payload = _statement([resource], predicate_type)
    path, (key, *_) = _trusted_keys(tmp_path)
    signature = key.sign(legacy_pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
    write_bundle(model / "model.sig", json.loads(_key_bundle(payload, signature, key)))
    return path


def test_a_legacy_encoded_signature_over_an_oms_v1_statement_is_rejected(
    tmp_path: Path, cli: Any
) -> None:
    model = make_model(tmp_path / "m", {"a": b"a"})
    public = _sign_model_legacy(model, PREDICATE_TYPE, tmp_path)
    with pytest.raises(SignatureError, match=r"legacy v0\.2 encoding.*not for OMS v1\.0"):
        omsign.verify(model, key=public)
    result: CliResult = cli("verify", model, "--key", public)
    assert result.code == 1
    assert "legacy v0.2 encoding" in result.err


def test_a_legacy_encoded_signature_over_the_v0_2_predicate_still_verifies(
    tmp_path: Path,
) -> None:
    model = make_model(tmp_path / "m", {"a": b"a"})
    public = _sign_model_legacy(model, LEGACY_PREDICATE_TYPE, tmp_path)
    result = omsign.verify(model, key=public)
    assert result.legacy
    assert result.verified == ("a",)
