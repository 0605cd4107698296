"""Sigstore keyless signing and verification against the local Sigstore instance."""

from __future__ import annotations

import base64
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from omsign.backends import BundleSigner
from omsign.backends.sigstore import (
    SigstoreBundleSigner,
    SigstoreIdentityPolicy,
    SigstoreSettings,
    SigstoreVerified,
)
from omsign.backends.sigstore import describe_sigstore_material as _describe
from omsign.backends.sigstore import verify_sigstore_bundle as _verify_bundle
from omsign.bundle import build_bundle, parse_bundle
from omsign.errors import (
    BackendUnavailableError,
    IdentityError,
    KeyLoadError,
    SignatureError,
    UsageError,
)
from services.sigstore_local import GITHUB_CLAIMS, GITHUB_WORKFLOW_IDENTITY, LocalSigstore

STATEMENT = json.dumps(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {"serialization": {"method": "files", "hash_type": "sha256"}, "resources": []},
    },
    separators=(",", ":"),
).encode()


def verify_sigstore_bundle(text: str, *args: Any) -> SigstoreVerified:
    """Parses the bundle text as verification does, then verifies it."""
    return _verify_bundle(parse_bundle(text.encode()), *args)


def describe_sigstore_material(bundle: dict[str, Any]) -> dict[str, Any]:
    """Parses the bundle object as verification does, then describes it."""
    return _describe(parse_bundle(json.dumps(bundle).encode()))


def sign(signer: SigstoreBundleSigner, payload: bytes = STATEMENT) -> dict[str, Any]:
    """Signs ``payload`` and builds the bundle, as ``omsign.sign`` does."""
    return build_bundle(payload, *signer.sign_statement(payload))


def settings_for(instance: LocalSigstore, **kwargs: Any) -> SigstoreSettings:
    return SigstoreSettings(trust_config=instance.trust_config, **kwargs)


def policy_for(instance: LocalSigstore, **kwargs: Any) -> SigstoreIdentityPolicy:
    fields: dict[str, Any] = {"issuer": instance.issuer, "identity": instance.identity, **kwargs}
    return SigstoreIdentityPolicy(**fields)


@pytest.fixture(scope="module")
def signed(local_sigstore: LocalSigstore) -> dict[str, Any]:
    signer = SigstoreBundleSigner(
        settings_for(local_sigstore), identity_token=local_sigstore.identity_token
    )
    return sign(signer)


def test_signer_implements_the_bundle_signer_protocol(local_sigstore: LocalSigstore) -> None:
    signer: BundleSigner = SigstoreBundleSigner(settings_for(local_sigstore), "token")
    assert callable(signer.sign_statement)


