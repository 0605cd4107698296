"""Keyless signing gets its token, trust root and certificate before the model is read.

The model is a large sparse file: a failure must come before any file of it is opened
or listed, whatever its size (checked with audit hooks, not by timing).
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

import omsign
from helpers.audit import touched_under
from omsign.backends.sigstore import SigstoreBundleSigner, SigstoreSettings
from omsign.errors import BackendUnavailableError, Error, KeyLoadError
from services.sigstore_local import LocalSigstore

CI_PREFIXES = ("ACTIONS_", "GITHUB_", "SIGSTORE_", "GOOGLE_", "BUILDKITE", "CIRCLE", "GITLAB")


@pytest.fixture
def big_model(tmp_path: Path) -> Path:
    """A directory holding a 64 GiB sparse file (no disk space used)."""
    model = tmp_path / "big"
    model.mkdir()
    with open(model / "weights.bin", "wb") as f:
        f.truncate(64 * 2**30)
    return model


@pytest.fixture
def no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(CI_PREFIXES):
            monkeypatch.delenv(name)


def dead_instance(instance: LocalSigstore, tmp_path: Path) -> Path:
    """The instance's trust config with every service on a closed loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    config = instance.trust_config.read_text().replace(instance.url, dead)
    path = tmp_path / "dead.json"
    path.write_text(config.replace(f"{dead}/oidc", f"{instance.url}/oidc"))
    return path


def sign_without_reading(model: Path, **options: Any) -> Error:
    """Signs; asserts it fails before the model is opened or listed; returns the error."""
    with touched_under(model) as touched, pytest.raises(Error) as caught:
        omsign.sign(model, **options)
    assert touched == []
    assert not (model / "model.sig").exists()
    return caught.value


def test_an_unreachable_instance_fails_before_hashing(
    big_model: Path, local_sigstore: LocalSigstore, tmp_path: Path
) -> None:
    error = sign_without_reading(
        big_model,
        identity_token=local_sigstore.identity_token,
        trust_config=dead_instance(local_sigstore, tmp_path),
    )
    assert isinstance(error, BackendUnavailableError)
    assert "cannot reach a Sigstore service" in str(error)


def test_a_bad_trust_config_fails_before_hashing(
    big_model: Path, local_sigstore: LocalSigstore, tmp_path: Path
) -> None:
    bad = tmp_path / "trust.json"
    bad.write_text('{"mediaType": "not a trust config"}')
    error = sign_without_reading(
        big_model, identity_token=local_sigstore.identity_token, trust_config=bad
    )
    assert isinstance(error, KeyLoadError)
    assert f"{bad}: not a Sigstore client trust config" in str(error)


def test_no_token_fails_before_hashing(
    big_model: Path, local_sigstore: LocalSigstore, no_ci: None
) -> None:
    error = sign_without_reading(big_model, trust_config=local_sigstore.trust_config)
    assert isinstance(error, KeyLoadError)
    assert "no identity token" in str(error)


def test_an_expired_token_fails_before_hashing(
    big_model: Path, local_sigstore: LocalSigstore
) -> None:
    error = sign_without_reading(
        big_model,
        identity_token=local_sigstore.mint_token(lifetime=-60),
        trust_config=local_sigstore.trust_config,
    )
    assert isinstance(error, KeyLoadError)
    assert "identity token" in str(error)


def test_an_unavailable_trust_root_is_a_message_for_signing(
    big_model: Path, local_sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sigstore.models import ClientTrustConfig

    def offline(*_args: object, **_kw: object) -> ClientTrustConfig:
        raise OSError("network is unreachable")

    monkeypatch.setattr(ClientTrustConfig, "production", offline)
    error = sign_without_reading(big_model, identity_token=local_sigstore.identity_token)
    assert isinstance(error, BackendUnavailableError)
    message = str(error)
    assert "trust root to sign" in message
    assert "key=" in message
    assert "verify" not in message and "offline" not in message


def test_the_prepared_certificate_signs(local_sigstore: LocalSigstore, tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    result = omsign.sign(
        model,
        identity_token=local_sigstore.identity_token,
        trust_config=local_sigstore.trust_config,
    )
    verified = omsign.verify(
        model,
        identity=local_sigstore.identity,
        issuer=local_sigstore.issuer,
        trust_config=local_sigstore.trust_config,
    )
    assert verified.root_digest == result.root_digest


def test_a_certificate_that_expired_while_hashing_is_renewed(
    local_sigstore: LocalSigstore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sigstore._internal.fulcio.client import ExpiredCertificate
    from sigstore.sign import Signer

    signer = SigstoreBundleSigner(
        SigstoreSettings(trust_config=local_sigstore.trust_config),
        local_sigstore.identity_token,
    )
    signer.prepare()
    first = signer._signer
    real = Signer.sign_dsse
    calls: list[Signer] = []

    def expire_once(self: Signer, statement: Any) -> Any:
        calls.append(self)
        if len(calls) == 1:
            raise ExpiredCertificate
        return real(self, statement)

    monkeypatch.setattr(Signer, "sign_dsse", expire_once)
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "model", "digest": {"sha256": "ab" * 32}}],
            "predicateType": "https://model_signing/signature/v1.0",
            "predicate": {"serialization": {"method": "files"}, "resources": []},
        }
    ).encode()
    signed = signer.sign_statement(statement)
    assert signed.signature
    assert len(calls) == 2
    assert calls[0] is first and calls[1] is not first
