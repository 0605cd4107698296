"""Signed attestations bound to a model: what they are and how each one is checked.

An attestation is a bundle whose DSSE payload is an in-toto Statement v1 with exactly one
subject: the model's name and its OMS root digest (``{"sha256": <root digest>}``), the
same digest a signature of the model records. Its predicate says something about that
exact content: SLSA provenance (the step that made it, from what), a scanner's verdict,
the model card's metadata, a bill of materials, or anything else.

The file store keeps them one per line in ``claims.jsonl`` beside the model's signature
(:meth:`omsign.storage.SignatureStore.claims`). :func:`check_attestations` checks every
line on its own, under the same trust as the model: the bundle's signature with the
given verifier, then the statement (one subject, whose SHA-256 is the verified root
digest), then the built-in predicate's shape and times. A bad line is reported in its
place, never hiding the others.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omsign import intoto
from omsign.bundle import parse_bundle
from omsign.errors import Error, UsageError, VerificationError
from omsign.predicates import ATTESTATION_KINDS, find_attestation_kind
from omsign.results import VerifiedSigner

if TYPE_CHECKING:
    from omsign.policy import Verifier
    from omsign.storage import SignatureStore

__all__ = [
    "ATTESTATION_TYPES",
    "CLOCK_SKEW",
    "Attestation",
    "check_attestation",
    "check_attestations",
    "resolve_type",
    "type_name",
]

# Short name -> predicate type URI, for every built-in predicate.
ATTESTATION_TYPES: dict[str, str] = {
    name: kind.predicate_type for name, kind in ATTESTATION_KINDS.items()
}
# How far a claimed time may lie after the proven signing time (clocks differ).
CLOCK_SKEW = dt.timedelta(minutes=5)


def resolve_type(name_or_uri: str) -> str:
    """The predicate type URI for a short name (``provenance``) or a URI (returned as is).

    Raises:
        UsageError: neither a known short name nor a URI.
    """
    if name_or_uri in ATTESTATION_TYPES:
        return ATTESTATION_TYPES[name_or_uri]
    if "://" in name_or_uri or name_or_uri.startswith("urn:"):
        return name_or_uri
    known = ", ".join(sorted(ATTESTATION_TYPES))
    raise UsageError(
        f"unknown attestation type {name_or_uri!r}: give one of {known}, or a predicate type URI"
    )


def type_name(predicate_type: str | None) -> str | None:
    """The short name of a built-in predicate type, or None."""
    kind = find_attestation_kind(predicate_type) if predicate_type else None
    return kind.name if kind else None


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class Attestation:
    """One attestation found for a model, and whether it holds.

    Attributes:
        location: where it was read (``.../claims.jsonl:3``).
        predicate_type: the statement's predicate type (None when unreadable).
        predicate: the predicate object (None when unreadable or unauthenticated).
        subject_digest: the hex SHA-256 of its subject (None when not one subject).
        verified: its signature verified under the trust given, its one subject is the
            verified root digest, and its predicate is well formed and current.
        reason: why it is not verified (empty when it is).
        signer: what its signature proves, when the signature verified.
        proven_time: the signing time a trusted timestamp or log entry proves.
        claimed_time: the time the predicate claims for its event (not proven).
    """

    location: str
    predicate_type: str | None
    predicate: Mapping[str, Any] | None
    subject_digest: str | None
    verified: bool
    reason: str
    signer: VerifiedSigner | None = None
    proven_time: dt.datetime | None = None
    claimed_time: dt.datetime | None = None

    @property
    def type_name(self) -> str | None:
        """The built-in short name of its predicate type (``provenance``), or None."""
        return type_name(self.predicate_type)

    def to_json(self) -> dict[str, Any]:
        """The attestation as a JSON-ready object (the predicate itself is left out)."""
        return {
            "location": self.location,
            "predicate_type": self.predicate_type,
            "type": self.type_name,
            "subject_digest": f"sha256:{self.subject_digest}" if self.subject_digest else None,
            "verified": self.verified,
            "reason": self.reason,
            "signer": self.signer.to_json() if self.signer else None,
            "proven_time": _iso(self.proven_time),
            "claimed_time": _iso(self.claimed_time),
        }


def _failed(location: str, reason: str, **known: Any) -> Attestation:
    fields: dict[str, Any] = {"predicate_type": None, "predicate": None, "subject_digest": None}
    fields.update(known)
    return Attestation(location, verified=False, reason=reason, **fields)


def _message(exc: Error, location: str) -> str:
    text = str(exc)
    return text.removeprefix(f"{location}: ")


def _subject_digest(statement: intoto.Statement) -> tuple[str | None, str]:
    """The one subject's SHA-256, and why the subjects are not acceptable (or "")."""
    if len(statement.subjects) != 1:
        return None, (
            f"the statement has {len(statement.subjects)} subjects; an attestation is "
            "about exactly one model"
        )
    value = statement.subjects[0].digest.get("sha256")
    if not isinstance(value, str):
        return None, "the statement's subject has no sha256 digest"
    return value, ""


