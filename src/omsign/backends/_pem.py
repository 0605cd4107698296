"""Keys and certificates from PEM files: private keys (optionally encrypted), public keys.

Files are read with :func:`read_trust_file` (regular files only, bounded size), and a key
of an algorithm omsign or ``cryptography`` does not know is a load error naming the file.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from omsign.backends import PasswordSource
from omsign.backends._ec import check_ec_key, hash_for
from omsign.backends._trust_files import MAX_KEY_FILE_BYTES, read_trust_file
from omsign.errors import KeyLoadError

if TYPE_CHECKING:
    from cryptography import x509

__all__ = [
    "PemSigningKey",
    "load_certificates",
    "load_pem_signing_key",
    "load_public_key",
    "load_public_keys",
]


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    return read_trust_file(path, what, MAX_KEY_FILE_BYTES)


class PemSigningKey:
    """A private EC key loaded from a PEM file."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self._key = key

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """Returns the public half of the key."""
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        """Signs with ECDSA and the curve's hash; returns DER."""
        return self._key.sign(data, ec.ECDSA(hash_for(self._key.public_key())))


def load_pem_signing_key(
    path: str | os.PathLike[str], password_source: PasswordSource
) -> PemSigningKey:
    """Loads a PEM private key, asking ``password_source`` only if it is encrypted.

    Raises:
        KeyLoadError: missing file, wrong password, not an EC key on a supported curve.
    """
    data = _read(path, "private key")
    password: bytes | None = None
    for _attempt in range(2):
        try:
            key = serialization.load_pem_private_key(data, password=password)
            break
        except TypeError:
            if password is not None:
                raise KeyLoadError(f"{path}: the key is not encrypted") from None
            password = password_source(f"Password for {path}: ")
            if password is None:
                raise KeyLoadError(
                    f"{path}: the key is encrypted",
                    option="password",
                    hint="give its password with {option} or $OMSIGN_PASSWORD",
                ) from None
        except ValueError:
            if password is not None:
                raise KeyLoadError(f"{path}: wrong password for the private key") from None
            raise _not_a_private_key(path, data) from None
        except Exception as exc:  # unsupported algorithms and the like
            raise KeyLoadError(f"{path}: cannot load private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyLoadError(f"{path}: not an elliptic-curve key (P-256, P-384 or P-521)")
    check_ec_key(key.public_key(), str(path))
    return PemSigningKey(key)


def _not_a_private_key(path: str | os.PathLike[str], data: bytes) -> KeyLoadError:
    """The error for a file that holds no private key, saying what it holds instead."""
    if b"-----BEGIN PUBLIC KEY-----" in data:
        return KeyLoadError(
            f"{path}: is a public key; signing needs the private key",
            option="key",
            hint="give the private key with {option} (the public key is for verifying)",
        )
    if b"-----BEGIN CERTIFICATE-----" in data:
        return KeyLoadError(
            f"{path}: is a certificate; signing needs its private key",
            options=("key", "certificate"),
            hint="give the private key with {option0} and the certificate with {option1}",
        )
    return KeyLoadError(f"{path}: not a PEM private key")


def load_public_keys(path: str | os.PathLike[str]) -> list[ec.EllipticCurvePublicKey]:
    """Loads every PEM public key in a file, skipping any text around the PEM blocks.

    Raises:
        KeyLoadError: missing file, no PEM public key, unsupported key type.
    """
    data = _read(path, "public key")
    marker, end_marker = b"-----BEGIN PUBLIC KEY-----", b"-----END PUBLIC KEY-----"
    if marker not in data:
        if b"PRIVATE KEY-----" in data:
            raise KeyLoadError(
                f"{path}: is a private key; verify with its public key",
                hint="the public-key command writes it",
            )
        if b"-----BEGIN CERTIFICATE-----" in data:
            raise KeyLoadError(
                f"{path}: is a certificate, not a public key",
                options=("cert_chain", "key"),
                hint="to trust certificates give the CA that issued them with {option0}; "
                "{option1} takes a public key",
            )
        raise KeyLoadError(f"{path}: no PEM public key ('BEGIN PUBLIC KEY') found")
    keys = []
    start = data.find(marker)
    while start >= 0:
        end = data.find(end_marker, start)
        if end < 0:
            raise KeyLoadError(f"{path}: malformed PEM public key (no END line)")
        try:
            key = serialization.load_pem_public_key(data[start : end + len(end_marker)])
        except ValueError:
            raise KeyLoadError(f"{path}: malformed PEM public key") from None
        except Exception as exc:  # cryptography's UnsupportedAlgorithm
            raise KeyLoadError(f"{path}: unsupported public key algorithm ({exc})") from None
        keys.append(check_ec_key(key, str(path)))
        start = data.find(marker, end)
    return keys


def load_public_key(path: str | os.PathLike[str]) -> ec.EllipticCurvePublicKey:
    """Loads the first PEM public key of a file (see :func:`load_public_keys`)."""
    return load_public_keys(path)[0]


def load_certificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Loads every PEM certificate in a file (at least one).

    Raises:
        KeyLoadError: missing file or no valid certificate.
    """
    from cryptography import x509

    data = _read(path, "certificate")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise KeyLoadError(f"{path}: no valid PEM certificate found") from None
    for cert in certs:
        try:  # refused now, not as a crash deep in chain validation
            cert.public_key()
        except Exception as exc:  # cryptography's UnsupportedAlgorithm, or a damaged key
            raise KeyLoadError(
                f"{path}: certificate {cert.subject.rfc4514_string() or '(empty subject)'} "
                f"has a key omsign cannot use ({exc})"
            ) from None
    return certs
