"""The key method: a bundle naming its public key by fingerprint (``publicKey.hint``)."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from omsign.backends import SigningKey
from omsign.backends._dsse_sig import PaeDigests, sign_dsse, verify_dsse
from omsign.backends._ec import key_hint
from omsign.bundle import Bundle, Material, Signed
from omsign.errors import SignatureError

__all__ = ["KeyBundleSigner", "verify_key_bundle"]


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
