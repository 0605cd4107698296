"""``omsign.verify``: pick the policy from the options, as the command line does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omsign._keywords import (
    TrustOptions,
    VerifyKeywords,
    check_keywords,
    pick,
    verify_scope,
)
from omsign._keywords import runtime as _runtime
from omsign._verify import verify_with_policy
from omsign.errors import UsageError
from omsign.options import PathLike, Runtime, VerifyScope
from omsign.policy import Policy

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from omsign.policy._file import PolicyFile
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
    from omsign.policy import policy_from_options

    return policy_from_options(options)


def resolve_policy(
    policy: Policy | PolicyFile | None, options: Mapping[str, Any], model: PathLike
) -> Policy:
    """The ready ``policy``, or the one the trust keywords describe (not both).

    A policy file gives the verifier of its first rule matching ``model``.
    """
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
    from omsign.policy._file import PolicyFile

    if isinstance(policy, PolicyFile):
        return policy.decide(model).verifier()
    return policy


def verify(
    model: PathLike,
    *,
    policy: Policy | PolicyFile | None = None,
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
        policy: an explicit :mod:`omsign.policy` object, or a trust policy file from
            :func:`omsign.load_policy` (its first rule matching the model gives the
            signers and threshold; the library verifies under them whatever the rule's
            mode, which :meth:`~omsign.policy.PolicyFile.decide` reports to the caller;
            its ``files`` setting adjusts ``scope``), instead of the trust keywords.
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
    verifier = resolve_policy(policy, options, model)
    from omsign.policy._file import PolicyFile

    if isinstance(policy, PolicyFile):
        checked_scope = policy.decide(model).scope(checked_scope)
    return verify_with_policy(
        model,
        verifier,
        signature=signature,
        scope=checked_scope,
        runtime=run,
    )