def test_bundle_carries_exact_payload_log_entry_and_timestamp(signed: dict[str, Any]) -> None:
    assert signed["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    envelope = signed["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(envelope["payload"]) == STATEMENT
    material = signed["verificationMaterial"]
    (entry,) = material["tlogEntries"]
    assert entry["kindVersion"] == {"kind": "dsse", "version": "0.0.1"}
    assert entry["inclusionProof"]["checkpoint"]["envelope"]
    assert len(material["timestampVerificationData"]["rfc3161Timestamps"]) == 1


def test_signed_bundle_verifies_with_the_right_identity(
    local_sigstore: LocalSigstore, signed: dict[str, Any]
) -> None:
    for offline in (False, True):
        result = verify_sigstore_bundle(
            json.dumps(signed),
            policy_for(local_sigstore),
            settings_for(local_sigstore, offline=offline),
        )
        assert result.payload == STATEMENT
        assert result.payload_type == "application/vnd.in-toto+json"
        assert result.identity == local_sigstore.identity
        assert result.issuer == local_sigstore.issuer
        assert isinstance(result.log_index, int)
        assert result.integrated_time is not None
        assert abs(result.integrated_time - time.time()) < 600


def test_describe_reports_local_signer(
    local_sigstore: LocalSigstore, signed: dict[str, Any]
) -> None:
    info = describe_sigstore_material(signed)
    assert info["identity"] == local_sigstore.identity
    assert info["issuer"] == local_sigstore.issuer
    assert isinstance(info["log_index"], int)
    assert info["integrated_time"].endswith("+00:00")


def test_wrong_identity_is_rejected(local_sigstore: LocalSigstore, signed: dict[str, Any]) -> None:
    with pytest.raises(IdentityError, match=r"signer@omsign\.test.*expected other@omsign\.test"):
        verify_sigstore_bundle(
            json.dumps(signed),
            policy_for(local_sigstore, identity="other@omsign.test"),
            settings_for(local_sigstore),
        )


def test_wrong_issuer_is_rejected(local_sigstore: LocalSigstore, signed: dict[str, Any]) -> None:
    with pytest.raises(IdentityError, match=r"accounts\.google\.com"):
        verify_sigstore_bundle(
            json.dumps(signed),
            policy_for(local_sigstore, issuer="https://accounts.google.com"),
            settings_for(local_sigstore),
        )


def test_bundle_from_an_untrusted_instance_is_rejected(
    signed: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The public-good trust root must not accept certificates from another CA.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with pytest.raises(SignatureError):
        verify_sigstore_bundle(
            json.dumps(signed),
            SigstoreIdentityPolicy(issuer="x", identity="signer@omsign.test"),
            SigstoreSettings(offline=True),
        )


def test_tampered_payload_is_rejected(
    local_sigstore: LocalSigstore, signed: dict[str, Any]
) -> None:
    forged = json.loads(json.dumps(signed))
    forged["dsseEnvelope"]["payload"] = base64.b64encode(STATEMENT.replace(b"ab", b"cd")).decode()
    with pytest.raises(SignatureError):
        verify_sigstore_bundle(
            json.dumps(forged), policy_for(local_sigstore), settings_for(local_sigstore)
        )


def test_github_actions_claims_are_checked(local_sigstore: LocalSigstore) -> None:
    token = local_sigstore.mint_token(
        identity="ci@omsign.test",
        repository="omsign/omsign",
        ref="refs/heads/main",
        workflow="release",
        event_name="push",
        sha="f" * 40,
    )
    bundle = json.dumps(sign(SigstoreBundleSigner(settings_for(local_sigstore), token)))
    good = policy_for(
        local_sigstore,
        identity="ci@omsign.test",
        github_repository="omsign/omsign",
        github_ref="refs/heads/main",
        github_workflow_name="release",
        github_workflow_trigger="push",
        github_sha="f" * 40,
    )
    assert (
        verify_sigstore_bundle(bundle, good, settings_for(local_sigstore)).identity
        == "ci@omsign.test"
    )
    info = describe_sigstore_material(json.loads(bundle))
    assert info["github"]["repository"] == "omsign/omsign"
    for claim, wrong in [
        ("github_repository", "evil/omsign"),
        ("github_ref", "refs/heads/dev"),
        ("github_workflow_trigger", "pull_request"),
    ]:
        bad = policy_for(local_sigstore, identity="ci@omsign.test", **{claim: wrong})
        with pytest.raises(IdentityError, match=wrong):
            verify_sigstore_bundle(bundle, bad, settings_for(local_sigstore))


def test_ambient_github_actions_credential_is_used(
    local_sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_sigstore.github_actions_env().items():
        monkeypatch.setenv(name, value)
    bundle = sign(SigstoreBundleSigner(settings_for(local_sigstore)))
    policy = policy_for(
        local_sigstore,
        identity=None,
        identity_regexp=r"https://github\.com/omsign/omsign/\.github/workflows/.*",
        github_repository=GITHUB_CLAIMS["repository"],
    )
    result = verify_sigstore_bundle(json.dumps(bundle), policy, settings_for(local_sigstore))
    assert result.identity == GITHUB_WORKFLOW_IDENTITY


def test_expired_token_is_a_load_error(local_sigstore: LocalSigstore) -> None:
    token = local_sigstore.mint_token(lifetime=-60)
    with pytest.raises(KeyLoadError, match="identity token"):
        sign(SigstoreBundleSigner(settings_for(local_sigstore), token))


def test_forged_token_is_refused_by_fulcio(local_sigstore: LocalSigstore) -> None:
    header, claims, signature = local_sigstore.identity_token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    decoded["email"] = decoded["sub"] = "admin@omsign.test"
    forged_claims = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
    with pytest.raises(BackendUnavailableError, match="Fulcio refused"):
        SigstoreBundleSigner(
            settings_for(local_sigstore), f"{header}.{forged_claims}.{signature}"
        ).sign_statement(STATEMENT)


def test_payload_that_is_not_a_statement_is_refused(local_sigstore: LocalSigstore) -> None:
    signer = SigstoreBundleSigner(settings_for(local_sigstore), local_sigstore.identity_token)
    with pytest.raises(UsageError):
        signer.sign_statement(b'{"not": "a statement"}')


def test_unreachable_instance_is_backend_unavailable(
    local_sigstore: LocalSigstore, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    config = local_sigstore.trust_config.read_text().replace(local_sigstore.url, dead)
    # Keep the token's issuer as it was: only the services move.
    config = config.replace(f"{dead}/oidc", f"{local_sigstore.url}/oidc")
    path = tmp_path / "dead.json"
    path.write_text(config)
    signer = SigstoreBundleSigner(
        SigstoreSettings(trust_config=path), local_sigstore.identity_token
    )
    with pytest.raises(BackendUnavailableError, match="cannot reach"):
        signer.sign_statement(STATEMENT)


def test_an_unpromised_integration_time_is_not_reported_as_proven(
    local_sigstore: LocalSigstore, signed: dict[str, Any]
) -> None:
    """Only the log's signed promise covers integratedTime; anyone can edit it otherwise."""
    bundle = json.loads(json.dumps(signed))
    entry = bundle["verificationMaterial"]["tlogEntries"][0]
    del entry["inclusionPromise"]
    entry["integratedTime"] = "946684800"  # 2000-01-01, before the certificate existed
    result = verify_sigstore_bundle(
        json.dumps(bundle), policy_for(local_sigstore), settings_for(local_sigstore)
    )
    assert result.integrated_time is None
