"""Sigstore keyless signing and verification, built on sigstore-python.

Signing gets an OIDC identity token, obtains a short-lived certificate from
Fulcio, signs the in-toto statement as a DSSE envelope and logs it in Rekor (and
timestamps it when the instance has a TSA). Verification checks the chain to
the Fulcio root at the logged or timestamped time, the SCT, the log entry and
the envelope signature, then the signer's identity against a
:class:`SigstoreIdentityPolicy`.

sigstore-python is imported only inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omsign.backends._sigstore_cert import (
    GITHUB_CLAIMS,
    cert_identities,
    cert_issuer,
    describe_sigstore_material,
    extension_text,
    optional_int,
    tlog_entry,
)
from omsign.bundle import Signed
from omsign.errors import (
    BackendUnavailableError,
    IdentityError,
    KeyLoadError,
    MalformedSignatureError,
    SignatureError,
    UsageError,
)

if TYPE_CHECKING:
    from cryptography import x509
    from sigstore.models import ClientTrustConfig

    from omsign.bundle import Bundle

__all__ = [
    "SigstoreBundleSigner",
    "SigstoreIdentityPolicy",
    "SigstoreSettings",
    "SigstoreVerified",
    "describe_sigstore_material",
    "verify_sigstore_bundle",
]


@dataclass(frozen=True)
class SigstoreSettings:
    """Which Sigstore instance to use.

    Attributes:
        staging: use the Sigstore staging instance instead of production.
        trust_config: a ClientTrustConfig JSON file (trusted root and signing
            config) for a private instance; overrides production and staging.
        offline: never refresh the trust root over the network; use the copy
            sigstore-python ships or has cached.
    """

    staging: bool = False
    trust_config: Path | None = None
    offline: bool = False


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


@dataclass(frozen=True)
class SigstoreVerified:
    """What a verified Sigstore bundle establishes.

    Attributes:
        payload_type: the DSSE payload type (not checked here).
        payload: the exact signed payload bytes.
        identity: the signer's certificate identity.
        issuer: the OIDC issuer that vouched for it.
        log_index: the Rekor log index, if the entry has one.
        integrated_time: when Rekor logged the entry (Unix seconds), if recorded.
    """

    payload_type: str
    payload: bytes
    identity: str
    issuer: str
    log_index: int | None
    integrated_time: int | None


# --- trust configuration --------------------------------------------------------


@contextlib.contextmanager
def _quiet_tuf_warning() -> Iterator[None]:
    # sigstore-python warns on every offline trust-root load; it is expected here.
    logger = logging.getLogger("sigstore._internal.tuf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _load_trust_config(settings: SigstoreSettings) -> ClientTrustConfig:
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import ClientTrustConfig

    from omsign.backends._trust_files import read_trust_json

    if settings.trust_config is not None:
        if settings.staging:
            raise UsageError("--staging and --trust-config cannot be combined")
        path = settings.trust_config
        try:
            return ClientTrustConfig.from_json(read_trust_json(path))
        except OSError as exc:
            raise KeyLoadError(f"{path}: cannot read trust config: {exc.strerror}") from exc
        except (ValueError, SigstoreError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise KeyLoadError(f"{path}: not a Sigstore client trust config: {first}") from exc
    instance = "staging" if settings.staging else "production"
    try:
        with _quiet_tuf_warning():
            if settings.staging:
                return ClientTrustConfig.staging(offline=settings.offline)
            return ClientTrustConfig.production(offline=settings.offline)
    except (SigstoreError, OSError, ValueError) as exc:
        hint = (
            ""
            if settings.offline
            else "; to verify without network, use verify --offline (the cached trust root)"
        )
        raise BackendUnavailableError(
            f"cannot load the Sigstore {instance} trust root: {exc}{hint}"
        ) from exc


# --- verification -----------------------------------------------------------------


class _IdentityRegexp:
    """A sigstore-python policy: some certificate identity matches a regexp in full."""

    def __init__(self, pattern: str) -> None:
        self._pattern = re.compile(pattern)

    def verify(self, cert: x509.Certificate) -> None:
        from sigstore.errors import VerificationError

        if not any(self._pattern.fullmatch(name) for name in cert_identities(cert)):
            raise VerificationError(f"no certificate identity matches /{self._pattern.pattern}/")


class _RecordingPolicy:
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


def _sigstore_policy(policy: SigstoreIdentityPolicy) -> Any:
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


def _identity_error(policy: SigstoreIdentityPolicy, cert: x509.Certificate) -> IdentityError:
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


def verify_sigstore_bundle(
    bundle: Bundle, policy: SigstoreIdentityPolicy, settings: SigstoreSettings
) -> SigstoreVerified:
    """Verifies a Sigstore DSSE bundle and the identity of its signer.

    sigstore-python verifies the bundle's original text; what it does not return
    (the log entry's index and time) is read from the parsed bundle.

    Args:
        bundle: the parsed bundle.
        policy: who must have signed.
        settings: which Sigstore instance's trust root to verify against.

    Returns:
        The verified payload and what the bundle establishes about its signer.

    Raises:
        MalformedSignatureError: the bundle cannot be parsed.
        IdentityError: a valid signature by someone the policy does not trust.
        SignatureError: the signature, certificate chain or log entry is invalid.
        BackendUnavailableError: the trust root cannot be loaded.
        KeyLoadError: the trust config file is unreadable.
    """
    from sigstore.models import Bundle as SigstoreBundle
    from sigstore.verify import Verifier

    try:
        parsed = SigstoreBundle.from_json(bundle.text)
    except Exception as exc:  # any parse failure of hostile input (x509, pydantic, ...)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MalformedSignatureError(f"malformed Sigstore bundle: {first}") from exc
    trust = _load_trust_config(settings)
    recorder = _RecordingPolicy(_sigstore_policy(policy))
    try:
        verifier = Verifier(trusted_root=trust.trusted_root)
        payload_type, payload = verifier.verify_dsse(parsed, recorder)
    except Exception as exc:  # hostile input must end as a verification failure
        if recorder.failed_cert is not None:
            raise _identity_error(policy, recorder.failed_cert) from exc
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SignatureError(f"Sigstore signature does not verify: {detail}") from exc
    cert = parsed.signing_certificate
    identities = cert_identities(cert)
    pattern = re.compile(policy.identity_regexp) if policy.identity_regexp else None
    identity = next(
        (n for n in identities if n == policy.identity or (pattern and pattern.fullmatch(n))),
        identities[0] if identities else "",
    )
    entry = tlog_entry(bundle)
    # integratedTime is only signed by the log's promise; without one it proves nothing.
    promised = isinstance(entry.get("inclusionPromise"), dict) and bool(
        entry["inclusionPromise"].get("signedEntryTimestamp")
    )
    return SigstoreVerified(
        payload_type=payload_type,
        payload=payload,
        identity=identity,
        issuer=cert_issuer(cert) or policy.issuer,
        log_index=optional_int(entry.get("logIndex")),
        integrated_time=optional_int(entry.get("integratedTime")) if promised else None,
    )


# --- signing ----------------------------------------------------------------------


_NO_IDENTITY = (
    "no identity token for Sigstore signing: give --identity-token, run in CI with OIDC "
    "credentials, run in a terminal to log in, or sign with --key"
)


class SigstoreBundleSigner:
    """Signs statements with a Fulcio certificate bound to an OIDC identity."""

    def __init__(
        self,
        settings: SigstoreSettings,
        identity_token: str | None = None,
        oauth_out_of_band: bool = False,
    ) -> None:
        """Prepares a signer; the token is fetched when signing.

        Args:
            settings: which Sigstore instance to sign with.
            identity_token: an OIDC token; when absent, ambient credentials
                (CI) are used, else the interactive browser flow.
            oauth_out_of_band: in the browser flow, paste the code by hand.
        """
        self._settings = settings
        self._token = identity_token
        self._out_of_band = oauth_out_of_band
        if identity_token is None and not sys.stdin.isatty():
            # Fail before the model is hashed, not after: without a terminal the only
            # token source is the CI's (fetched again at signing time, as it expires).
            from sigstore.oidc import detect_credential

            try:
                found = detect_credential()
            except Exception:  # a CI provider that is present but misconfigured
                found = None
            if not found:
                raise KeyLoadError(_NO_IDENTITY)

    def _identity(self, trust: ClientTrustConfig) -> Any:
        from sigstore.errors import Error as SigstoreError
        from sigstore.oidc import IdentityError as OidcError
        from sigstore.oidc import IdentityToken, Issuer, detect_credential

        try:
            raw = self._token or detect_credential()
            if raw:
                return IdentityToken(raw)
            if not sys.stdin.isatty():  # the browser flow would wait for a login forever
                raise KeyLoadError(_NO_IDENTITY)
            issuer = Issuer(trust.signing_config.get_oidc_url())
            return issuer.identity_token(force_oob=self._out_of_band)
        except OidcError as exc:
            raise KeyLoadError(f"unusable identity token: {exc}") from exc
        except (SigstoreError, OSError) as exc:
            raise BackendUnavailableError(f"cannot get an identity token: {exc}") from exc

    def sign_statement(self, payload: bytes) -> Signed:
        """Signs the in-toto statement bytes as DSSE; returns the signature and its material.

        Raises:
            KeyLoadError: no usable identity token (missing, malformed, expired).
            BackendUnavailableError: a Sigstore service is unreachable or refused.
            UsageError: the payload is not an in-toto statement.
        """
        import requests
        from sigstore import dsse
        from sigstore._internal.fulcio.client import ExpiredCertificate, FulcioClientError
        from sigstore._internal.rekor import RekorClientError
        from sigstore.errors import Error as SigstoreError
        from sigstore.errors import VerificationError
        from sigstore.oidc import ExpiredIdentity
        from sigstore.sign import SigningContext

        trust = _load_trust_config(self._settings)
        try:
            statement = dsse.Statement(payload)
        except SigstoreError as exc:
            raise UsageError(f"payload is not an in-toto statement: {exc}") from exc
        token = self._identity(trust)
        try:
            context = SigningContext.from_trust_config(trust)
            with context.signer(token, cache=True) as signer:
                bundle = signer.sign_dsse(statement)
        except (ExpiredIdentity, ExpiredCertificate) as exc:
            raise KeyLoadError("the identity token has expired; get a new one") from exc
        except FulcioClientError as exc:
            detail = str(exc) or str(exc.__cause__)
            raise BackendUnavailableError(f"Fulcio refused the certificate: {detail}") from exc
        except RekorClientError as exc:
            raise BackendUnavailableError(f"Rekor refused the log entry: {exc}") from exc
        except requests.RequestException as exc:
            raise BackendUnavailableError(f"cannot reach a Sigstore service: {exc}") from exc
        except VerificationError as exc:
            raise BackendUnavailableError(
                f"the certificate from Fulcio does not match the trust root: {exc}"
            ) from exc
        except SigstoreError as exc:
            raise BackendUnavailableError(f"Sigstore signing failed: {exc}") from exc
        from omsign.bundle import parse_bundle

        signed = parse_bundle(bundle.to_json().encode(), "the bundle from sigstore-python")
        return Signed(signed.signature, signed.material)
