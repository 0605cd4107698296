"""``omsign.verify``: pick the policy from the options, as the command line does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omsign._paths import as_paths
from omsign._signing import PathLike, ProgressCallback
from omsign._verifying import VerificationResult, verify_with_policy
from omsign.errors import UsageError
from omsign.hashing import LinkPolicy
from omsign.policy import (
    CertificatePolicy,
    KeyPolicy,
    Policy,
    SigstorePolicy,
    load_tsa_anchors,
)

__all__ = ["make_policy", "verify"]


def make_policy(
    *,
    key: PathLike | Sequence[PathLike] | None = None,
    cert_chain: PathLike | Sequence[PathLike] = (),
    identity: str | None = None,
    identity_regexp: str | None = None,
    issuer: str | None = None,
    github_repository: str | None = None,
    github_ref: str | None = None,
    github_workflow_name: str | None = None,
    tsa_certs: PathLike | Sequence[PathLike] = (),
    offline: bool = False,
    staging: bool = False,
    trust_config: PathLike | None = None,
) -> Policy:
    """Builds the trust policy the options describe (exactly one method).

    Raises:
        UsageError: no method or more than one method was chosen.
    """
    cert_chain, tsa_certs = as_paths(cert_chain), as_paths(tsa_certs)
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
    from omsign.backends._sigstore import SigstoreIdentityPolicy, SigstoreSettings

    return SigstorePolicy(
        SigstoreIdentityPolicy(
            issuer=issuer,
            identity=identity,
            identity_regexp=identity_regexp,
            github_repository=github_repository,
            github_ref=github_ref,
            github_workflow_name=github_workflow_name,
        ),
        SigstoreSettings(
            staging=staging,
            trust_config=Path(trust_config) if trust_config else None,
            offline=offline,
        ),
    )


def verify(
    model: PathLike,
    *,
    key: PathLike | Sequence[PathLike] | None = None,
    cert_chain: PathLike | Sequence[PathLike] = (),
    identity: str | None = None,
    identity_regexp: str | None = None,
    issuer: str | None = None,
    tsa_certs: PathLike | Sequence[PathLike] = (),
    offline: bool = False,
    staging: bool = False,
    trust_config: PathLike | None = None,
    policy: Policy | None = None,
    signature: PathLike | None = None,
    ignore_paths: PathLike | Sequence[PathLike] = (),
    ignore_unsigned_files: bool = False,
    allow_missing: bool = False,
    files: str | Sequence[str] | None = None,
    link_policy: LinkPolicy | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> VerificationResult:
    """Verifies a model's signature and content (OMS section 8).

    Trust is given exactly one way, as on the command line: ``key`` (PEM public key
    path, or several), ``cert_chain`` (PEM anchors), ``identity``/``identity_regexp``
    with ``issuer`` (Sigstore), or a ready ``policy``.

    Args:
        model: file or directory.
        key: public key PEM path(s) (key method).
        cert_chain: trusted CA certificates (certificate method).
        identity: expected Sigstore certificate identity (e-mail, URI).
        identity_regexp: a regular expression the identity must fully match, instead.
        issuer: expected OIDC issuer URL (Sigstore).
        tsa_certs: trusted RFC 3161 timestamp authority roots.
        offline: Sigstore: make no network call; use the cached or shipped trust root.
        staging: Sigstore: use the staging instance.
        trust_config: Sigstore: a ClientTrustConfig file for a private instance.
        policy: an explicit :mod:`omsign.policy` object, instead of the above.
        signature: bundle path (default ``MODEL/model.sig`` or ``MODEL.sig``).
        ignore_paths: extra paths to exclude (absolute or relative to the current directory).
        ignore_unsigned_files: do not fail on files that are not in the signature.
        allow_missing: verify the files present; report signed files that are absent.
        files: verify only these files (globs allowed); the rest is not read.
        link_policy: symbolic links to follow even though the signature does not allow them.
        workers: hashing threads.
        progress: called with (bytes hashed, total bytes).

    Returns:
        What was verified: signer, root digest, files.

    Raises:
        omsign.errors.VerificationError: the model must not be trusted (signature,
            signer or content); ``IntegrityError.difference`` lists the differences.
        omsign.errors.Error: usage or environment problems.
    """
    if policy is None:
        policy = make_policy(
            key=key,
            cert_chain=cert_chain,
            identity=identity,
            identity_regexp=identity_regexp,
            issuer=issuer,
            tsa_certs=tsa_certs,
            offline=offline,
            staging=staging,
            trust_config=trust_config,
        )
    return verify_with_policy(
        model,
        policy,
        signature=signature,
        ignore_paths=as_paths(ignore_paths),
        ignore_unsigned_files=ignore_unsigned_files,
        allow_missing=allow_missing,
        files=[files] if isinstance(files, str) else files,
        link_policy=link_policy,
        workers=workers,
        progress=progress,
    )
