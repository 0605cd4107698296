"""Signing and checking the DSSE signature with an EC key, shared by key and certificate.

Before a signature verifies, only bounded, linear work is done on the payload: it is
hashed (streamed, once per encoding and hash algorithm), never parsed.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from omsign.backends import SigningKey
from omsign.backends._ec import hash_for
from omsign.bundle import Bundle
from omsign.dsse import PAYLOAD_TYPE, legacy_pae_pieces, pae, pae_header
from omsign.errors import SignatureError

__all__ = ["PaeDigests", "sign_dsse", "verify_dsse"]


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


class PaeDigests:
    """The digests of a bundle's signed encodings, each computed at most once.

    Hashing streams the payload: no encoding is built in memory, and checking a
    signature against many keys hashes the payload once per hash algorithm. The
    payload is never parsed: before a signature verifies it is untrusted bytes.
    """

    def __init__(self, payload_type: str, payload: bytes) -> None:
        self._type, self._payload = payload_type, payload
        self._standard: dict[str, bytes] = {}
        self._legacy: bytes | None = None

    def standard(self, algorithm: hashes.HashAlgorithm) -> bytes:
        """The digest of the DSSE v1 PAE (:func:`omsign.dsse.pae`) with ``algorithm``."""
        if algorithm.name not in self._standard:
            h = hashes.Hash(algorithm)
            h.update(pae_header(self._type, len(self._payload)))
            h.update(self._payload)
            self._standard[algorithm.name] = h.finalize()
        return self._standard[algorithm.name]

    def legacy(self) -> bytes:
        """The SHA-256 digest of the malformed v0.2 encoding (:func:`omsign.dsse.legacy_pae`)."""
        if self._legacy is None:
            h = hashes.Hash(hashes.SHA256())
            for piece in legacy_pae_pieces(self._type, self._payload):
                h.update(piece)
            self._legacy = h.finalize()
        return self._legacy


def _holds(
    public_key: ec.EllipticCurvePublicKey,
    signature: bytes,
    digest: bytes,
    algorithm: hashes.HashAlgorithm,
) -> bool:
    try:
        public_key.verify(signature, digest, ec.ECDSA(Prehashed(algorithm)))
    except InvalidSignature:
        return False
    return True


def verify_dsse(
    bundle: Bundle,
    public_key: ec.EllipticCurvePublicKey,
    signer: str,
    digests: PaeDigests | None = None,
) -> bool:
    """Checks the DSSE signature (OMS 8.2), without parsing the payload.

    The standard PAE is tried first, then the malformed v0.2 encoding (SHA-256
    whatever the curve). Which predicate may use the v0.2 encoding is decided after
    authentication, by :func:`omsign.predicates.parse_statement`.

    Args:
        bundle: the parsed bundle.
        public_key: the key that must have signed.
        signer: who the key is, for the message.
        digests: the bundle's digests, shared when trying several keys.

    Returns:
        False when the standard encoding verified, True when only the v0.2 one did.

    Raises:
        SignatureError: the signature does not verify with ``public_key``.
    """
    digests = digests or PaeDigests(bundle.payload_type, bundle.payload)
    algorithm = hash_for(public_key)
    if _holds(public_key, bundle.signature, digests.standard(algorithm), algorithm):
        return False
    if _holds(public_key, bundle.signature, digests.legacy(), hashes.SHA256()):
        return True
    raise SignatureError(f"the signature does not verify with {signer}")
