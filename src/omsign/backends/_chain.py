"""Certificate chain validation for the certificate method (RFC 5280), step by step.

A path is searched against the anchors the user gives and nothing else (never the
system trust store): each link's signature, CA constraints and ``keyCertSign`` on
issuers, validity at the checked time, and key usages as RFC 5280 4.2.1.3 and
4.2.1.12 say. On the leaf, an absent KeyUsage or ExtendedKeyUsage does not restrict
it; a present one must include ``digitalSignature`` / ``codeSigning``
(``anyExtendedKeyUsage`` alone is not enough). An issuer's ExtendedKeyUsage, when
present, restricts what it issues (as Go's x509 nests them): it must include
``codeSigning`` or ``anyExtendedKeyUsage``. A leaf that is itself a CA is accepted
with a warning.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from omsign.errors import IdentityError

__all__ = ["check_given_issuers", "check_leaf", "describe_certificate", "validate_chain"]

_MAX_DEPTH = 8

logger = logging.getLogger("omsign")


def describe_certificate(cert: x509.Certificate) -> str:
    """Subject plus e-mail/URI/DNS names, for messages and reports."""
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        for kind in (x509.RFC822Name, x509.UniformResourceIdentifier, x509.DNSName):
            names.extend(str(v) for v in san.get_values_for_type(kind))
    except x509.ExtensionNotFound:
        pass
    subject = cert.subject.rfc4514_string() or "(empty subject)"
    return f"{subject} ({', '.join(names)})" if names else subject


def _within(cert: x509.Certificate, at: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _ext(cert: x509.Certificate, kind: type[Any]) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _can_issue(cert: x509.Certificate) -> bool:
    bc = _ext(cert, x509.BasicConstraints)
    ku = _ext(cert, x509.KeyUsage)
    return bool(bc is not None and bc.ca and (ku is None or ku.key_cert_sign))


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, Exception):
        return False
    return True


def check_leaf(leaf: x509.Certificate, at: dt.datetime) -> None:
    """The leaf's validity at ``at`` and its key usages (RFC 5280 4.2.1.3, 4.2.1.12)."""
    who = describe_certificate(leaf)
    if not _within(leaf, at):
        raise IdentityError(
            f"signing certificate {who} is not valid at {at:%Y-%m-%d %H:%M:%S} UTC "
            f"(valid {leaf.not_valid_before_utc:%Y-%m-%d} to {leaf.not_valid_after_utc:%Y-%m-%d})"
        )
    ku = _ext(leaf, x509.KeyUsage)
    if ku is not None and not ku.digital_signature:  # absent: not restricted
        raise IdentityError(f"signing certificate {who} does not allow digital signatures")
    eku = _ext(leaf, x509.ExtendedKeyUsage)
    if eku is not None and ExtendedKeyUsageOID.CODE_SIGNING not in eku:
        detail = (
            " (anyExtendedKeyUsage alone is not enough)"
            if ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku
            else ""
        )
        raise IdentityError(f"signing certificate {who} does not allow code signing{detail}")
    bc = _ext(leaf, x509.BasicConstraints)
    if bc is not None and bc.ca:
        logger.warning(
            "signing certificate %s is a CA certificate; a dedicated signing certificate is safer",
            who,
        )


def _issuer_allows_code_signing(issuer: x509.Certificate) -> bool:
    """An issuer's ExtendedKeyUsage, when present, bounds what it may issue (as Go's x509)."""
    eku = _ext(issuer, x509.ExtendedKeyUsage)
    return bool(
        eku is None
        or ExtendedKeyUsageOID.CODE_SIGNING in eku
        or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in eku
    )


def check_given_issuers(leaf: x509.Certificate, chain: Sequence[x509.Certificate]) -> None:
    """At signing: no issuer in the given chain above the leaf excludes code signing."""
    current, seen = leaf, [leaf]
    while len(seen) <= len(chain):
        issuer = next(
            (
                c
                for c in chain
                if c not in seen and c.subject == current.issuer and _issued_by(current, c)
            ),
            None,
        )
        if issuer is None:
            return
        if not _issuer_allows_code_signing(issuer):
            raise IdentityError(
                f"the issuer {describe_certificate(issuer)} of {describe_certificate(current)} "
                "may not issue code-signing certificates (its extended key usage excludes it)"
            )
        current = issuer
        seen.append(issuer)


