"""Attestations are signed with every method sign has and verified under the same trust."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import omsign
from helpers.pki import issue_leaf, make_ca, make_ec_key
from omsign.attestations import Attestation, check_attestations
from omsign.policy import Verifier
from omsign.sources import resolve_source
from omsign.storage import resolve_store
from services.tsa import RunningTSA

if TYPE_CHECKING:
    from services.sigstore_local import LocalSigstore
    from services.softhsm import SoftHsm

EVAL = "https://example.com/evaluation/v1"


def _check(model: Path, policy: Verifier) -> list[Attestation]:
    verified = omsign.verify(model, policy=policy)
    return check_attestations(resolve_store(resolve_source(model)), verified.root_digest, policy)


def test_certificate_with_timestamp(model: Path, tmp_path: Path, tsa: RunningTSA) -> None:
    root = make_ca("Attest Root").write(tmp_path / "pki", "root")
    leaf = issue_leaf(root, make_ec_key("P-384")).write(tmp_path / "pki", "leaf")
    assert root.cert_path and leaf.cert_path and leaf.key_path
    signing = {"key": leaf.key_path, "certificate": leaf.cert_path, "tsa_url": tsa.url}
    omsign.sign(model, **signing)  # type: ignore[arg-type]
    omsign.attest(model, predicate_type=EVAL, predicate={"acc": 1}, **signing)  # type: ignore[arg-type]
    policy = omsign.make_policy(cert_chain=root.cert_path, tsa_certs=tsa.root_path)
    (found,) = _check(model, policy)
    assert found.verified, found.reason
    assert found.signer is not None and found.signer.method == "certificate"
    assert found.proven_time is not None  # the timestamp proves when it was signed
    other = make_ca("Other Root").write(tmp_path / "other", "root")
    assert other.cert_path
    stranger = omsign.make_policy(cert_chain=other.cert_path)
    from omsign.attestations import check_attestation

    raw = resolve_store(resolve_source(model)).claims()[0][1]
    assert not check_attestation("x", raw, found.subject_digest or "", stranger).verified


def test_pkcs11_token_key(model: Path, tmp_path: Path, softhsm_token: SoftHsm) -> None:
    from omsign.backends.pkcs11 import export_public_key_pem

    uri = softhsm_token.uri("object=p256")
    public = tmp_path / "token.pub.pem"
    public.write_bytes(export_public_key_pem(uri, lambda _: None))
    omsign.sign(model, key=uri)
    omsign.attest(model, key=uri, predicate_type=EVAL, predicate={"acc": 1})
    (found,) = _check(model, omsign.make_policy(key=public))
    assert found.verified, found.reason


def test_sigstore_keyless(model: Path, local_sigstore: LocalSigstore) -> None:
    signing = {
        "identity_token": local_sigstore.identity_token,
        "trust_config": local_sigstore.trust_config,
    }
    omsign.sign(model, **signing)  # type: ignore[arg-type]
    omsign.attest(model, predicate_type=EVAL, predicate={"acc": 1}, **signing)  # type: ignore[arg-type]
    policy = omsign.make_policy(
        identity=local_sigstore.identity,
        issuer=local_sigstore.issuer,
        trust_config=local_sigstore.trust_config,
    )
    (found,) = _check(model, policy)
    assert found.verified, found.reason
    assert found.signer is not None and found.signer.method == "sigstore"
    assert found.proven_time is not None  # the log entry proves when it was signed
    wrong = omsign.make_policy(
        identity="mallory@omsign.test",
        issuer=local_sigstore.issuer,
        trust_config=local_sigstore.trust_config,
    )
    raw = resolve_store(resolve_source(model)).claims()[0][1]
    from omsign.attestations import check_attestation

    refused = check_attestation("x", raw, found.subject_digest or "", wrong)
    assert not refused.verified and "mallory" in refused.reason
