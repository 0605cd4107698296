"""Reading Sigstore certificates and log entries without verifying them.

The Fulcio certificate extensions (OIDC issuer, GitHub Actions claims), the identities
in its subject alternative name, and :func:`describe_sigstore_material` for
``omsign inspect``. Only ``cryptography`` is needed; nothing here checks a signature.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import TYPE_CHECKING, Any

from omsign.errors import MalformedSignatureError

if TYPE_CHECKING:
    from cryptography import x509

    from omsign.bundle import Bundle

__all__ = [
    "GITHUB_CLAIMS",
    "ISSUER_V1",
    "ISSUER_V2",
    "cert_identities",
    "cert_issuer",
    "describe_sigstore_material",
    "extension_text",
    "optional_int",
    "tlog_entry",
]

FULCIO_OID = "1.3.6.1.4.1.57264.1."
ISSUER_V1 = FULCIO_OID + "1"
ISSUER_V2 = FULCIO_OID + "8"
OTHERNAME = FULCIO_OID + "7"
# Claim name -> Fulcio extension OID (raw string value), as cosign checks them.
GITHUB_CLAIMS = {
    "github_workflow_trigger": FULCIO_OID + "2",
    "github_sha": FULCIO_OID + "3",
    "github_workflow_name": FULCIO_OID + "4",
    "github_repository": FULCIO_OID + "5",
    "github_ref": FULCIO_OID + "6",
}


def _der_string(raw: bytes) -> str:
    """Decodes a DER string (UTF8String and friends); raises ValueError."""
    if len(raw) < 2:
        raise ValueError("truncated DER string")
    length, offset = raw[1], 2
    if length & 0x80:
        count = length & 0x7F
        length, offset = int.from_bytes(raw[2 : 2 + count], "big"), 2 + count
    if offset + length != len(raw):
        raise ValueError("bad DER string length")
    return raw[offset:].decode()


def extension_text(cert: x509.Certificate, oid: str, *, der: bool) -> str | None:
    """The text of a Fulcio extension: DER-encoded (``der``) or raw; None if absent."""
    from cryptography import x509

    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid))
    except x509.ExtensionNotFound:
        return None
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):
        return None
    return _der_string(value.value) if der else value.value.decode()


def cert_issuer(cert: x509.Certificate) -> str | None:
    """The OIDC issuer a Fulcio certificate records (extension .1.8, else .1.1)."""
    return extension_text(cert, ISSUER_V2, der=True) or extension_text(cert, ISSUER_V1, der=False)


def cert_identities(cert: x509.Certificate) -> list[str]:
    """The identities in the certificate's SAN: e-mails, URIs and Fulcio otherNames."""
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = list(san.get_values_for_type(x509.RFC822Name))
    names += san.get_values_for_type(x509.UniformResourceIdentifier)
    names += [
        o.value.decode(errors="replace")
        for o in san.get_values_for_type(x509.OtherName)
        if o.type_id.dotted_string == OTHERNAME
    ]
    return names


def _leaf_certificate(bundle: Bundle) -> x509.Certificate:
    from cryptography import x509

    return x509.load_der_x509_certificate(bundle.certificates[0])


def tlog_entry(bundle: Bundle) -> dict[str, Any]:
    """The first transparency log entry of a bundle (an empty dict if there is none)."""
    return bundle.tlog_entries[0] if bundle.tlog_entries else {}


def optional_int(value: object) -> int | None:
    """``int(value)`` for Sigstore's string-encoded integers; None stays None."""
    return None if value is None else int(str(value))


def describe_sigstore_material(bundle: Bundle) -> dict[str, Any]:
    """Describes who signed a Sigstore bundle and when, without verifying it.

    Args:
        bundle: the parsed bundle.

    Returns:
        ``identity`` (the certificate's identities, comma-separated), ``issuer``,
        ``github`` (a dict of the GitHub Actions claims present),
        ``certificate_not_before`` / ``_after``, ``log_index``,
        ``integrated_time`` (ISO 8601 UTC) and ``log_id`` (hex); absent
        values are ``None``.

    Raises:
        MalformedSignatureError: the bundle has no readable certificate.
    """
    try:
        cert = _leaf_certificate(bundle)
        identities = cert_identities(cert)
        github = {
            name.removeprefix("github_"): value
            for name, oid in GITHUB_CLAIMS.items()
            if (value := extension_text(cert, oid, der=False)) is not None
        }
        entry = tlog_entry(bundle)
        integrated = optional_int(entry.get("integratedTime"))
        log_id = entry.get("logId", {}).get("keyId")
        return {
            "identity": ", ".join(identities) or None,
            "issuer": cert_issuer(cert),
            "github": github,
            "certificate_not_before": cert.not_valid_before_utc.isoformat(),
            "certificate_not_after": cert.not_valid_after_utc.isoformat(),
            "log_index": optional_int(entry.get("logIndex")),
            "integrated_time": None
            if integrated is None
            else dt.datetime.fromtimestamp(integrated, dt.timezone.utc).isoformat(),
            "log_id": None if log_id is None else base64.b64decode(log_id).hex(),
        }
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedSignatureError(f"unreadable Sigstore verification material: {exc}") from exc
