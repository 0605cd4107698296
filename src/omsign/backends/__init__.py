"""Signing backends behind one small interface.

Two protocols cover every way omsign signs:

* :class:`SigningKey` is a private elliptic-curve key wherever it lives: a PEM
  file, a PKCS#11 token, a cloud key service. It knows its public key and signs
  bytes (ECDSA, DER, hash chosen by curve). The key and certificate methods are
  built on it, so a new key store is one module that returns a ``SigningKey``.
* :class:`BundleSigner` signs a DSSE payload and returns the signature with its
  verification material (``omsign.bundle`` puts them into a bundle). Key,
  certificate and Sigstore keyless signing each provide one.

:func:`load_signing_key` picks the key store from the reference's form: a
``scheme:`` URI whose scheme is registered in ``_SCHEMES`` or else a PEM file.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from omsign.errors import UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from omsign.bundle import Signed

__all__ = [
    "BundleSigner",
    "PasswordSource",
    "SigningKey",
    "is_key_uri",
    "load_signing_key",
    "public_key_from_uri",
]

# A callable that returns the password or PIN when (and only if) one is needed.
PasswordSource = Callable[[str], "bytes | None"]


class SigningKey(Protocol):
    """A private EC key (P-256, P-384 or P-521), wherever it is kept."""

    def public_key(self) -> ec.EllipticCurvePublicKey:
        """Returns the public half of the key."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Signs ``data`` with ECDSA, hashing with the curve's hash; returns DER."""
        ...


class BundleSigner(Protocol):
    """Something that signs a DSSE payload for a Sigstore bundle.

    A signer may also have a ``prepare()`` method, which ``omsign.sign`` calls before it
    hashes the model: a signer that needs a token, a certificate or a service gets them
    there, so that it fails at once rather than after the model was read.
    """

    def sign_statement(self, payload: bytes) -> Signed:
        """Signs the in-toto statement bytes; returns the signature and its material."""
        ...


# URI scheme -> "module:function"; the function takes (uri, password_source).
_SCHEMES: dict[str, str] = {
    "pkcs11": "omsign.backends.pkcs11:load_signing_key",
    "awskms": "omsign.backends._awskms:load_signing_key",
    "gcpkms": "omsign.backends._gcpkms:load_signing_key",
    "azurekms": "omsign.backends._azurekms:load_signing_key",
}
# Other packages add schemes without editing omsign: an entry point in this group whose
# name is the scheme and whose value is "module:function" with the signature above.
ENTRY_POINT_GROUP = "omsign.key_schemes"


def _scheme_loader(scheme: str) -> Callable[[str, PasswordSource], SigningKey] | None:
    """A scheme's key loader: built in first, then installed entry points."""
    if scheme in _SCHEMES:
        module_name, func_name = _SCHEMES[scheme].split(":")
        loader: Callable[[str, PasswordSource], SigningKey]
        loader = getattr(importlib.import_module(module_name), func_name)
        return loader
    from importlib.metadata import entry_points

    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name.lower() == scheme:
            loaded: Callable[[str, PasswordSource], SigningKey] = entry.load()
            return loaded
    return None


def load_signing_key(reference: str, password_source: PasswordSource) -> SigningKey:
    """Loads a private key from a PEM path or a registered URI.

    Args:
        reference: a file path, or a URI such as ``pkcs11:token=t;object=k``.
        password_source: called with a prompt when a password or PIN is needed.

    Returns:
        The key, ready to sign.

    Raises:
        UsageError: the URI scheme is unknown.
        KeyLoadError: the key cannot be loaded.
        BackendUnavailableError: the backend's optional dependency is missing.
    """
    scheme, sep, _ = reference.partition(":")
    if sep and scheme.isalnum() and len(scheme) > 1:
        loader = _scheme_loader(scheme.lower())
        if loader is None:
            raise UsageError(f"unknown key URI scheme {scheme!r}; known: {', '.join(_SCHEMES)}")
        return loader(reference, password_source)
    from omsign.backends._pem import load_pem_signing_key

    return load_pem_signing_key(reference, password_source)


def is_key_uri(reference: str) -> bool:
    """Whether ``reference`` is a URI of a registered key scheme (``pkcs11:``, ``awskms://``...)."""
    scheme, sep, _ = reference.partition(":")
    if not (sep and scheme.isalnum() and len(scheme) > 1):
        return False
    if scheme.lower() in _SCHEMES:
        return True
    from importlib.metadata import entry_points

    return any(e.name.lower() == scheme.lower() for e in entry_points(group=ENTRY_POINT_GROUP))


def public_key_from_uri(uri: str, password_source: PasswordSource) -> ec.EllipticCurvePublicKey:
    """The public key of a key a URI names, read from the token or the key service.

    A ``pkcs11:`` key is read from its public object (no PIN when exactly one matches);
    another scheme's key is loaded and asked for its public half.

    Raises:
        UsageError: the URI scheme is unknown.
        KeyLoadError: the key cannot be reached or is not a usable EC key.
    """
    if uri.lower().startswith("pkcs11:"):
        from cryptography.hazmat.primitives import serialization

        from omsign.backends._ec import check_ec_key
        from omsign.backends.pkcs11 import export_public_key_pem

        pem = export_public_key_pem(uri, password_source)
        return check_ec_key(serialization.load_pem_public_key(pem), uri)
    return load_signing_key(uri, password_source).public_key()
