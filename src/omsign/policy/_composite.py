"""Verifiers made of verifiers: any of several signers, or k of n signers over several bundles.

:class:`AnyOf` accepts a bundle that one of its verifiers accepts. :class:`Threshold`
needs ``k`` distinct signers, each proven by a bundle, all over the same payload;
:func:`verify_bundles` evaluates any policy over several bundles and returns a
:class:`PolicyOutcome` that says who verified, who did not, and why.

What "the same payload" means is the caller's to say: by default two signatures
agree when their payload bytes are equal; pass ``subject`` (for instance a function
returning the statement's root digest, applied only to payloads whose signature
verified) to compare what the payloads sign instead of their bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from omsign.errors import IdentityError, UsageError, VerificationError
from omsign.policy._base import MethodMismatchError, VerifiedSignature, Verifier

if TYPE_CHECKING:
    from omsign.bundle import Bundle

__all__ = [
    "AnyOf",
    "BundleFailure",
    "PolicyOutcome",
    "SignerReport",
    "Threshold",
    "verify_bundles",
]

Subject = Callable[[bytes], object]


def _payload_digest(payload: bytes) -> object:
    return hashlib.sha256(payload).hexdigest()


def _methods(verifiers: Sequence[Verifier]) -> str:
    """The distinct methods of some verifiers, in order, ``|``-separated."""
    return "|".join(dict.fromkeys(v.method for v in verifiers))


def _with_claimed_time(found: VerifiedSignature, bundle: Bundle) -> VerifiedSignature:
    """The signature with the time its bundle claims, when no time is proven."""
    if found.signed_at is not None or found.claimed_at is not None:
        return found
    from omsign.policy._history import claimed_time

    return dataclasses.replace(found, claimed_at=claimed_time(bundle))


class AnyOf:
    """Accepts a bundle that any of its verifiers accepts (the first one, in order)."""

    def __init__(self, verifiers: Sequence[Verifier]) -> None:
        if not verifiers:
            raise UsageError("a policy of alternatives needs at least one verifier")
        self.verifiers: tuple[Verifier, ...] = tuple(verifiers)

    @property
    def method(self) -> str:
        """The methods of its verifiers, ``|``-separated."""
        return _methods(self.verifiers)

    @property
    def name(self) -> str:
        """``any of (a; b)``."""
        return f"any of ({'; '.join(v.name for v in self.verifiers)})"

    def verify(self, bundle: Bundle) -> VerifiedSignature:
        """Returns the first verifier's result that accepts the bundle.

        Raises:
            VerificationError: none accepts it; a single relevant failure is raised
                as it is, several are summed up in an ``IdentityError``.
        """
        failures: list[tuple[Verifier, VerificationError]] = []
        for verifier in self.verifiers:
            try:
                return verifier.verify(bundle)
            except VerificationError as exc:
                failures.append((verifier, exc))
        relevant = [(v, e) for v, e in failures if not isinstance(e, MethodMismatchError)]
        if not relevant:
            raise failures[0][1]
        if len(relevant) == 1:
            raise relevant[0][1]
        raise IdentityError(
            "no trusted signer verifies the signature: "
            + "; ".join(f"{v.name}: {e}" for v, e in relevant)
        )


@dataclass(frozen=True)
class SignerReport:
    """One signer a policy names, and what the bundles proved about it.

    Attributes:
        name: the verifier's display name.
        verified: the signatures it accepted (one per bundle it accepted).
        counted: whether it counts towards the threshold (distinct signer, agreed payload).
        reasons: why it did not verify or count, one line each (``bundle 2: ...``).
    """

    name: str
    verified: tuple[VerifiedSignature, ...] = ()
    counted: bool = False
    reasons: tuple[str, ...] = ()

    def describe(self) -> str:
        """``name: verified`` or ``name: not verified (reasons)``."""
        if self.counted:
            return f"{self.name}: verified"
        return f"{self.name}: not verified ({'; '.join(self.reasons) or 'no signature'})"


@dataclass(frozen=True)
class BundleFailure:
    """A bundle that no signer of the policy accepted.

    Attributes:
        index: its position in the bundles given (0-based).
        error: the most telling failure (a method mismatch only if nothing else).
    """

    index: int
    error: VerificationError


@dataclass(frozen=True)
class PolicyOutcome:
    """What a policy proved over several bundles.

    Attributes:
        required: how many distinct signers the policy needs.
        signers: one report per signer the policy names, in its order.
        verified: the counted signatures: one per distinct signer, all over one payload.
        failures: the bundles no signer accepted, and why.
        payloads: every distinct payload some verified signature covers (the counted
            one first); more than one means signers disagree on what they signed.
    """

    required: int
    signers: tuple[SignerReport, ...]
    verified: tuple[VerifiedSignature, ...]
    failures: tuple[BundleFailure, ...]
    payloads: tuple[bytes, ...]
    conflict: bool = False

    @property
    def ok(self) -> bool:
        """Whether enough distinct signers agree on one payload."""
        return not self.conflict and len(self.verified) >= self.required

    @property
    def payload(self) -> bytes | None:
        """The payload the counted signatures cover, once the policy is satisfied."""
        return self.verified[0].payload if self.ok else None

    def describe(self) -> str:
        """One line: how many of the required signers verified, and each signer's state."""
        head = f"{len(self.verified)} of {self.required} required signers verified"
        if self.conflict:
            head += f"; the verified signatures cover {len(self.payloads)} different payloads"
        return f"{head}: " + "; ".join(s.describe() for s in self.signers)

    def error(self) -> VerificationError:
        """The error to raise when the policy is not satisfied.

        A lone bundle failing a lone signer gives that failure as it is.
        """
        if len(self.signers) == 1 and len(self.failures) == 1 and not self.conflict:
            return self.failures[0].error
        return IdentityError(f"the signature policy is not satisfied: {self.describe()}")

    def check(self) -> tuple[VerifiedSignature, ...]:
        """The counted signatures, or raises :meth:`error`."""
        if not self.ok:
            raise self.error()
        return self.verified


