"""``omsign.verify``: pick the policy from the options, as the command line does."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omsign._keywords import (
    TrustOptions,
    VerifyKeywords,
    check_keywords,
    pick,
    verify_scope,
)
from omsign._keywords import runtime as _runtime
from omsign._paths import as_paths
from omsign._verify import verify_with_policy
from omsign.errors import UsageError
from omsign.options import PathLike, Runtime, VerifyScope
from omsign.policy import (
    CertificatePolicy,
    KeyPolicy,
    Policy,
    SigstorePolicy,
    load_tsa_anchors,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from omsign.results import VerificationResult

__all__ = ["make_policy", "resolve_policy", "verify"]


def make_policy(**options: Unpack[TrustOptions]) -> Policy:
    """Builds the trust policy the options describe (exactly one method).

    Args:
        **options: see :class:`~omsign._keywords.TrustOptions`: ``key``; or
            ``cert_chain``; or ``identity`` (or ``identity_regexp``) with ``issuer`` and
            the optional GitHub claims; plus ``tsa_certs``, ``offline``, ``staging``,
            ``trust_config``.

    Raises:
        UsageError: no method or more than one method was chosen.
    """
    check_keywords("make_policy", options, TrustOptions)
    key = options.get("key")
    identity, identity_regexp = options.get("identity"), options.get("identity_regexp")
    issuer, trust_config = options.get("issuer"), options.get("trust_config")
    cert_chain = as_paths(options.get("cert_chain", ()))
    tsa_certs = as_paths(options.get("tsa_certs", ()))
    chosen = [
        name
        for name, on in (
            ("key", key is not None),
            ("cert_chain", bool(cert_chain)),
            ("identity", bool(identity or identity_regexp or issuer)),
        )
        if on
    ]
    if len(chosen) != 1:
        got = ", ".join(f"{{option{i}}}" for i in range(4, 4 + len(chosen)))
        raise UsageError(
            "choose exactly one way to trust the signer",
            options=("key", "cert_chain", "identity", "issuer", *chosen),
            hint="give {option0} PUBLIC.pem, {option1} CA.pem, or {option2} ID with "
            "{option3} URL" + (f" (got {got})" if chosen else ""),
        )
    if key is not None:
        return KeyPolicy.from_files(as_paths(key), load_tsa_anchors(tsa_certs, trust_config))
    if cert_chain:
        return CertificatePolicy.from_files(cert_chain, load_tsa_anchors(tsa_certs, trust_config))
    if not issuer or not (identity or identity_regexp) or (identity and identity_regexp):
        raise UsageError(
            "Sigstore verification needs an issuer and one identity (or identity pattern)",
            options=("issuer", "identity", "identity_regexp"),
            hint="give {option0} URL and one of {option1} ID or {option2} PATTERN",
        )
    from omsign.backends.sigstore import SigstoreIdentityPolicy, SigstoreSettings

    return SigstorePolicy(
        SigstoreIdentityPolicy(
            issuer=issuer,
            identity=identity,
            identity_regexp=identity_regexp,
            github_repository=options.get("github_repository"),
            github_ref=options.get("github_ref"),
            github_workflow_name=options.get("github_workflow_name"),
        ),
        SigstoreSettings(
            staging=options.get("staging", False),
            trust_config=Path(trust_config) if trust_config else None,
            offline=options.get("offline", False),
        ),
    )


def resolve_policy(policy: Policy | None, options: Mapping[str, Any]) -> Policy:
    """The ready ``policy``, or the one the trust keywords describe (not both)."""
    trust = pick(options, TrustOptions)
    if policy is None:
        return make_policy(**trust)
    if trust:
        raise UsageError(
            "a ready policy replaces the trust options",
            options=("policy", *sorted(trust)),
            hint="give {option0} or "
            + ", ".join(f"{{option{i}}}" for i in range(1, len(trust) + 1))
            + ", not both",
        )
    return policy


def verify(
    model: PathLike,
    *,
    policy: Policy | None = None,
    signature: PathLike | None = None,
    scope: VerifyScope | None = None,
    runtime: Runtime | None = None,
    **options: Unpack[VerifyKeywords],
) -> VerificationResult:
    """Verifies a model's signature and content (OMS section 8).

    Trust is given exactly one way, as on the command line: ``key`` (PEM public key
    path, or several), ``cert_chain`` (PEM anchors), ``identity``/``identity_regexp``
    with ``issuer`` (Sigstore), or a ready ``policy``.

    Args:
        model: file, directory or ``hf://ORG/NAME[@REVISION]``.
        policy: an explicit :mod:`omsign.policy` object, instead of the trust keywords.
        signature: bundle path (default ``MODEL/model.sig`` or ``MODEL.sig``).
        scope: what to check (:class:`~omsign.options.VerifyScope`); or the keywords
            ``ignore_paths`` (absolute or relative to the current directory),
            ``ignore_unsigned_files``, ``allow_missing``, ``files`` (globs allowed; the
            rest is not read) and ``link_policy``.
        runtime: how to run (:class:`~omsign.options.Runtime`); or the keywords
            ``workers``, ``progress`` (called with bytes hashed, total bytes), ``executor``.
        **options: the trust keywords ``key``, ``cert_chain``, ``identity``,
            ``identity_regexp``, ``issuer``, ``github_repository``, ``github_ref``,
            ``github_workflow_name``, ``tsa_certs``, ``offline``, ``staging``,
            ``trust_config`` (see :class:`~omsign._keywords.TrustOptions`), and the
            keyword forms of ``scope`` and ``runtime``.

    Returns:
        What was verified: signer, root digest, files.

    Raises:
        omsign.errors.VerificationError: the model must not be trusted (signature,
            signer or content); ``IntegrityError.difference`` lists the differences.
        omsign.errors.Error: usage or environment problems.
    """
    check_keywords("verify", options, VerifyKeywords)
    checked_scope = verify_scope(scope, options)
    run = _runtime(runtime, options)
    return verify_with_policy(
        model,
        resolve_policy(policy, options),
        signature=signature,
        scope=checked_scope,
        runtime=run,
    )
