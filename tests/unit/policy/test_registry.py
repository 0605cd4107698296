"""The method registry: options choose one method, a new method is one registration."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from helpers.fixtures import KeyPair
from helpers.pki import make_ec_key
from omsign.backends._ec import key_hint
from omsign.backends._key import KeyBundleSigner, KeyPolicy
from omsign.backends._pem import PemSigningKey
from omsign.bundle import Bundle, build_bundle, parse_bundle
from omsign.errors import IdentityError, UsageError
from omsign.policy import (
    AnyOf,
    Method,
    VerifiedSignature,
    policy_from_options,
    register_method,
    unregister_method,
    verify_signature,
)

PAYLOAD = b'{"statement": "toy"}'


@dataclass(frozen=True)
class FingerprintVerifier:
    """A toy method: trusts a key bundle whose fingerprint is listed, without the key."""

    fingerprint: str

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> FingerprintVerifier:
        return cls(str(options["fingerprint"]))

    @property
    def method(self) -> str:
        return "key"

    @property
    def name(self) -> str:
        return f"fingerprint {self.fingerprint[:8]}"

    def verify(self, bundle: Bundle) -> VerifiedSignature:
        if bundle.key_hint != self.fingerprint:
            raise IdentityError(f"not fingerprint {self.fingerprint[:8]}")
        return VerifiedSignature("key", bundle.payload, f"fingerprint {self.fingerprint}")


@pytest.fixture
def toy() -> Iterator[Method]:
    method = Method("fingerprint", FingerprintVerifier, ("fingerprint",), "{0} HEX")
    register_method(method)
    yield method
    unregister_method("fingerprint")


def key_bundle(key: ec.EllipticCurvePrivateKey) -> Bundle:
    signed = KeyBundleSigner(PemSigningKey(key)).sign_statement(PAYLOAD)
    return parse_bundle(json.dumps(build_bundle(PAYLOAD, *signed)).encode(), "test bundle")


def test_a_registered_method_is_built_from_its_options(toy: Method) -> None:
    key = make_ec_key()
    verifier = policy_from_options({"fingerprint": key_hint(key.public_key())})
    assert isinstance(verifier, FingerprintVerifier)
    proven = verify_signature(key_bundle(key), verifier)
    assert proven.signer == f"fingerprint {key_hint(key.public_key())}"
    with pytest.raises(IdentityError):
        verify_signature(key_bundle(make_ec_key()), verifier)


def test_a_registered_method_composes_with_the_built_in_ones(toy: Method) -> None:
    mine, other = make_ec_key(), make_ec_key()
    policy = AnyOf(
        [KeyPolicy((other.public_key(),)), FingerprintVerifier(key_hint(mine.public_key()))]
    )
    assert verify_signature(key_bundle(mine), policy).signer.startswith("fingerprint ")


def test_a_registered_method_is_offered_when_none_is_chosen(toy: Method) -> None:
    with pytest.raises(UsageError) as caught:
        policy_from_options({})
    assert "fingerprint" in caught.value.options
    assert "fingerprint= HEX" in str(caught.value)


def test_unregistered_methods_are_not_offered(toy: Method) -> None:
    unregister_method("fingerprint")
    with pytest.raises(UsageError) as caught:
        policy_from_options({"fingerprint": "ab"})
    assert "fingerprint" not in caught.value.options


def test_two_methods_at_once_are_refused_naming_both(p256: KeyPair, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        policy_from_options({"key": p256.public, "identity": "a@example.com"})
    assert caught.value.options[-2:] == ("key", "identity")
    assert "(got key=, identity=)" in str(caught.value)


def test_the_built_in_methods_come_from_their_backends(p256: KeyPair) -> None:
    assert isinstance(policy_from_options({"key": p256.public}), KeyPolicy)
    sigstore = policy_from_options({"identity": "a@example.com", "issuer": "https://issuer"})
    assert type(sigstore).__name__ == "SigstorePolicy"
    assert sigstore.method == "sigstore"
    with pytest.raises(UsageError, match="needs an issuer"):
        policy_from_options({"identity": "a@example.com"})
