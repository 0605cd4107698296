"""The certificate method: a leaf certificate and its chain in ``x509CertificateChain``.

:class:`CertificateBundleSigner` signs with a key whose certificate (and chain) goes
into the bundle; :class:`CertificatePolicy` verifies such bundles against the anchors
the user gives and nothing else (never the system trust store). The chain rules are
in :mod:`omsign.backends._chain`.
"""

from __future__ import annotations

import datetime as dt
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


@dataclass(frozen=True)
class CertificatePolicy:
    """Trust certificates that chain to these anchors (certificate method).

    Attributes:
        anchors: trusted root or intermediate CA certificates; never the system store.
        tsa_anchors: roots for RFC 3161 timestamp authorities; a timestamp verified
            against them moves the certificate validity check to the proven time.
    """

    anchors: tuple[x509.Certificate, ...]
    tsa_anchors: tuple[TimestampAnchor, ...] = ()

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

        return cls.from_files(as_paths(options["cert_chain"]), tsa_anchors_from_options(options))

    @property
    def method(self) -> str:
        """``certificate``."""
        return "certificate"

    @property
    def name(self) -> str:
        """The trusted anchors' subjects."""
        subjects = "; ".join(a.subject.rfc4514_string() or "(empty subject)" for a in self.anchors)
        return f"certificates issued by {subjects}"

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
        return VerifiedSignature(
            "certificate",
            bundle.payload,
            signer,
            issuer=leaf.issuer.rfc4514_string(),
            signed_at=stamped,
            legacy_encoding=legacy,
        )
