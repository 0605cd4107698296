"""The verifier protocol and the value a verified signature is.

Every way of trusting a signer is a :class:`Verifier`: a backend's verifier (key,
certificate, Sigstore...) or a composite of them. Backends import this module; it
imports no backend.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from omsign.errors import IdentityError

if TYPE_CHECKING:
    from omsign.bundle import Bundle

__all__ = [
    "MethodMismatchError",
    "Policy",
    "VerifiedSignature",
    "Verifier",
    "check_method",
    "verify_signature",
]


@dataclass(frozen=True)
class VerifiedSignature:
    """What a verified signature proves.

    Attributes:
        method: ``key``, ``certificate`` or ``sigstore`` (or a registered method).
        payload: the signed statement bytes.
        signer: who signed: key fingerprint, certificate subject, or identity.
        issuer: the OIDC issuer (sigstore) or the certificate issuer.
        signed_at: the time a trusted timestamp or log entry proves, if any.
        log_index: the transparency log index (sigstore).
        legacy_encoding: the signature verified only over the legacy v0.2 encoding;
            the predicates accept that for the v0.2 predicate alone.
        claimed_at: when the bundle says it was signed, unproven (a timestamp or log
            entry not checked against a trusted authority, or the certificate's start
            of validity); set when no time is proven.
        trusted_as: the name of the signer of a trust policy file that accepted it.
    """

    method: str
    payload: bytes
    signer: str
    issuer: str | None = None
    signed_at: dt.datetime | None = None
    log_index: int | None = None
    legacy_encoding: bool = False
    claimed_at: dt.datetime | None = None
    trusted_as: str | None = None


class Verifier(Protocol):
    """Checks one bundle's signature and signer (OMS 8.2)."""

    @property
    def method(self) -> str:
        """The method of the bundles it checks (``key``...); composites name theirs."""
        ...

    @property
    def name(self) -> str:
        """Whom it trusts, in words, for reports (``key sha256:ab12...``)."""
        ...

    def verify(self, bundle: Bundle) -> VerifiedSignature:
        """Returns what the bundle's signature proves, or raises ``VerificationError``."""
        ...


# Where a single policy was expected before verifiers had a protocol.
Policy = Verifier


class MethodMismatchError(IdentityError):
    """The bundle was signed with another method than the verifier checks."""


def check_method(bundle: Bundle, method: str) -> None:
    """Raises :class:`MethodMismatchError` unless the bundle was signed with ``method``."""
    if bundle.method == method:
        return
    from omsign.policy._registry import method_named, usage_hint

    known = method_named(bundle.method)
    hint, options = usage_hint((known,)) if known is not None else ("", ())
    raise MethodMismatchError(
        f"the model was signed with the {bundle.method} method, but a {method} policy was given",
        hint=f"verify with {hint}" if hint else "",
        options=options,
    )


def verify_signature(bundle: Bundle, policy: Verifier) -> VerifiedSignature:
    """Checks a bundle's signature and signer under a policy (OMS 8.2).

    Raises:
        IdentityError: the bundle's method does not match the policy, or the signer
            is not trusted.
        SignatureError: the signature does not verify.
        MalformedSignatureError: the verification material is malformed.
    """
    return policy.verify(bundle)
