"""Verifying a Sigstore keyless bundle with sigstore-python, offline or online.

The chain to the Fulcio root at the logged or timestamped time, the SCT, the log
entry and the envelope signature are checked by sigstore-python; the signer's
identity against a :class:`~omsign.backends.sigstore.SigstoreIdentityPolicy`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omsign.backends.sigstore._cert import cert_identities, cert_issuer, optional_int, tlog_entry
from omsign.backends.sigstore._identity import (
    RecordingPolicy,
    SigstoreIdentityPolicy,
    identity_error,
    sigstore_policy,
)
from omsign.backends.sigstore._trust import SigstoreSettings, load_trust_config
from omsign.errors import MalformedSignatureError, SignatureError

if TYPE_CHECKING:
    from omsign.bundle import Bundle

__all__ = ["SigstoreVerified", "verify_sigstore_bundle"]


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
    trust = load_trust_config(settings)
    recorder = RecordingPolicy(sigstore_policy(policy))
    try:
        verifier = Verifier(trusted_root=trust.trusted_root)
        payload_type, payload = verifier.verify_dsse(parsed, recorder)
    except Exception as exc:  # hostile input must end as a verification failure
        if recorder.failed_cert is not None:
            raise identity_error(policy, recorder.failed_cert) from exc
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
