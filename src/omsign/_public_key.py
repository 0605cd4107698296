"""``omsign.export_public_key``: the PEM public key of a signing key, for verifiers."""

from __future__ import annotations

import os

from omsign._sign import password_source
from omsign.backends import load_signing_key
from omsign.backends._ec import public_pem

__all__ = ["export_public_key"]


def export_public_key(key: str | os.PathLike[str], *, password: bytes | str | None = None) -> bytes:
    """The PEM SubjectPublicKeyInfo of a private key: a PEM file or a key URI.

    A ``pkcs11:`` key is read from the token's public object (usually no PIN is
    needed); a cloud KMS key from the service. The bundle's ``publicKey.hint`` of a
    signature made with the key is the SHA-256 of these bytes.

    Args:
        key: a private key PEM path, or a ``pkcs11:``, ``awskms://``, ``gcpkms://`` or
            ``azurekms://`` URI (or a scheme registered by another package).
        password: the key's password or the token's PIN, when one is needed (else
            ``$OMSIGN_PASSWORD`` / ``$OMSIGN_PKCS11_PIN`` or a prompt).

    Raises:
        omsign.errors.Error: the key cannot be loaded (exit code 2).
    """
    reference = os.fspath(key)
    if reference.lower().startswith("pkcs11:"):
        from omsign.backends.pkcs11 import export_public_key_pem

        return export_public_key_pem(reference, password_source(password))
    return public_pem(load_signing_key(reference, password_source(password)).public_key())
