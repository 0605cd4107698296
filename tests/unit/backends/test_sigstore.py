"""Sigstore verification of a real public-good bundle, offline."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.fixtures import COMPAT
from omsign.backends.sigstore import (
    SigstoreIdentityPolicy,
    SigstoreSettings,
    SigstoreVerified,
)
from omsign.backends.sigstore import describe_sigstore_material as _describe
from omsign.backends.sigstore import verify_sigstore_bundle as _verify_bundle
from omsign.bundle import parse_bundle
from omsign.cli._flags import OPTION_FLAGS
from omsign.errors import (
    BackendUnavailableError,
    IdentityError,
    KeyLoadError,
    MalformedSignatureError,
    SignatureError,
    UsageError,
)

VECTOR = COMPAT / "v1.1.0-sigstore" / "model.sig"
if not VECTOR.exists():
    VECTOR = (
        Path(__file__).parents[2] / "assets" / "compat-vectors" / "v1.1.0-sigstore" / "model.sig"
    )
IDENTITY = "stefanb@us.ibm.com"
ISSUER = "https://sigstore.verify.ibm.com/oauth2"
OFFLINE = SigstoreSettings(offline=True)


def verify_sigstore_bundle(text: str, *args: Any) -> SigstoreVerified:
    """Parses the bundle text as verification does, then verifies it."""
    return _verify_bundle(parse_bundle(text.encode()), *args)


def describe_sigstore_material(bundle: dict[str, Any]) -> dict[str, Any]:
    """Parses the bundle object as verification does, then describes it."""
    return _describe(parse_bundle(json.dumps(bundle).encode()))


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fails any connection that leaves the machine; starts from an empty TUF cache."""
    real_connect = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> Any:
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"test forbids network access to {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture
def bundle() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(VECTOR.read_text())
    return loaded


def policy(**kwargs: Any) -> SigstoreIdentityPolicy:
    fields: dict[str, Any] = {"issuer": ISSUER, "identity": IDENTITY, **kwargs}
    return SigstoreIdentityPolicy(**fields)


def test_public_good_bundle_verifies_offline_and_returns_payload() -> None:
    result = verify_sigstore_bundle(VECTOR.read_text(), policy(), OFFLINE)
    assert result.payload_type == "application/vnd.in-toto+json"
    statement = json.loads(result.payload)
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
    assert result.identity == IDENTITY
    assert result.issuer == ISSUER
    assert result.log_index == 598151086
    assert result.integrated_time == 1760062340


def test_identity_regexp_matching_in_full_is_accepted() -> None:
    result = verify_sigstore_bundle(
        VECTOR.read_text(), policy(identity=None, identity_regexp=r"[a-z]+@us\.ibm\.com"), OFFLINE
    )
    assert result.identity == IDENTITY


def test_wrong_identity_is_rejected_naming_both() -> None:
    with pytest.raises(IdentityError, match=r"stefanb@us\.ibm\.com.*expected mallory@example\.com"):
        verify_sigstore_bundle(VECTOR.read_text(), policy(identity="mallory@example.com"), OFFLINE)


def test_wrong_issuer_is_rejected_naming_both() -> None:
    with pytest.raises(
        IdentityError,
        match=r"from https://sigstore\.verify\.ibm\.com/oauth2.*"
        r"expected .* from https://accounts\.google\.com",
    ):
        verify_sigstore_bundle(
            VECTOR.read_text(), policy(issuer="https://accounts.google.com"), OFFLINE
        )


@pytest.mark.parametrize("pattern", [r".*@ibm\.com", r"stefanb", r"stefanb@us\.ibm\.co"])
def test_regexp_must_match_the_whole_identity(pattern: str) -> None:
    with pytest.raises(IdentityError):
        verify_sigstore_bundle(
            VECTOR.read_text(), policy(identity=None, identity_regexp=pattern), OFFLINE
        )


def test_required_github_claim_absent_from_certificate_is_rejected() -> None:
    with pytest.raises(IdentityError, match="repository"):
        verify_sigstore_bundle(VECTOR.read_text(), policy(github_repository="a/b"), OFFLINE)


