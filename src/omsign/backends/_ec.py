"""Elliptic-curve facts shared by every key-based backend: curves, hashes, fingerprints."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from omsign.errors import KeyLoadError

__all__ = ["CURVES", "check_ec_key", "hash_for", "key_details", "key_hint", "public_pem"]

# Curve name -> (display name, signature hash, Sigstore key details).
CURVES: dict[str, tuple[str, type[hashes.HashAlgorithm], str]] = {
    "secp256r1": ("P-256", hashes.SHA256, "PKIX_ECDSA_P256_SHA_256"),
    "secp384r1": ("P-384", hashes.SHA384, "PKIX_ECDSA_P384_SHA_384"),
    "secp521r1": ("P-521", hashes.SHA512, "PKIX_ECDSA_P521_SHA_512"),
}


def check_ec_key(key: object, source: str) -> ec.EllipticCurvePublicKey:
    """Returns the key if it is a public EC key on a supported curve, else raises KeyLoadError."""
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise KeyLoadError(f"{source}: not an elliptic-curve key (P-256, P-384 or P-521)")
    if key.curve.name not in CURVES:
        raise KeyLoadError(f"{source}: unsupported curve {key.curve.name}; use P-256/384/521")
    return key


def hash_for(key: ec.EllipticCurvePublicKey) -> hashes.HashAlgorithm:
    """The signature hash for a curve: P-256/SHA-256, P-384/SHA-384, P-521/SHA-512."""
    return CURVES[key.curve.name][1]()


def key_details(key: ec.EllipticCurvePublicKey) -> str:
    """The Sigstore ``PublicKeyDetails`` name of a key."""
    return CURVES[key.curve.name][2]


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    """The PEM SubjectPublicKeyInfo text of a key."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_hint(key: ec.EllipticCurvePublicKey) -> str:
    """Hex SHA-256 of the PEM SubjectPublicKeyInfo text: the bundle's ``publicKey.hint``."""
    return hashlib.sha256(public_pem(key)).hexdigest()