class Threshold:
    """Needs ``k`` of the named signers, each proven by some bundle, over one payload.

    Signers are counted by who signed (method and signer), not by bundle or by
    verifier: the same key signing twice, or matching two verifiers, counts once.
    """

    def __init__(self, k: int, verifiers: Sequence[Verifier]) -> None:
        if not verifiers:
            raise UsageError("a threshold policy needs at least one verifier")
        if not 1 <= k <= len(verifiers):
            raise UsageError(f"a threshold must be between 1 and {len(verifiers)}, got {k}")
        self.k = k
        self.verifiers: tuple[Verifier, ...] = tuple(verifiers)

    @property
    def method(self) -> str:
        """The methods of its verifiers, ``|``-separated."""
        return _methods(self.verifiers)

    @property
    def name(self) -> str:
        """``k of (a; b; c)``."""
        return f"{self.k} of ({'; '.join(v.name for v in self.verifiers)})"

    def verify(self, bundle: Bundle) -> VerifiedSignature:
        """Checks one bundle; satisfied only when ``k`` is 1."""
        return self.evaluate([bundle]).check()[0]

    def evaluate(self, bundles: Sequence[Bundle], subject: Subject | None = None) -> PolicyOutcome:
        """Checks every bundle against every signer; see :func:`verify_bundles`."""
        key = subject or _payload_digest
        hits: list[list[VerifiedSignature]] = [[] for _ in self.verifiers]
        misses: list[list[str]] = [[] for _ in self.verifiers]
        failures: list[BundleFailure] = []
        for index, bundle in enumerate(bundles):
            errors: list[VerificationError] = []
            for slot, verifier in enumerate(self.verifiers):
                try:
                    hits[slot].append(_with_claimed_time(verifier.verify(bundle), bundle))
                except VerificationError as exc:
                    errors.append(exc)
                    misses[slot].append(f"bundle {index + 1}: {exc}")
            if len(errors) == len(self.verifiers):
                telling = [e for e in errors if not isinstance(e, MethodMismatchError)]
                failures.append(BundleFailure(index, (telling or errors)[0]))
        return self._count(hits, misses, failures, key)

    def _count(
        self,
        hits: list[list[VerifiedSignature]],
        misses: list[list[str]],
        failures: list[BundleFailure],
        key: Subject,
    ) -> PolicyOutcome:
        # Distinct signers per subject, in the order they were proven.
        groups: dict[object, dict[tuple[str, str], VerifiedSignature]] = {}
        payloads: dict[object, bytes] = {}
        for found in hits:
            for vs in found:
                subject = key(vs.payload)
                groups.setdefault(subject, {}).setdefault((vs.method, vs.signer), vs)
                payloads.setdefault(subject, vs.payload)
        enough = [s for s, signers in groups.items() if len(signers) >= self.k]
        conflict = len(enough) > 1
        best = max(groups, key=lambda s: len(groups[s]), default=None)
        chosen = enough[0] if len(enough) == 1 else best
        counted = groups.get(chosen, {}) if chosen is not None else {}
        reports = []
        for verifier, found, missed in zip(self.verifiers, hits, misses, strict=True):
            mine = [vs for vs in found if key(vs.payload) == chosen]
            reasons = list(missed)
            if found and not mine:
                reasons.append("signed a different payload")
            reports.append(SignerReport(verifier.name, tuple(found), bool(mine), tuple(reasons)))
        ordered = [payloads[chosen]] if chosen is not None else []
        ordered += [p for s, p in payloads.items() if s != chosen]
        return PolicyOutcome(
            required=self.k,
            signers=tuple(reports),
            verified=tuple(counted.values()),
            failures=tuple(failures),
            payloads=tuple(ordered),
            conflict=conflict,
        )


def verify_bundles(
    bundles: Sequence[Bundle], policy: Verifier, *, subject: Subject | None = None
) -> PolicyOutcome:
    """Evaluates a policy over several bundles of one model.

    A :class:`Threshold` counts its signers; any other verifier is one signer that
    must be proven by at least one bundle (``Threshold(1, [policy])``).

    Args:
        bundles: the parsed bundles.
        policy: the verifier or composite to satisfy.
        subject: maps a verified payload to what it signs, for comparing signatures
            (for example the statement's root digest); by default the payload bytes
            themselves are compared. It is only applied to authenticated payloads.

    Returns:
        The outcome; ``outcome.check()`` raises when the policy is not satisfied.
        Usage and environment errors (an unreadable trust root) are raised, not reported.
    """
    threshold = policy if isinstance(policy, Threshold) else Threshold(1, [policy])
    return threshold.evaluate(bundles, subject)