def _times(
    statement: intoto.Statement, now: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The predicate's claimed time and expiry (built-in predicates are checked too)."""
    kind = find_attestation_kind(statement.predicate_type)
    if kind is None:
        return None, None
    predicate = statement.predicate or {}
    if kind.check is not None:
        kind.check(predicate)
    claimed = kind.claimed_time(predicate) if kind.claimed_time else None
    expires = kind.expires(predicate) if kind.expires else None
    return claimed, expires


def check_attestation(
    location: str,
    raw: bytes | Error,
    root_digest: str,
    verifier: Verifier,
    *,
    now: dt.datetime | None = None,
) -> Attestation:
    """Checks one stored attestation (see :func:`check_attestations`); never raises for it.

    Raises:
        Error: only problems that are not this attestation's (a trust root that cannot
            be loaded, say), which would affect every attestation alike.
    """
    if isinstance(raw, Error):
        return _failed(location, _message(raw, location))
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        bundle = parse_bundle(raw, location)
        proven = verifier.verify(bundle)
    except VerificationError as exc:
        return _failed(location, _message(exc, location))
    signer = VerifiedSigner(proven.method, proven.signer, proven.issuer, proven.signed_at, location)
    known: dict[str, Any] = {"signer": signer, "proven_time": proven.signed_at}
    if proven.legacy_encoding:
        return _failed(location, "signed over the legacy v0.2 encoding", **known)
    try:
        statement = intoto.parse(proven.payload)
    except VerificationError as exc:
        return _failed(location, _message(exc, location), **known)
    known["predicate_type"] = statement.predicate_type
    digest, problem = _subject_digest(statement)
    known["subject_digest"] = digest
    if problem:
        return _failed(location, problem, **known)
    if digest != root_digest:
        return _failed(
            location,
            f"it is about sha256:{digest}, not this model (sha256:{root_digest})",
            **known,
        )
    known["predicate"] = statement.predicate
    try:
        claimed, expires = _times(statement, now)
    except VerificationError as exc:
        return _failed(location, _message(exc, location), **known)
    known["claimed_time"] = claimed
    if expires is not None and expires <= now:
        return _failed(location, f"it expired at {expires.isoformat()}", **known)
    if claimed and proven.signed_at and claimed > proven.signed_at + CLOCK_SKEW:
        return _failed(
            location,
            f"it claims a time ({claimed.isoformat()}) after the signing time its "
            f"timestamp proves ({proven.signed_at.isoformat()})",
            **known,
        )
    return Attestation(location, verified=True, reason="", **known)


def check_attestations(
    store: SignatureStore,
    root_digest: str,
    verifier: Verifier,
    *,
    now: dt.datetime | None = None,
) -> list[Attestation]:
    """Checks every attestation stored for a model, each on its own.

    Args:
        store: the model's signature store (its claims are read, bounded in size and
            count).
        root_digest: the model's **verified** root digest (hex): the one subject each
            attestation must have.
        verifier: whom to trust (an :mod:`omsign.policy` verifier), as for the model.
        now: the time expiry is judged against (default: now).

    Returns:
        One :class:`Attestation` per stored line, in file order, verified or with the
        reason it is not: a malformed, torn or untrusted line never hides the others.

    Raises:
        Error: the claims cannot be read at all, or a problem common to every
            attestation (the verifier's trust root cannot be loaded).
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    return [
        check_attestation(location, raw, root_digest, verifier, now=now)
        for location, raw in store.claims()
    ]
