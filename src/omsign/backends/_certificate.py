"""The certificate method: a leaf certificate and its chain in ``x509CertificateChain``.

:class:`CertificateBundleSigner` signs with a key whose certificate (and chain) goes
into the bundle; :class:`CertificatePolicy` verifies such bundles against the anchors
the user gives and nothing else (never the system trust store). The chain rules are
in :mod:`omsign.backends._chain`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from omsign.backends import SigningKey
from omsign.backends._chain import (
    check_given_issuers,
    check_leaf,
    describe_certificate,
    validate_chain,
)
from omsign.backends._dsse_sig import sign_dsse, verify_dsse
from omsign.backends._ec import check_ec_key
from omsign.bundle import Bundle, Material, Signed
from omsign.errors import IdentityError, KeyLoadError, MalformedSignatureError, SignatureError
from omsign.policy._base import VerifiedSignature, check_method

if TYPE_CHECKING:
    import os

    from omsign._timestamp import TimestampAnchor

__all__ = [
    "CertificateBundleSigner",
    "CertificatePolicy",
    "SubjectConstraints",
    "describe_certificate",
    "validate_chain",
    "verify_certificate_bundle",
]


class CertificateBundleSigner:
    """Signs with a private key whose certificate (and chain) goes into the bundle."""

    def __init__(
        self,
        key: SigningKey,
        leaf: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
        tsa_url: str | None = None,
    ) -> None:
        if leaf.public_key() != key.public_key():
            raise KeyLoadError(
                f"the certificate {describe_certificate(leaf)} does not belong to the signing key"
            )
        try:  # a signature no verifier would accept is refused now, not discovered later
            check_leaf(leaf, dt.datetime.now(dt.timezone.utc))
            check_given_issuers(leaf, chain)
        except IdentityError as exc:
            raise KeyLoadError(f"cannot sign: {exc}") from None
        self._key, self._leaf, self._chain, self._tsa_url = key, leaf, tuple(chain), tsa_url

    def sign_statement(self, payload: bytes) -> Signed:
        """Signs the statement bytes; returns the signature and the certificate chain."""
        signature, stamps = sign_dsse(self._key, payload, self._tsa_url)
        certs = tuple(
            c.public_bytes(serialization.Encoding.DER) for c in (self._leaf, *self._chain)
        )
        return Signed(signature, Material("certificate", certificates=certs, timestamps=stamps))


def verify_certificate_bundle(
    bundle: Bundle,
    anchors: Sequence[x509.Certificate],
    at: dt.datetime,
) -> tuple[str, x509.Certificate, bool]:
    """Verifies a certificate-method bundle: chain first, then the DSSE signature.

    Args:
        bundle: the parsed bundle.
        anchors: trusted root or intermediate certificates.
        at: the time at which the chain must be valid (now, or a timestamp's time).

    Returns:
        A description of the signer, the leaf certificate, and whether the signature
        is over the legacy v0.2 encoding.

    Raises:
        MalformedSignatureError: a certificate cannot be parsed.
        IdentityError: the chain is not trusted or the leaf is unusable.
        SignatureError: the signature does not verify with the leaf's key.
    """
    try:
        certs = [x509.load_der_x509_certificate(der) for der in bundle.certificates]
    except ValueError:
        raise MalformedSignatureError("a certificate in the bundle cannot be parsed") from None
    leaf = certs[0]
    validate_chain(leaf, certs[1:], anchors, at)
    try:
        key = check_ec_key(leaf.public_key(), "signing certificate")
    except KeyLoadError as exc:
        raise SignatureError(str(exc)) from None
    except Exception as exc:  # cryptography's UnsupportedAlgorithm, or a damaged key
        raise SignatureError(f"signing certificate has a key omsign cannot use ({exc})") from None
    who = describe_certificate(leaf)
    legacy = verify_dsse(bundle, key, f"the certificate {who}")
    return who, leaf, legacy


def _alternative_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = []
    for kind in (x509.RFC822Name, x509.UniformResourceIdentifier, x509.DNSName):
        names.extend(str(v) for v in san.get_values_for_type(kind))
    return names


@dataclass(frozen=True)
class SubjectConstraints:
    """What a signing certificate must name, beyond chaining to the trusted anchors.

    Each given constraint must hold. Exact values compare whole strings; patterns are
    regular expressions that must match in full.

    Attributes:
        subject: the leaf's subject as RFC 4514 text (``CN=release,O=Acme``).
        subject_regexp: a pattern the subject must match.
        san: a value one of the leaf's e-mail, URI or DNS alternative names must equal.
        san_regexp: a pattern one of those names must match.
    """

    subject: str | None = None
    subject_regexp: str | None = None
    san: str | None = None
    san_regexp: str | None = None

    def __post_init__(self) -> None:
        from omsign.errors import UsageError

        for pattern in (self.subject_regexp, self.san_regexp):
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise UsageError(f"invalid certificate pattern {pattern!r}: {exc}") from None

    @property
    def empty(self) -> bool:
        """Whether nothing is constrained."""
        return all(
            v is None for v in (self.subject, self.subject_regexp, self.san, self.san_regexp)
        )

    def describe(self) -> str:
        """``with subject CN=x and an alternative name matching /.../``."""
        parts = []
        if self.subject is not None:
            parts.append(f"subject {self.subject}")
        if self.subject_regexp is not None:
            parts.append(f"subject matching /{self.subject_regexp}/")
        if self.san is not None:
            parts.append(f"alternative name {self.san}")
        if self.san_regexp is not None:
            parts.append(f"an alternative name matching /{self.san_regexp}/")
        return "with " + " and ".join(parts)

    def check(self, leaf: x509.Certificate) -> None:
        """Raises :class:`IdentityError` unless the leaf meets every constraint."""
        subject = leaf.subject.rfc4514_string()
        names = _alternative_names(leaf)
        failed = (
            (self.subject is not None and subject != self.subject)
            or (self.subject_regexp is not None and not re.fullmatch(self.subject_regexp, subject))
            or (self.san is not None and self.san not in names)
            or (
                self.san_regexp is not None
                and not any(re.fullmatch(self.san_regexp, n) for n in names)
            )
        )
        if failed:
            raise IdentityError(
                f"the signing certificate {describe_certificate(leaf)} is trusted, but is not "
                f"the required signer ({self.describe()})"
            )


@dataclass(frozen=True)
class CertificatePolicy:
    """Trust certificates that chain to these anchors (certificate method).

    Attributes:
        anchors: trusted root or intermediate CA certificates; never the system store.
        tsa_anchors: roots for RFC 3161 timestamp authorities; a timestamp verified
            against them moves the certificate validity check to the proven time.
        constraints: what the leaf's subject and alternative names must be, if anything
            beyond chaining to the anchors.
    """

    anchors: tuple[x509.Certificate, ...]
    tsa_anchors: tuple[TimestampAnchor, ...] = ()
    constraints: SubjectConstraints | None = None

    @classmethod
    def from_files(
        cls,
        paths: Sequence[str | os.PathLike[str]],
        tsa_anchors: Sequence[TimestampAnchor] = (),
    ) -> CertificatePolicy:
        """Loads every PEM certificate in the files as a trust anchor."""
        from omsign.backends._pem import load_certificates
        from omsign.errors import UsageError

        anchors = tuple(c for p in paths for c in load_certificates(p))
        if not anchors:
            raise UsageError(
                "no trust anchor given",
                option="cert_chain",
                hint="give CA certificates with {option}",
            )
        return cls(anchors, tuple(tsa_anchors))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> CertificatePolicy:
        """The policy ``cert_chain=`` (with ``tsa_certs=`` and ``trust_config=``) describes."""
        from omsign._paths import as_paths
        from omsign.backends._stamps import tsa_anchors_from_options

        policy = cls.from_files(as_paths(options["cert_chain"]), tsa_anchors_from_options(options))
        constraints = SubjectConstraints(
            subject=options.get("cert_subject"),
            subject_regexp=options.get("cert_subject_regexp"),
            san=options.get("cert_san"),
            san_regexp=options.get("cert_san_regexp"),
        )
        if constraints.empty:
            return policy
        return cls(policy.anchors, policy.tsa_anchors, constraints)

    @property
    def method(self) -> str:
        """``certificate``."""
        return "certificate"

    @property
    def name(self) -> str:
        """The trusted anchors' subjects."""
        subjects = "; ".join(a.subject.rfc4514_string() or "(empty subject)" for a in self.anchors)
        limits = f" {self.constraints.describe()}" if self.constraints else ""
        return f"certificates issued by {subjects}{limits}"

    def verify(self, bundle: Bundle) -> VerifiedSignature:
        """Checks the chain, at a trusted timestamp's time or now, then the signature.

        Raises:
            IdentityError: another method, an untrusted chain or an unusable leaf.
            SignatureError: the signature or a timestamp does not verify.
            MalformedSignatureError: a certificate cannot be parsed.
        """
        from omsign.backends._stamps import proven_time

        check_method(bundle, "certificate")
        stamped = proven_time(bundle, self.tsa_anchors)
        at = stamped or dt.datetime.now(dt.timezone.utc)
        signer, leaf, legacy = verify_certificate_bundle(bundle, self.anchors, at)
        if self.constraints is not None:
            self.constraints.check(leaf)
        return VerifiedSignature(
            "certificate",
            bundle.payload,
            signer,
            issuer=leaf.issuer.rfc4514_string(),
            signed_at=stamped,
            legacy_encoding=legacy,
        )
