"""Who is trusted: public keys, certificate anchors, Sigstore identities.

A policy names the signers a verification accepts. :func:`verify_signature`
checks a bundle's signature under a policy and returns what was proven: the
payload, who signed it, and when (if a trusted timestamp or log entry says so).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

from omsign.bundle import Bundle
from omsign.errors import IdentityError, UsageError

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    from omsign._timestamp import TimestampAnchor
    from omsign.backends._timestamp_authorities import TimestampAuthority
    from omsign.backends.sigstore import SigstoreIdentityPolicy, SigstoreSettings

__all__ = [
    "CertificatePolicy",
    "KeyPolicy",
    "Policy",
    "SigstorePolicy",
    "VerifiedSignature",
    "load_tsa_anchors",
    "tsa_anchors_from_trust_config",
    "verify_signature",
]

logger = logging.getLogger("omsign")


@dataclass(frozen=True)
class KeyPolicy:
    """Trust signatures made by any of these public keys (key method)."""

    keys: tuple[ec.EllipticCurvePublicKey, ...]
    tsa_anchors: tuple[TimestampAnchor, ...] = ()

    @classmethod
    def from_files(
        cls,
        paths: Sequence[str | os.PathLike[str]],
        tsa_anchors: Sequence[TimestampAnchor] = (),
    ) -> KeyPolicy:
        """Loads every PEM public key in the files (TSA anchors: :func:`load_tsa_anchors`)."""
        from omsign.backends._pem import load_public_keys

        return cls(tuple(k for p in paths for k in load_public_keys(p)), tuple(tsa_anchors))


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
        anchors = _load_all(paths)
        if not anchors:
            raise UsageError("no trust anchor given (--cert-chain)")
        return cls(anchors, tuple(tsa_anchors))


@dataclass(frozen=True)
class SigstorePolicy:
    """Trust Sigstore keyless signatures by this identity, from this issuer."""

    identity: SigstoreIdentityPolicy
    settings: SigstoreSettings = field(default=None)  # type: ignore[assignment]


Policy = Union[KeyPolicy, CertificatePolicy, SigstorePolicy]  # noqa: UP007


@dataclass(frozen=True)
class VerifiedSignature:
    """What a verified signature proves.

    Attributes:
        method: ``key``, ``certificate`` or ``sigstore``.
        payload: the signed statement bytes.
        signer: who signed: key fingerprint, certificate subject, or identity.
        issuer: the OIDC issuer (sigstore) or the certificate issuer.
        signed_at: the time a trusted timestamp or log entry proves, if any.
        log_index: the transparency log index (sigstore).
        legacy_encoding: the signature verified only over the legacy v0.2 encoding;
            the predicates accept that for the v0.2 predicate alone.
    """

    method: str
    payload: bytes
    signer: str
    issuer: str | None = None
    signed_at: dt.datetime | None = None
    log_index: int | None = None
    legacy_encoding: bool = False


def _load_all(paths: Sequence[str | os.PathLike[str]]) -> tuple[x509.Certificate, ...]:
    from omsign.backends._pem import load_certificates

    return tuple(c for p in paths for c in load_certificates(p))


def load_tsa_anchors(
    tsa_certs: Sequence[str | os.PathLike[str]] = (),
    trust_config: str | os.PathLike[str] | None = None,
) -> tuple[TimestampAnchor, ...]:
    """Timestamp authority anchors from PEM files and, optionally, a Sigstore trust config."""
    anchors: tuple[TimestampAnchor, ...] = _load_all(tsa_certs)
    if trust_config is not None:
        anchors = (*anchors, *tsa_anchors_from_trust_config(trust_config))
    return anchors


def tsa_anchors_from_trust_config(
    path: str | os.PathLike[str],
) -> tuple[TimestampAuthority, ...]:
    """The timestamp authorities of a Sigstore trust config or trusted root.

    Each is trusted only for tokens its own listed certificate signed within its
    ``validFor`` window (see :class:`omsign.backends._timestamp_authorities.TimestampAuthority`).

    Raises:
        KeyLoadError: the file cannot be read or has no usable timestamp authority.
    """
    from omsign.backends._timestamp_authorities import load_timestamp_authorities

    return load_timestamp_authorities(path)


def _timestamp_time(bundle: Bundle, anchors: Sequence[TimestampAnchor]) -> dt.datetime | None:
    """Verifies every RFC 3161 timestamp; returns the earliest proven time.

    With no anchors, timestamps cannot be trusted and are not used (a warning says so).
    With anchors, every timestamp must verify: one from another authority is rejected.
    """
    if not bundle.timestamps:
        return None
    if not anchors:
        logger.warning(
            "the signature has a timestamp, but no timestamp authority is trusted "
            "(--tsa-cert); the timestamp is not used"
        )
        return None
    from omsign._timestamp import verify_timestamp

    times = [verify_timestamp(t, bundle.signature, anchors) for t in bundle.timestamps]
    return min(times)


def verify_signature(bundle: Bundle, policy: Policy) -> VerifiedSignature:
    """Checks a bundle's signature and signer under a policy (OMS 8.2).

    Raises:
        IdentityError: the bundle's method does not match the policy, or the signer
            is not trusted.
        SignatureError: the signature does not verify.
        MalformedSignatureError: the verification material is malformed.
    """
    expected = {KeyPolicy: "key", CertificatePolicy: "certificate", SigstorePolicy: "sigstore"}
    want = expected[type(policy)]
    if bundle.method != want:
        raise IdentityError(
            f"the model was signed with the {bundle.method} method, but a {want} policy was "
            f"given ({_HOW[bundle.method]})"
        )
    if isinstance(policy, KeyPolicy):
        from omsign.backends._key import verify_key_bundle

        signer, legacy = verify_key_bundle(bundle, policy.keys)
        return VerifiedSignature(
            "key",
            bundle.payload,
            signer,
            signed_at=_timestamp_time(bundle, policy.tsa_anchors),
            legacy_encoding=legacy,
        )
    if isinstance(policy, CertificatePolicy):
        from omsign.backends._certificate import verify_certificate_bundle

        stamped = _timestamp_time(bundle, policy.tsa_anchors)
        at = stamped or dt.datetime.now(dt.timezone.utc)
        signer, leaf, legacy = verify_certificate_bundle(bundle, policy.anchors, at)
        return VerifiedSignature(
            "certificate",
            bundle.payload,
            signer,
            issuer=leaf.issuer.rfc4514_string(),
            signed_at=stamped,
            legacy_encoding=legacy,
        )
    from omsign.backends.sigstore import SigstoreSettings, verify_sigstore_bundle

    result = verify_sigstore_bundle(bundle, policy.identity, policy.settings or SigstoreSettings())
    if result.payload != bundle.payload:  # pragma: no cover - defensive
        raise IdentityError("the verified Sigstore payload differs from the bundle's")
    signed_at = (
        dt.datetime.fromtimestamp(result.integrated_time, dt.timezone.utc)
        if result.integrated_time is not None
        else None
    )
    return VerifiedSignature(
        "sigstore", result.payload, result.identity, result.issuer, signed_at, result.log_index
    )


_HOW = {
    "key": "verify with --key PUBLIC.pem",
    "certificate": "verify with --cert-chain CA.pem",
    "sigstore": "verify with --identity and --issuer",
}
