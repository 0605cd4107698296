"""``omsign.verify``: pick the policy from the options, as the command line does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
from omsign.options import AttestationRequirement, PathLike, Runtime, VerifyScope
from omsign.policy import Policy

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from omsign.policy._file import PolicyFile
    from omsign.results import VerificationResult

__all__ = [
    "accept_signers",
    "make_policy",
    "requirements",
    "resolve_policy",
    "rule_attestations",
    "verify",
]


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
    history: PathLike | None = None,
    require_attestations: Sequence[AttestationRequirement | str] = (),
    read_attestations: bool = False,
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
        history: the first-use history file, for a policy file rule with ``pin = true``
            (default ``$OMSIGN_HISTORY`` or the XDG state directory; see
            :mod:`omsign.policy._history`); the result's ``pinning`` says what it said.
        **options: the trust keywords ``key``, ``cert_chain``, ``identity``,
            ``identity_regexp``, ``issuer``, ``github_repository``, ``github_ref``,
            ``github_workflow_name``, ``tsa_certs``, ``offline``, ``staging``,
            ``trust_config`` (see :class:`~omsign._keywords.TrustOptions`), and the
            keyword forms of ``scope`` and ``runtime``.
        require_attestations: attestations the model must also have, each an
            :class:`~omsign.options.AttestationRequirement` (or its text form,
            ``"scan:max-age=7d"``): verified under the same trust, about the verified
            root digest, recent enough by a proven time when ``max_age`` is set; a scan
            verdict must have passed and not expired.
        read_attestations: also check and report every attestation stored for the
            model (``result.attestations``) when none is required.

    Returns:
        What was verified: signer, root digest, files (and attestations, when read).

    Raises:
        omsign.errors.VerificationError: the model must not be trusted (signature,
            signer or content); ``IntegrityError.difference`` lists the differences;
            ``AttestationError`` names a required attestation that is missing or fails.
        omsign.errors.Error: usage or environment problems.
    """
    check_keywords("verify", options, VerifyKeywords)
    checked_scope = verify_scope(scope, options)
    run = _runtime(runtime, options)
    needs = requirements(require_attestations)
    trust = resolve_policy(policy, options, model)
    from omsign.policy._file import PolicyFile

    if isinstance(policy, PolicyFile):
        checked_scope = policy.decide(model).scope(checked_scope)
    result = verify_with_policy(
        model,
        trust,
        signature=signature,
        scope=checked_scope,
        runtime=run,
    )
    if needs or read_attestations:
        from omsign._required import check_required

        result = check_required(result, trust, needs, signature=signature, model=model)
    if isinstance(policy, PolicyFile):
        result = rule_attestations(policy, model, result, signature)
        result = _pin(policy, model, result, history, accept=False)
    return result


def rule_attestations(
    policy: PolicyFile, model: PathLike, result: VerificationResult, signature: PathLike | None
) -> VerificationResult:
    """Checks the attestations the policy rule requires, each type under its own signers.

    Raises:
        AttestationError: every requirement that no attestation meets, named with why.
    """
    decision = policy.decide(model)
    if not decision.attestations:
        return result
    import dataclasses
    import datetime as dt

    from omsign._required import read_attestations, requirement_failure
    from omsign.errors import AttestationError

    now = dt.datetime.now(dt.timezone.utc)
    by_signers: dict[tuple[str, ...], Any] = {}
    failures, seen = [], {}
    for ra, (need, verifier) in zip(
        decision.attestations, decision.required_attestations(), strict=True
    ):
        if ra.signers not in by_signers:  # one read of the claims per set of signers
            by_signers[ra.signers] = read_attestations(
                result, verifier, signature=signature, now=now, model=model
            )
        found = by_signers[ra.signers]
        for a in found:  # the report keeps, per claim, the reading that verified
            if a.location not in seen or a.verified:
                seen[a.location] = a
        why = requirement_failure(need, found, result.root_digest, now)
        if why:
            failures.append(f"{why} (signed by one of {', '.join(ra.signers)})")
    if failures:
        raise AttestationError(f"{result.model}: " + " | ".join(failures), tuple(seen.values()))
    return dataclasses.replace(result, attestations=tuple(seen.values()), attestations_checked=True)


def _pin(
    policy: PolicyFile,
    model: PathLike,
    result: VerificationResult,
    history: PathLike | None,
    *,
    accept: bool,
) -> VerificationResult:
    """Checks and records the verified signers in the first-use history, if the rule pins."""
    import dataclasses
    from pathlib import Path

    from omsign.policy._history import default_history_path, record_pins

    decision = policy.decide(model)
    if not decision.pin:
        return result
    check = record_pins(
        Path(history) if history is not None else default_history_path(),
        decision.location,
        result.signers,
        result.root_digest,
        accept=accept,
    )
    return dataclasses.replace(result, pinning=check.to_json())


def accept_signers(
    model: PathLike,
    *,
    policy: PolicyFile,
    signature: PathLike | None = None,
    scope: VerifyScope | None = None,
    runtime: Runtime | None = None,
    history: PathLike | None = None,
) -> VerificationResult:
    """Verifies a model in full under a policy file, then pins the signers that verified.

    For a rule with ``pin = true``: after a change of signer (or a deliberate return to
    an older version) that :func:`verify` refuses, this records the signers and the
    signing time of the model as it is now. Nothing is recorded unless the model
    verifies under the current policy.

    Raises:
        omsign.errors.VerificationError: the model does not verify.
        omsign.errors.UsageError: the rule that applies does not pin signers.
    """
    from omsign.policy._file import PolicyFile

    if not isinstance(policy, PolicyFile):
        raise UsageError("accepting signers needs a trust policy file (omsign.load_policy)")
    decision = policy.decide(model)
    if not decision.pin:
        raise UsageError(
            f"{decision.location}: the rule of the trust policy that applies does not pin "
            "signers (pin = true); there is nothing to accept"
        )
    result = verify_with_policy(
        model,
        decision.verifier(),
        signature=signature,
        scope=decision.scope(scope or VerifyScope()),
        runtime=runtime,
    )
    result = rule_attestations(policy, model, result, signature)
    return _pin(policy, model, result, history, accept=True)


def requirements(
    given: Sequence[AttestationRequirement | str] | AttestationRequirement | str,
) -> tuple[AttestationRequirement, ...]:
    """Requirements as values (text forms such as ``"scan:max-age=7d"`` are parsed).

    Raises:
        UsageError: a requirement that cannot be read, or a name that is neither a
            built-in attestation type nor a URI.
    """
    if isinstance(given, (str, AttestationRequirement)):
        given = (given,)
    out = tuple(
        g if isinstance(g, AttestationRequirement) else AttestationRequirement.parse(g)
        for g in given
    )
    if out:
        from omsign.attestations import resolve_type

        for need in out:
            resolve_type(need.predicate_type)  # an unknown name fails before any work
    return out
