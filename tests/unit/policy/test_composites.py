"""AnyOf and Threshold: which signers verified, which did not and why, over real key bundles."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from helpers.pki import issue_leaf, make_ca, make_ec_key
from omsign.backends._certificate import CertificateBundleSigner, CertificatePolicy
from omsign.backends._ec import key_hint
from omsign.backends._key import KeyBundleSigner, KeyPolicy
from omsign.backends._pem import PemSigningKey
from omsign.bundle import Bundle, build_bundle, parse_bundle
from omsign.errors import IdentityError, SignatureError, UsageError
from omsign.policy import AnyOf, MethodMismatchError, Threshold, verify_bundles, verify_signature

PAYLOAD = b'{"statement": "model A"}'
OTHER = b'{"statement": "model B"}'


def key_bundle(key: ec.EllipticCurvePrivateKey, payload: bytes = PAYLOAD) -> Bundle:
    signed = KeyBundleSigner(PemSigningKey(key)).sign_statement(payload)
    return parse_bundle(json.dumps(build_bundle(payload, *signed)).encode(), "test bundle")


def trust(key: ec.EllipticCurvePrivateKey) -> KeyPolicy:
    return KeyPolicy((key.public_key(),))


@pytest.fixture(scope="module")
def keys() -> list[ec.EllipticCurvePrivateKey]:
    return [make_ec_key("P-256") for _ in range(4)]


# --- AnyOf ---------------------------------------------------------------------------


def test_any_of_returns_the_first_verifier_that_accepts(
    keys: list[ec.EllipticCurvePrivateKey],
) -> None:
    policy = AnyOf([trust(keys[0]), trust(keys[1])])
    proven = verify_signature(key_bundle(keys[1]), policy)
    assert proven.method == "key"
    assert proven.payload == PAYLOAD
    assert proven.signer == f"key sha256:{key_hint(keys[1].public_key())}"


def test_any_of_rejects_a_signer_none_trusts_and_names_each(
    keys: list[ec.EllipticCurvePrivateKey],
) -> None:
    a, b = trust(keys[0]), trust(keys[1])
    with pytest.raises(IdentityError) as caught:
        AnyOf([a, b]).verify(key_bundle(keys[2]))
    assert a.name in str(caught.value) and b.name in str(caught.value)


def test_any_of_with_one_relevant_verifier_keeps_its_error(
    keys: list[ec.EllipticCurvePrivateKey],
) -> None:
    root = make_ca("Root")
    policy = AnyOf([CertificatePolicy((root.cert,)), trust(keys[0])])
    with pytest.raises(SignatureError, match="different key"):
        policy.verify(key_bundle(keys[1]))


def test_any_of_accepts_across_methods() -> None:
    root = make_ca("Root")
    leaf = issue_leaf(root)
    signer = CertificateBundleSigner(PemSigningKey(leaf.key), leaf.cert, [root.cert])
    raw = build_bundle(PAYLOAD, *signer.sign_statement(PAYLOAD))
    bundle = parse_bundle(json.dumps(raw).encode(), "certificate bundle")
    policy = AnyOf([KeyPolicy((make_ec_key().public_key(),)), CertificatePolicy((root.cert,))])
    assert verify_signature(bundle, policy).method == "certificate"


def test_any_of_needs_a_verifier() -> None:
    with pytest.raises(UsageError):
        AnyOf([])


def test_a_bundle_of_another_method_is_a_method_mismatch(
    keys: list[ec.EllipticCurvePrivateKey],
) -> None:
    root = make_ca("Root")
    with pytest.raises(MethodMismatchError) as caught:
        CertificatePolicy((root.cert,)).verify(key_bundle(keys[0]))
    assert caught.value.options == ("key",)
    assert "verify with key= PUBLIC.pem" in str(caught.value)


# --- Threshold -----------------------------------------------------------------------


def test_two_of_three_verified_passes(keys: list[ec.EllipticCurvePrivateKey]) -> None:
    policy = Threshold(2, [trust(keys[0]), trust(keys[1]), trust(keys[2])])
    outcome = verify_bundles([key_bundle(keys[0]), key_bundle(keys[2])], policy)
    assert outcome.ok
    assert outcome.payload == PAYLOAD
    assert len(outcome.verified) == 2
    assert [s.counted for s in outcome.signers] == [True, False, True]
    assert outcome.check() == outcome.verified


def test_one_of_three_fails_and_names_who_failed_and_why(
    keys: list[ec.EllipticCurvePrivateKey],
) -> None:
    policy = Threshold(2, [trust(keys[0]), trust(keys[1]), trust(keys[2])])
    outcome = verify_bundles([key_bundle(keys[0]), key_bundle(keys[3])], policy)
    assert not outcome.ok
    assert outcome.payload is None
    first, second, third = outcome.signers
    assert first.counted and not second.counted and not third.counted
    assert any("different key" in r for r in second.reasons)
    assert [f.index for f in outcome.failures] == [1]  # keys[3] is trusted by no one
    with pytest.raises(IdentityError) as caught:
        outcome.check()
    message = str(caught.value)
    assert "1 of 2 required signers verified" in message
    assert f"{second.name}: not verified" in message
    assert f"{first.name}: verified" in message


def test_the_same_signer_twice_counts_once(keys: list[ec.EllipticCurvePrivateKey]) -> None:
    policy = Threshold(2, [trust(keys[0]), trust(keys[1])])
    outcome = verify_bundles([key_bundle(keys[0]), key_bundle(keys[0])], policy)
    assert not outcome.ok
    assert len(outcome.verified) == 1


def test_one_key_trusted_under_two_names_counts_once(
    keys: list[ec.EllipticCurvePrivateKey],
) -> None:
    policy = Threshold(2, [trust(keys[0]), trust(keys[0])])
    outcome = verify_bundles([key_bundle(keys[0])], policy)
    assert not outcome.ok
    assert len(outcome.verified) == 1


def test_signatures_over_different_payloads_are_reported(
    keys: list[ec.EllipticCurvePrivateKey],
) -> None:
    policy = Threshold(2, [trust(keys[0]), trust(keys[1])])
    outcome = verify_bundles([key_bundle(keys[0]), key_bundle(keys[1], OTHER)], policy)
    assert not outcome.ok
    assert set(outcome.payloads) == {PAYLOAD, OTHER}
    assert sum("signed a different payload" in r for s in outcome.signers for r in s.reasons) == 1


def test_two_payloads_each_reaching_the_threshold_conflict(
    keys: list[ec.EllipticCurvePrivateKey],
) -> None:
    policy = Threshold(1, [trust(keys[0]), trust(keys[1])])
    outcome = verify_bundles([key_bundle(keys[0]), key_bundle(keys[1], OTHER)], policy)
    assert not outcome.ok
    assert outcome.conflict
    assert "2 different payloads" in str(outcome.error())


def test_a_caller_subject_compares_what_payloads_sign(
    keys: list[ec.EllipticCurvePrivateKey],
) -> None:
    policy = Threshold(2, [trust(keys[0]), trust(keys[1])])
    bundles = [key_bundle(keys[0]), key_bundle(keys[1], OTHER)]
    outcome = verify_bundles(bundles, policy, subject=lambda payload: "same root")
    assert outcome.ok
    assert len(outcome.payloads) == 1


def test_a_single_verifier_over_one_bundle_keeps_its_error(
    keys: list[ec.EllipticCurvePrivateKey],
) -> None:
    outcome = verify_bundles([key_bundle(keys[1])], trust(keys[0]))
    assert not outcome.ok
    with pytest.raises(SignatureError, match="different key"):
        outcome.check()


def test_threshold_bounds_are_checked(keys: list[ec.EllipticCurvePrivateKey]) -> None:
    with pytest.raises(UsageError):
        Threshold(0, [trust(keys[0])])
    with pytest.raises(UsageError):
        Threshold(2, [trust(keys[0])])
    with pytest.raises(UsageError):
        Threshold(1, [])


def test_a_one_of_n_threshold_verifies_a_single_bundle(
    keys: list[ec.EllipticCurvePrivateKey],
) -> None:
    policy = Threshold(1, [trust(keys[0]), trust(keys[1])])
    assert verify_signature(key_bundle(keys[1]), policy).payload == PAYLOAD
    assert "1 of (" in policy.name
