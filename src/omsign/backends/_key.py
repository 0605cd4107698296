"""The key method: a bundle naming its public key by fingerprint (``publicKey.hint``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from omsign.backends import SigningKey
from omsign.backends._dsse_sig import PaeDigests, sign_dsse, verify_dsse
from omsign.backends._ec import key_hint
from omsign.bundle import Bundle, Material, Signed
from omsign.errors import SignatureError
from omsign.policy._base import VerifiedSignature, check_method

if TYPE_CHECKING:
    import os

    from omsign._timestamp import TimestampAnchor

__all__ = ["KeyBundleSigner", "KeyPolicy", "verify_key_bundle"]


class KeyBundleSigner:
    """Signs with a private key; the bundle carries the key's fingerprint."""

    def __init__(self, key: SigningKey, tsa_url: str | None = None) -> None:
        self._key = key
        self._tsa_url = tsa_url

    def sign_statement(self, payload: bytes) -> Signed:
        """Signs the statement bytes; returns the signature and the key's fingerprint."""
        signature, stamps = sign_dsse(self._key, payload, self._tsa_url)
        hint = key_hint(self._key.public_key())
        return Signed(signature, Material("key", key_hint=hint, timestamps=stamps))


def _raw_key_matches(raw: bytes, key: ec.EllipticCurvePublicKey) -> bool:
    try:
        start = raw.find(b"-----BEGIN")
        other = (
            serialization.load_pem_public_key(raw[start:])
            if start >= 0
            else serialization.load_der_public_key(raw)
        )
    except Exception:  # malformed or unsupported key material: it is not the given key
        return False
    return other == key


def verify_key_bundle(
    bundle: Bundle, keys: Sequence[ec.EllipticCurvePublicKey]
) -> tuple[str, bool]:
    """Verifies a key-method bundle against trusted public keys (OMS 8.2).

    The payload is hashed once per encoding, whatever the number of keys, and never
    parsed here.

    Returns:
        A description of the key that verified (``key sha256:<hint>``), and whether
        the signature is over the legacy v0.2 encoding.

    Raises:
        SignatureError: no trusted key verifies the signature.
    """
    last: SignatureError | None = None
    digests = PaeDigests(bundle.payload_type, bundle.payload)
    for key in keys:
        hint = key_hint(key)
        try:
            legacy = verify_dsse(bundle, key, f"the key sha256:{hint[:16]}", digests)
        except SignatureError as exc:
            last = exc
            continue
        return f"key sha256:{hint}", legacy
    named = bundle.key_hint and all(bundle.key_hint != key_hint(k) for k in keys)
    raw_other = bundle.key_raw is not None and not any(
        _raw_key_matches(bundle.key_raw, k) for k in keys
    )
    if named or raw_other:
        which = f" sha256:{bundle.key_hint}" if bundle.key_hint else ""
        given = ", ".join(f"sha256:{key_hint(k)}" for k in keys)
        raise SignatureError(
            f"the model was signed with a different key{which}, not the given {given}"
        )
    assert last is not None
    raise last


@dataclass(frozen=True)
class KeyPolicy:
    """Trust signatures made by any of these public keys (key method).

    Attributes:
        keys: the trusted public keys.
        tsa_anchors: timestamp authorities whose tokens prove when the signature existed.
    """

    keys: tuple[ec.EllipticCurvePublicKey, ...]
    tsa_anchors: tuple[TimestampAnchor, ...] = ()

    @classmethod
    def from_files(
        cls,
        paths: Sequence[str | os.PathLike[str]],
        tsa_anchors: Sequence[TimestampAnchor] = (),
    ) -> KeyPolicy:
        """Loads every PEM public key in the files (TSA anchors: ``load_tsa_anchors``)."""
        from omsign.backends._pem import load_public_keys

        return cls(tuple(k for p in paths for k in load_public_keys(p)), tuple(tsa_anchors))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> KeyPolicy:
        """The policy ``key=`` (with ``tsa_certs=`` and ``trust_config=``) describes."""
        from omsign._paths import as_paths
        from omsign.backends._stamps import tsa_anchors_from_options

        return cls.from_files(as_paths(options["key"]), tsa_anchors_from_options(options))

    @property
    def method(self) -> str:
        """``key``."""
        return "key"

    @property
    def name(self) -> str:
        """The trusted keys' fingerprints."""
        hints = ", ".join(f"sha256:{key_hint(k)[:16]}" for k in self.keys)
        return f"key {hints}" if hints else "no key"

    def verify(self, bundle: Bundle) -> VerifiedSignature:
        """Checks the signature with the trusted keys and any trusted timestamp (OMS 8.2).

        Raises:
            IdentityError: the bundle was not signed with the key method.
            SignatureError: no trusted key verifies the signature, or a timestamp is bad.
        """
        from omsign.backends._stamps import proven_time

        check_method(bundle, "key")
        signer, legacy = verify_key_bundle(bundle, self.keys)
        return VerifiedSignature(
            "key",
            bundle.payload,
            signer,
            signed_at=proven_time(bundle, self.tsa_anchors),
            legacy_encoding=legacy,
        )
