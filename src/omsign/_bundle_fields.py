"""Decoding single bundle fields: canonical base64 and DER certificates, strictly.

Each failure is a :class:`~omsign.errors.MalformedSignatureError` that names the
signature file and the field.
"""

from __future__ import annotations

import base64
import binascii
import warnings
from typing import Any

from omsign.errors import MalformedSignatureError

__all__ = ["b64", "bad", "certificate"]

_URLSAFE = str.maketrans("-_", "+/")


def bad(source: str, what: str) -> MalformedSignatureError:
    """The error for a malformed signature file."""
    return MalformedSignatureError(f"{source}: malformed signature: {what}")


def b64(value: Any, source: str, where: str) -> bytes:
    """Decodes canonical base64, standard or URL-safe alphabet, padded or not.

    Anything else fails: characters outside the alphabet, partial padding, and set
    bits after the last byte, so each decoded value has exactly one accepted spelling.
    """
    if not isinstance(value, str) or not value:
        raise bad(source, f"{where} is not a base64 string")
    body = value.rstrip("=")
    padding = len(value) - len(body)
    urlsafe = "-" in body or "_" in body
    text = body.translate(_URLSAFE) if urlsafe else body
    mixed = urlsafe and ("+" in body or "/" in body)
    if padding not in (0, -len(body) % 4) or not text.isascii() or mixed:
        raise bad(source, f"{where} is not valid base64")
    try:
        decoded = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise bad(source, f"{where} is not valid base64") from None
    if base64.b64encode(decoded).decode().rstrip("=") != text:
        raise bad(source, f"{where} is not canonical base64")
    return decoded


def certificate(value: Any, source: str, where: str) -> bytes:
    """Decodes a DER certificate and parses every part that verification reads.

    The X.509 parser is lazy: a certificate that loads may still fail when its
    subject or extensions are first read. Reading them here turns any such failure
    into a malformed signature instead of an error deep inside chain validation.
    """
    der = b64(value, source, where)
    from cryptography import x509

    try:
        with warnings.catch_warnings():  # a non-positive serial number warns, then fails below
            warnings.simplefilter("ignore")
            cert = x509.load_der_x509_certificate(der)
            positive = cert.serial_number > 0
        cert.subject.rfc4514_string()
        cert.issuer.rfc4514_string()
        for extension in cert.extensions:
            repr(extension.value)
        cert.public_key()
        cert.not_valid_before_utc, cert.not_valid_after_utc  # noqa: B018
    except Exception:  # any parse failure of untrusted DER, whatever its class
        raise bad(source, f"{where} is not a valid X.509 certificate") from None
    if not positive:
        raise bad(source, f"{where} has a serial number that is not positive (RFC 5280)")
    return der