def _flip(b64: str, index: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_flipped_signature_byte_is_rejected(bundle: dict[str, Any]) -> None:
    sig = bundle["dsseEnvelope"]["signatures"][0]
    sig["sig"] = _flip(sig["sig"], 20)
    with pytest.raises(SignatureError):
        verify_sigstore_bundle(json.dumps(bundle), policy(), OFFLINE)


def test_flipped_payload_byte_is_rejected(bundle: dict[str, Any]) -> None:
    envelope = bundle["dsseEnvelope"]
    payload = base64.b64decode(envelope["payload"])
    index = payload.index(b"sha256") + 20
    envelope["payload"] = _flip(envelope["payload"], index)
    with pytest.raises(SignatureError):
        verify_sigstore_bundle(json.dumps(bundle), policy(), OFFLINE)


def test_tampered_log_integrated_time_is_rejected(bundle: dict[str, Any]) -> None:
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    entry["integratedTime"] = str(int(entry["integratedTime"]) + 1)
    with pytest.raises(SignatureError):
        verify_sigstore_bundle(json.dumps(bundle), policy(), OFFLINE)


def test_tampered_inclusion_proof_is_rejected(bundle: dict[str, Any]) -> None:
    proof = bundle["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["hashes"][0] = _flip(proof["hashes"][0], 0)
    with pytest.raises(SignatureError):
        verify_sigstore_bundle(json.dumps(bundle), policy(), OFFLINE)


@pytest.mark.parametrize("text", ["", "{", "[]", '{"mediaType": "application/x"}'])
def test_unparsable_bundle_is_malformed(text: str) -> None:
    with pytest.raises(MalformedSignatureError):
        verify_sigstore_bundle(text, policy(), OFFLINE)


def test_missing_trust_config_file_is_a_load_error(tmp_path: Path) -> None:
    settings = SigstoreSettings(trust_config=tmp_path / "absent.json")
    with pytest.raises(KeyLoadError, match=r"absent\.json"):
        verify_sigstore_bundle(VECTOR.read_text(), policy(), settings)


def test_online_trust_root_without_network_is_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailableError) as caught:
        verify_sigstore_bundle(VECTOR.read_text(), policy(), SigstoreSettings())
    assert caught.value.options == ("offline",)
    assert "use --offline" in caught.value.render(OPTION_FLAGS)


def test_staging_and_trust_config_together_is_a_usage_error(tmp_path: Path) -> None:
    settings = SigstoreSettings(staging=True, trust_config=tmp_path / "t.json")
    with pytest.raises(UsageError) as caught:
        verify_sigstore_bundle(VECTOR.read_text(), policy(), settings)
    assert caught.value.options == ("staging", "trust_config")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"identity": None},
        {"identity_regexp": ".*"},
        {"identity": None, "identity_regexp": "("},
        {"issuer": ""},
    ],
)
def test_policy_needs_issuer_and_exactly_one_identity_form(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        policy(**kwargs)


def test_describe_reports_signer_and_log_entry(bundle: dict[str, Any]) -> None:
    info = describe_sigstore_material(bundle)
    assert info["identity"] == IDENTITY
    assert info["issuer"] == ISSUER
    assert info["log_index"] == 598151086
    assert info["integrated_time"] == "2025-10-10T02:12:20+00:00"
    assert info["log_id"] == "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d"
    assert info["github"] == {}
    assert info["certificate_not_before"] < info["integrated_time"] < info["certificate_not_after"]


def test_describe_rejects_bundle_without_certificate(bundle: dict[str, Any]) -> None:
    del bundle["verificationMaterial"]["certificate"]
    with pytest.raises(MalformedSignatureError):
        describe_sigstore_material(bundle)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run; the slow fuzz mode explores further
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=6))
def test_any_flipped_bit_fails_verification_or_changes_nothing_signed(
    position: int, bit: int
) -> None:
    original = VECTOR.read_bytes()
    data = bytearray(original)
    data[position % len(data)] ^= 1 << bit
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return
    try:
        result = verify_sigstore_bundle(text, policy(), OFFLINE)
    except (MalformedSignatureError, SignatureError, IdentityError):
        return
    # Unsigned parts (e.g. an extra timestamp that no longer verifies) may change;
    # what is returned must still be exactly what was signed.
    expected = verify_sigstore_bundle(original.decode(), policy(), OFFLINE)
    assert result.payload == expected.payload
    assert result.identity == IDENTITY


def test_certificate_with_an_invalid_version_is_malformed_not_a_crash() -> None:
    # Found by the property above: bit 1 of byte 128 turns the X.509 version into 10.
    data = bytearray(VECTOR.read_bytes())
    data[128] ^= 1 << 1
    with pytest.raises(MalformedSignatureError):
        verify_sigstore_bundle(data.decode(), policy(), OFFLINE)
