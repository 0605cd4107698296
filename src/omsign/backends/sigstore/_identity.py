"""Who must have signed a Sigstore bundle: issuer, identity and GitHub Actions claims.

:class:`SigstoreIdentityPolicy` is the expectation; :func:`sigstore_policy` turns it
into sigstore-python's certificate policy, and :func:`identity_error` says, when a
certificate does not satisfy it, who signed instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omsign.backends.sigstore._cert import (
    GITHUB_CLAIMS,
    cert_identities,
    cert_issuer,
    extension_text,
)
from omsign.errors import IdentityError, UsageError

if TYPE_CHECKING:
    from cryptography import x509

__all__ = ["RecordingPolicy", "SigstoreIdentityPolicy", "identity_error", "sigstore_policy"]


@dataclass(frozen=True)
class SigstoreIdentityPolicy:
    """Who must have signed: an OIDC issuer plus an identity or identity pattern.

    Attributes:
        issuer: the OIDC issuer URL recorded in the certificate.
        identity: the exact certificate identity (email, URI, ...).
        identity_regexp: a regular expression that must match an identity in full.
        github_repository: required GitHub Actions repository (``owner/name``).
        github_ref: required git ref (``refs/heads/main``).
        github_workflow_name: required workflow name.
        github_workflow_trigger: required triggering event (``push``).
        github_sha: required commit SHA.
    """

    issuer: str
    identity: str | None = None
    identity_regexp: str | None = None
    github_repository: str | None = None
    github_ref: str | None = None
    github_workflow_name: str | None = None
    github_workflow_trigger: str | None = None
    github_sha: str | None = None

    def __post_init__(self) -> None:
        if (self.identity is None) == (self.identity_regexp is None):
            raise UsageError("give exactly one of an identity or an identity regexp")
        if not self.issuer:
            raise UsageError("a Sigstore identity needs its OIDC issuer")
        if self.identity_regexp is not None:
            try:
                re.compile(self.identity_regexp)
            except re.error as exc:
                raise UsageError(
                    f"invalid identity regexp {self.identity_regexp!r}: {exc}"
                ) from exc

    def describe(self) -> str:
        """The expected signer, in words."""
        who = self.identity if self.identity is not None else f"/{self.identity_regexp}/"
        claims = [
            f"{name.removeprefix('github_')}={getattr(self, name)}"
            for name in GITHUB_CLAIMS
            if getattr(self, name) is not None
        ]
        extra = f" with {', '.join(claims)}" if claims else ""
        return f"{who} from {self.issuer}{extra}"


class _IdentityRegexp:
    """A sigstore-python policy: some certificate identity matches a regexp in full."""

    def __init__(self, pattern: str) -> None:
        self._pattern = re.compile(pattern)

    def verify(self, cert: x509.Certificate) -> None:
        from sigstore.errors import VerificationError

        if not any(self._pattern.fullmatch(name) for name in cert_identities(cert)):
            raise VerificationError(f"no certificate identity matches /{self._pattern.pattern}/")


class RecordingPolicy:
    """Wraps the identity policy so an identity failure can be told apart."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.failed_cert: x509.Certificate | None = None

    def verify(self, cert: x509.Certificate) -> None:
        from sigstore.errors import VerificationError

        try:
            self._inner.verify(cert)
        except Exception as exc:
            # e.g. a certificate without SAN: still "not the expected signer".
            self.failed_cert = cert
            raise VerificationError(str(exc)) from exc


def sigstore_policy(policy: SigstoreIdentityPolicy) -> Any:
    """The sigstore-python certificate policy that checks ``policy``."""
    from sigstore.verify import policy as sp

    children: list[Any] = [
        sp.AnyOf([sp.OIDCIssuer(policy.issuer), sp.OIDCIssuerV2(policy.issuer)]),
    ]
    if policy.identity is not None:
        children.append(sp.Identity(identity=policy.identity))
    else:
        children.append(_IdentityRegexp(str(policy.identity_regexp)))
    claim_policies = {
        "github_workflow_trigger": sp.GitHubWorkflowTrigger,
        "github_sha": sp.GitHubWorkflowSHA,
        "github_workflow_name": sp.GitHubWorkflowName,
        "github_repository": sp.GitHubWorkflowRepository,
        "github_ref": sp.GitHubWorkflowRef,
    }
    for name, policy_class in claim_policies.items():
        if (value := getattr(policy, name)) is not None:
            children.append(policy_class(value))
    return sp.AllOf(children)


def identity_error(policy: SigstoreIdentityPolicy, cert: x509.Certificate) -> IdentityError:
    """The error saying who signed ``cert`` and whom ``policy`` expected."""
    actual = ", ".join(cert_identities(cert)) or "no identity"
    claims = [
        f"{name.removeprefix('github_')}={extension_text(cert, oid, der=False) or '(none)'}"
        for name, oid in GITHUB_CLAIMS.items()
        if getattr(policy, name) is not None
    ]
    extra = f" with {', '.join(claims)}" if claims else ""
    return IdentityError(
        f"signed by {actual} from {cert_issuer(cert) or 'no issuer'}{extra}, "
        f"expected {policy.describe()}"
    )
