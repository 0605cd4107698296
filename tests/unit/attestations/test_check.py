"""check_attestations: each line verified under the model's trust, bound to its root digest."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from helpers.pki import make_ec_key, write_private_key
from omsign import intoto
from omsign.attestations import (
    ATTESTATION_TYPES,
    Attestation,
    check_attestations,
    resolve_type,
)
from omsign.backends._key import KeyBundleSigner
from omsign.backends._pem import load_pem_signing_key
from omsign.bundle import build_bundle
from omsign.errors import UsageError
from omsign.sources import resolve_source
from omsign.storage import resolve_store
from services.tsa import RunningTSA

EVAL = "https://example.com/evaluation/v1"


def _check(model: Path, keys: KeyPair) -> list[Attestation]:
    verified = omsign.verify(model, key=keys.public)
    store = resolve_store(resolve_source(model))
    return check_attestations(store, verified.root_digest, omsign.make_policy(key=keys.public))


def _append_statement(model: Path, keys: KeyPair, subjects: list[intoto.Subject]) -> None:
    """Signs a hand-made statement with the trusted key and appends it."""
    statement = intoto.Statement(tuple(subjects), EVAL, {"accuracy": 0.5})
    payload = intoto.encode(statement)
    signer = KeyBundleSigner(load_pem_signing_key(str(keys.private), lambda _: None), None)
    bundle = build_bundle(payload, *signer.sign_statement(payload))
    resolve_store(resolve_source(model)).append_claim(bundle)


def test_types_by_name() -> None:
    assert ATTESTATION_TYPES["provenance"] == "https://slsa.dev/provenance/v1"
    assert ATTESTATION_TYPES["scan"] == "https://slsa.dev/verification_summary/v1"
    assert ATTESTATION_TYPES["bom"] == "https://cyclonedx.org/bom"
    assert resolve_type("model-card") == ATTESTATION_TYPES["model-card"]
    assert resolve_type(EVAL) == EVAL
    with pytest.raises(UsageError, match="unknown attestation type 'provenence'"):
        resolve_type("provenence")


def test_an_attestation_of_the_signed_model_verifies(model: Path, p256: KeyPair) -> None:
    omsign.sign(model, key=p256.private)
    made = omsign.attest(model, key=p256.private, predicate_type=EVAL, predicate={"acc": 1})
    (found,) = _check(model, p256)
    assert found.verified and found.reason == ""
    assert found.location == made.location == f"{model / 'claims.jsonl'}:1"
    assert found.subject_digest == made.root_digest
    assert found.predicate == {"acc": 1} and found.predicate_type == EVAL
    assert found.signer is not None and found.signer.method == "key"
    assert found.to_json()["subject_digest"] == f"sha256:{made.root_digest}"


def test_an_untrusted_signer_is_reported_and_others_still_count(
    model: Path, p256: KeyPair, tmp_path: Path
) -> None:
    stranger = write_private_key(tmp_path / "stranger.pem", make_ec_key("P-256"))
    omsign.sign(model, key=p256.private)
    omsign.attest(model, key=stranger, predicate_type=EVAL, predicate={})
    omsign.attest(model, key=p256.private, predicate_type=EVAL, predicate={})
    bad, good = _check(model, p256)
    assert not bad.verified and bad.signer is None and bad.predicate is None
    assert "key" in bad.reason
    assert good.verified


def test_an_attestation_of_another_model_is_rejected(
    model: Path, p256: KeyPair, tmp_path: Path
) -> None:
    other = make_model(tmp_path / "other", {"w.bin": b"other weights"})
    omsign.sign(model, key=p256.private)
    made = omsign.attest(
        other, key=p256.private, predicate_type=EVAL, predicate={}, output=tmp_path / "x.sig"
    )
    line = json.dumps(json.loads((tmp_path / "x.sig").read_text()), separators=(",", ":"))
    with open(model / "claims.jsonl", "a") as f:  # reused beside this model
        f.write(line + "\n")
    (found,) = _check(model, p256)
    assert not found.verified
    assert found.reason.startswith(f"it is about sha256:{made.root_digest}, not this model")
    assert found.predicate is None  # nothing of it is reported as said about this model


def test_several_subjects_are_rejected(model: Path, p256: KeyPair) -> None:
    root = omsign.sign(model, key=p256.private).root_digest
    subject = intoto.Subject("model", {"sha256": root})
    _append_statement(model, p256, [subject, intoto.Subject("other", {"sha256": "00" * 32})])
    (found,) = _check(model, p256)
    assert not found.verified
    assert found.reason == "the statement has 2 subjects; an attestation is about exactly one model"


def test_a_malformed_line_never_hides_the_others(model: Path, p256: KeyPair) -> None:
    omsign.sign(model, key=p256.private)
    omsign.attest(model, key=p256.private, predicate_type=EVAL, predicate={"n": 1})
    with open(model / "claims.jsonl", "ab") as f:
        f.write(b'{"mediaType": "nonsense"}\n')
    omsign.attest(model, key=p256.private, predicate_type=EVAL, predicate={"n": 2})
    first, bad, last = _check(model, p256)
    assert first.verified and last.verified
    assert not bad.verified and bad.location.endswith("claims.jsonl:2")
    assert "mediaType" in bad.reason
    assert "\n" not in bad.reason


def test_a_built_in_predicate_of_the_wrong_shape_is_not_verified(
    model: Path, p256: KeyPair
) -> None:
    omsign.sign(model, key=p256.private)
    omsign.attest(model, key=p256.private, predicate_type="provenance", predicate={"x": 1})
    (found,) = _check(model, p256)
    assert not found.verified and "buildDefinition" in found.reason


def test_an_unproven_claimed_time_is_reported_as_claimed_only(model: Path, p256: KeyPair) -> None:
    omsign.sign(model, key=p256.private)
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).replace(microsecond=0)
    verdict = {"verificationResult": "PASSED", "timeVerified": future.isoformat()}
    omsign.attest(model, key=p256.private, predicate_type="scan", predicate=verdict)
    (found,) = _check(model, p256)
    assert found.verified  # without a timestamp nothing proves or disproves the claim
    assert found.proven_time is None
    assert found.claimed_time == future
    assert found.to_json()["proven_time"] is None


def test_a_claimed_time_after_the_proven_signing_time_is_rejected(
    model: Path, p256: KeyPair, tsa: RunningTSA
) -> None:
    omsign.sign(model, key=p256.private)
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    late = {"verificationResult": "PASSED", "timeVerified": future.isoformat()}
    omsign.attest(model, key=p256.private, tsa_url=tsa.url, predicate_type="scan", predicate=late)
    now = {
        "verificationResult": "PASSED",
        "timeVerified": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    omsign.attest(model, key=p256.private, tsa_url=tsa.url, predicate_type="scan", predicate=now)
    verified = omsign.verify(model, key=p256.public)
    policy = omsign.make_policy(key=p256.public, tsa_certs=tsa.root_path)
    store = resolve_store(resolve_source(model))
    bad, good = check_attestations(store, verified.root_digest, policy)
    assert bad.proven_time is not None and not bad.verified
    assert "after the signing time its timestamp proves" in bad.reason
    assert good.verified and good.proven_time is not None and good.claimed_time is not None
