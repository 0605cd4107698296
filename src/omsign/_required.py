"""Attestations a verified model is required to have (``require_attestations=``).

Once a model's signature and content verify, :func:`check_required` reads every
attestation stored for it (:func:`omsign.attestations.check_attestations`) under the
**same** trust, against the **verified** root digest, and checks each requirement:

1. an attestation of the required predicate type that verified (signature and signer
   trusted, one subject equal to the verified root digest, predicate well formed and
   not expired);
2. with ``max_age``, whose time is proven (a trusted timestamp or transparency log
   entry) and at most that old; a time the signer merely claims does not count;
3. for a scan verdict, one that passed, is about the same bytes (its recorded root
   digest) and has not expired.

A requirement that no attestation meets fails with
:class:`~omsign.errors.AttestationError` naming it and why, with the near misses (the
attestations of that type that failed, each with its reason).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from omsign.errors import AttestationError, Error, MalformedSignatureError
from omsign.options import AttestationRequirement, PathLike
from omsign.predicates._scan import PREDICATE_TYPE as SCAN_TYPE
from omsign.predicates._scan import ScanVerdict, read_scan_verdict

if TYPE_CHECKING:
    from omsign.attestations import Attestation
    from omsign.policy import Verifier
    from omsign.results import VerificationResult

__all__ = ["check_required", "passing_scans", "read_attestations", "requirement_failure"]

_NEAR_MISSES = 5  # near misses named per requirement
logger = logging.getLogger("omsign")


def read_attestations(
    result: VerificationResult,
    verifier: Verifier,
    *,
    signature: PathLike | None = None,
    now: dt.datetime | None = None,
    model: PathLike | None = None,
) -> tuple[Attestation, ...]:
    """Every attestation stored for a verified model, each checked under ``verifier``.

    ``model`` is the model as it was named for verification (``hf://``, ``oci://``...;
    default: the verified local path).
    """
    from omsign.attestations import check_attestations
    from omsign.sources import resolve_source
    from omsign.storage import resolve_store

    source = resolve_source(
        model if model is not None else result.model, link_policy=result.link_policy
    )
    if signature is None and model is None:
        signature = result.signature
    store = resolve_store(source, signature)
    return tuple(check_attestations(store, result.root_digest, verifier, now=now))


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def _scan_problem(found: Attestation, root: str, now: dt.datetime) -> str:
    """Why a verified scan attestation does not clear the model (empty: it does)."""
    try:
        verdict = read_scan_verdict(found.predicate)
    except MalformedSignatureError as exc:
        return str(exc)
    if verdict.root_digest != root:
        return f"its verdict is about other bytes (sha256:{verdict.root_digest})"
    if verdict.expires <= now:
        return f"the {verdict.scanner} verdict expired at {_iso(verdict.expires)}"
    if not verdict.passed:
        bad = [f for f in verdict.scanned if not f.passed]
        what = "; ".join(f"{f.name}: {f.findings[0] if f.findings else 'flagged'}" for f in bad[:3])
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        return f"the {verdict.scanner} verdict is FAILED ({what}{more})"
    return ""


def _problem(found: Attestation, need: AttestationRequirement, root: str, now: dt.datetime) -> str:
    """Why one attestation of the required type does not meet the requirement (or "")."""
    if not found.verified:
        return found.reason or "not verified"
    if found.subject_digest != root:  # check_attestations refuses these already
        return f"it is about sha256:{found.subject_digest}, not this model"
    if need.max_age is not None:
        if found.proven_time is None:
            claimed = (
                f" (it claims {_iso(found.claimed_time)}, unproven)" if found.claimed_time else ""
            )
            return (
                "its time is not proven by a trusted timestamp or log entry"
                f"{claimed}, and max-age needs a proven time"
            )
        if now - found.proven_time > need.max_age:
            return (
                f"proven at {_iso(found.proven_time)}, older than max-age "
                f"{need.describe().rpartition('=')[2]}"
            )
    if found.predicate_type == SCAN_TYPE:
        return _scan_problem(found, root, now)
    return ""


def requirement_failure(
    need: AttestationRequirement,
    found: Sequence[Attestation],
    root: str,
    now: dt.datetime,
) -> str:
    """Why no attestation meets ``need``, in one line; empty when one does.

    Near misses are the attestations of the required type that fail, and those whose
    type cannot be known (their signature did not verify, so nothing they say is read).
    """
    from omsign.attestations import resolve_type

    uri = resolve_type(need.predicate_type)
    misses = []
    for candidate in found:
        if candidate.predicate_type == uri:
            why = _problem(candidate, need, root, now)
            if not why:
                return ""
            misses.append(f"{candidate.location}: {why}")
        elif candidate.predicate_type is None:
            misses.append(f"{candidate.location}: {candidate.reason or 'unreadable'}")
    label = need.describe() + ("" if uri == need.predicate_type else f" ({uri})")
    if not misses:
        others = [f"{a.location} ({a.predicate_type})" for a in found]
        seen = f"; found only {', '.join(others[:_NEAR_MISSES])}" if others else ""
        extra = f" and {len(others) - _NEAR_MISSES} more" if len(others) > _NEAR_MISSES else ""
        return f"required attestation {label}: none found{seen}{extra}"
    extra = f"; and {len(misses) - _NEAR_MISSES} more" if len(misses) > _NEAR_MISSES else ""
    return f"required attestation {label}: none holds: " + "; ".join(misses[:_NEAR_MISSES]) + extra


def check_required(
    result: VerificationResult,
    verifier: Verifier,
    requirements: Sequence[AttestationRequirement],
    *,
    signature: PathLike | None = None,
    now: dt.datetime | None = None,
    model: PathLike | None = None,
) -> VerificationResult:
    """The result with its attestations, once every requirement holds.

    ``model`` is the model as it was named for verification (see
    :func:`read_attestations`).

    With no requirement (attestations only read for a report), claims that cannot be
    read at all are warned about and the result is returned without them.

    Raises:
        AttestationError: a requirement that no attestation meets (every failing one
            is named, each with its near misses), or claims that cannot be read at all.
        UsageError: a requirement naming neither a known type nor a URI.
    """
    from omsign.attestations import resolve_type

    for need in requirements:
        resolve_type(need.predicate_type)  # an unknown name is a usage error, first
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        found = read_attestations(result, verifier, signature=signature, now=now, model=model)
    except Error as exc:
        if not requirements:
            logger.warning("attestations not read: %s", exc)
            return result
        needed = ", ".join(n.describe() for n in requirements)
        raise AttestationError(
            f"{result.model}: required attestations {needed}: the claims cannot be read: {exc}"
        ) from None
    failures = [
        why
        for need in requirements
        if (why := requirement_failure(need, found, result.root_digest, now))
    ]
    if failures:
        raise AttestationError(f"{result.model}: " + " | ".join(failures), found)
    return dataclasses.replace(result, attestations=found, attestations_checked=True)


def passing_scans(
    found: Sequence[Attestation], root: str, now: dt.datetime | None = None
) -> tuple[ScanVerdict, ...]:
    """The verified, fresh, passing scan verdicts among ``found`` for this root digest."""
    now = now or dt.datetime.now(dt.timezone.utc)
    need = AttestationRequirement(SCAN_TYPE)
    return tuple(
        read_scan_verdict(a.predicate)
        for a in found
        if a.predicate_type == SCAN_TYPE and not _problem(a, need, root, now)
    )
