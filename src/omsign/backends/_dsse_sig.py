"""Signing and checking the DSSE signature with an EC key, shared by key and certificate."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from omsign.backends import SigningKey
from omsign.backends._ec import hash_for
from omsign.bundle import Bundle
from omsign.dsse import PAYLOAD_TYPE, legacy_pae, pae
from omsign.errors import SignatureError
from omsign.statement import LEGACY_PREDICATE_TYPE, predicate_type_of

__all__ = ["sign_dsse", "verify_dsse"]


def sign_dsse(
    key: SigningKey, payload: bytes, tsa_url: str | None
) -> tuple[bytes, tuple[bytes, ...]]:
    """Signs the PAE of ``payload``; with ``tsa_url``, timestamps the signature (RFC 3161).

    Returns:
        The DER signature and the timestamp tokens over it (none without ``tsa_url``).
    """
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    if not tsa_url:
        return signature, ()
    from omsign._timestamp import request_timestamp

    return signature, (request_timestamp(tsa_url, signature),)


def verify_dsse(bundle: Bundle, public_key: ec.EllipticCurvePublicKey, signer: str) -> None:
    """Checks the DSSE signature (OMS 8.2).

    The malformed v0.2 encoding (SHA-256 whatever the curve) is tried only when the
    payload claims the deprecated ``Digests/v0.1`` predicate.

    Raises:
        SignatureError: the signature does not verify with ``public_key``.
    """
    try:
        public_key.verify(
            bundle.signature,
            pae(bundle.payload_type, bundle.payload),
            ec.ECDSA(hash_for(public_key)),
        )
        return
    except InvalidSignature:
        pass
    if predicate_type_of(bundle.payload) == LEGACY_PREDICATE_TYPE:
        try:
            public_key.verify(
                bundle.signature,
                legacy_pae(bundle.payload_type, bundle.payload),
                ec.ECDSA(hashes.SHA256()),
            )
            return
        except InvalidSignature:
            pass
    raise SignatureError(f"the signature does not verify with {signer}")
