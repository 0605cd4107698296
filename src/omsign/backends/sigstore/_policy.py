"""The Sigstore verifier: trust keyless signatures by one identity, from one issuer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omsign.backends.sigstore._identity import SigstoreIdentityPolicy
from omsign.backends.sigstore._trust import SigstoreSettings
from omsign.errors import IdentityError, UsageError
from omsign.policy._base import VerifiedSignature, check_method

if TYPE_CHECKING:
    from omsign.bundle import Bundle

__all__ = ["SigstorePolicy"]


@dataclass(frozen=True)
class SigstorePolicy:
    """Trust Sigstore keyless signatures by this identity, from this issuer.

    Attributes:
        identity: who must have signed.
        settings: which Sigstore instance's trust root to verify against (production
            when absent).
    """

    identity: SigstoreIdentityPolicy
    settings: SigstoreSettings = field(default=None)  # type: ignore[assignment]

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> SigstorePolicy:
        """The policy ``identity=`` (or ``identity_regexp=``) with ``issuer=`` describes.

        Raises:
            UsageError: the issuer is missing, or not exactly one identity form is given.
        """
        issuer = options.get("issuer")
        identity, regexp = options.get("identity"), options.get("identity_regexp")
        if not issuer or not (identity or regexp) or (identity and regexp):
            raise UsageError(
                "Sigstore verification needs an issuer and one identity (or identity pattern)",
                options=("issuer", "identity", "identity_regexp"),
                hint="give {option0} URL and one of {option1} ID or {option2} PATTERN",
            )
        trust_config = options.get("trust_config")
        return cls(
            SigstoreIdentityPolicy(
                issuer=issuer,
                identity=identity,
                identity_regexp=regexp,
                github_repository=options.get("github_repository"),
                github_ref=options.get("github_ref"),
                github_workflow_name=options.get("github_workflow_name"),
            ),
            SigstoreSettings(
                staging=bool(options.get("staging", False)),
                trust_config=Path(trust_config) if trust_config else None,
                offline=bool(options.get("offline", False)),
            ),
        )

    @property
    def method(self) -> str:
        """``sigstore``."""
        return "sigstore"

    @property
    def name(self) -> str:
        """The expected identity and issuer."""
        return self.identity.describe()

    def verify(self, bundle: Bundle) -> VerifiedSignature:
        """Checks the bundle with sigstore-python, then the signer's identity.

        Raises:
            IdentityError: another method, or a signer the policy does not trust.
            SignatureError: the signature, certificate chain or log entry is invalid.
            MalformedSignatureError: the bundle cannot be parsed.
            BackendUnavailableError: the trust root cannot be loaded.
        """
        from omsign.backends.sigstore._verify import verify_sigstore_bundle

        check_method(bundle, "sigstore")
        result = verify_sigstore_bundle(bundle, self.identity, self.settings or SigstoreSettings())
        if result.payload != bundle.payload:  # pragma: no cover - defensive
            raise IdentityError("the verified Sigstore payload differs from the bundle's")
        signed_at = (
            dt.datetime.fromtimestamp(result.integrated_time, dt.timezone.utc)
            if result.integrated_time is not None
            else None
        )
        return VerifiedSignature(
            "sigstore",
            result.payload,
            result.identity,
            result.issuer,
            signed_at,
            result.log_index,
        )
