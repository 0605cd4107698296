"""Signing and checking the DSSE signature with an EC key, shared by key and certificate."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from omsign.backends import SigningKey
from omsign.backends._ec import hash_for
from omsign.bundle import MEDIA_TYPE, Bundle
from omsign.dsse import PAYLOAD_TYPE, envelope, legacy_pae, pae
from omsign.errors import SignatureError
from omsign.statement import LEGACY_PREDICATE_TYPE, predicate_type_of

__all__ = ["assemble_bundle", "sign_dsse", "verify_dsse"]


def sign_dsse(key: SigningKey, payload: bytes, tsa_url: str | None) -> tuple[bytes, list[bytes]]:
    """Signs the PAE of ``payload``; with ``tsa_url``, timestamps the signature (RFC 3161)."""
    signature = key.sign(pae(PAYLOAD_TYPE, payload))
    stamps: list[bytes] = []
    if tsa_url:
        from omsign._timestamp import request_timestamp

        stamps.append(request_timestamp(tsa_url, signature))
    return signature, stamps


def assemble_bundle(
    payload: bytes,
    signature: bytes,
    material: dict[str, Any],
    timestamps: Sequence[bytes] = (),
) -> dict[str, Any]:
    """A Sigstore bundle v0.3 with the given verification material."""
    vm: dict[str, Any] = {**material, "tlogEntries": []}
    if timestamps:
        vm["timestampVerificationData"] = {
            "rfc3161Timestamps": [
                {"signedTimestamp": base64.b64encode(t).decode()} for t in timestamps
            ]
        }
    return {
        "mediaType": MEDIA_TYPE,
        "verificationMaterial": vm,
        "dsseEnvelope": envelope(payload, signature),
    }


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