# Extensions this validation understands; any other critical one makes a certificate unusable.
_UNDERSTOOD = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    }
)
_MAX_SIGNATURE_CHECKS = 64  # bounds the path search, whatever the bundle holds


def _unsupported(cert: x509.Certificate) -> str | None:
    """Why this validation cannot vouch for a certificate, or None."""
    for ext in cert.extensions:
        if ext.oid == ExtensionOID.NAME_CONSTRAINTS:
            return "has name constraints, which omsign does not evaluate"
        if ext.critical and ext.oid not in _UNDERSTOOD:
            return f"has an unrecognised critical extension {ext.oid.dotted_string}"
    return None


def _path_length_ok(candidate: x509.Certificate, path: Sequence[x509.Certificate]) -> bool:
    """RFC 5280 6.1.4: a CA's pathLenConstraint bounds the intermediates below it."""
    bc = _ext(candidate, x509.BasicConstraints)
    if bc is None or bc.path_length is None:
        return True
    below = sum(1 for c in path[1:] if c.subject != c.issuer)
    return bool(bc.path_length >= below)


def _spki(cert: x509.Certificate) -> bytes | None:
    """The DER SubjectPublicKeyInfo, or None when the key's algorithm is unsupported."""
    try:
        return cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except Exception:  # cryptography's UnsupportedAlgorithm, or a damaged key
        return None


def _distinct(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """Drops certificates that repeat a subject and key already listed (first one wins),
    and those whose key cannot be used (an unknown algorithm cannot vouch for anything)."""
    seen, out = set(), []
    for cert in certs:
        spki = _spki(cert)
        if spki is None:
            logger.debug("skipping %s: its key cannot be used", describe_certificate(cert))
            continue
        key = (cert.subject.public_bytes(), spki)
        if key not in seen:
            seen.add(key)
            out.append(cert)
    return out


def validate_chain(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: dt.datetime,
) -> list[x509.Certificate]:
    """Finds a valid path from ``leaf`` to one of ``anchors``.

    The search is bounded: candidates repeating a subject and key are dropped, a
    certificate that led nowhere is not tried again, and at most 64 signatures are
    checked, so a bundle stuffed with look-alike CA certificates cannot stall it.

    Args:
        leaf: the signing certificate.
        intermediates: untrusted certificates that may complete the path.
        anchors: trusted certificates; a path ends at any of them.
        at: the time at which every certificate on the path must be valid.

    Returns:
        The path, leaf first, anchor last.

    Raises:
        IdentityError: the leaf is unusable or no valid path reaches an anchor.
    """
    check_leaf(leaf, at)
    who = describe_certificate(leaf)
    if (why := _unsupported(leaf)) is not None:
        raise IdentityError(f"signing certificate {who} {why}")
    anchor_set = set(anchors)
    candidates = _distinct([*anchors, *intermediates])
    dead: set[x509.Certificate] = set()
    budget = [_MAX_SIGNATURE_CHECKS]
    excluded: list[x509.Certificate] = []  # issuers whose ExtendedKeyUsage excludes code signing

    def extend(path: list[x509.Certificate]) -> list[x509.Certificate] | None:
        current = path[-1]
        if current in anchor_set:
            return path
        if len(path) > _MAX_DEPTH:
            return None
        for candidate in candidates:
            if candidate in path or candidate in dead or candidate.subject != current.issuer:
                continue
            if not (_can_issue(candidate) and _within(candidate, at)):
                continue
            if _unsupported(candidate) is not None or not _path_length_ok(candidate, path):
                continue
            if budget[0] <= 0:
                raise IdentityError(f"the certificate chain of {who} is too complex to validate")
            budget[0] -= 1
            if _issued_by(current, candidate):
                if not _issuer_allows_code_signing(candidate):
                    excluded.append(candidate)
                    dead.add(candidate)
                    continue
                found = extend([*path, candidate])
                if found is not None:
                    return found
                dead.add(candidate)  # fail closed: a longer path through it is not tried
        return None

    path = extend([leaf])
    if path is None:
        if excluded:
            raise IdentityError(
                f"signing certificate {who} does not chain to a trusted certificate: its "
                f"issuer {describe_certificate(excluded[0])} may not issue code-signing "
                "certificates (its extended key usage excludes code signing)"
            )
        raise IdentityError(
            f"signing certificate {who} does not chain to a trusted certificate",
            option="cert_chain",
            hint="trusted certificates are the ones given with {option}",
        )
    return path
