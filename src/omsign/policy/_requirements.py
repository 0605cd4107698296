"""Attestations a trust policy rule requires, each with its own signers and maximum age.

In a rule::

    [[rules]]
    match = "/srv/models/**"
    signers = ["trainer"]
    attestations = [
      { type = "scan", signers = ["scanner"], max_age = "7d" },
      { type = "provenance" },            # signed by one of the rule's signers
    ]

``type`` is a short name (``provenance``, ``scan``, ``model-card``, ``bom``) or a predicate
type URI; ``signers`` names the policy signers trusted for that type (one of them must
have signed it; default: the rule's signers); ``max_age`` is a duration (``30d``,
``12h``...) that the attestation's proven time must be within.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omsign.errors import UsageError
from omsign.options import AttestationRequirement, parse_duration
from omsign.policy._signers import Reader

__all__ = ["RuleAttestation", "parse_attestations"]

_KEYS = {"type", "signers", "max_age"}


@dataclass(frozen=True)
class RuleAttestation:
    """One attestation a rule requires.

    Attributes:
        requirement: its type and maximum age.
        signers: the names of the policy signers trusted to attest it.
    """

    requirement: AttestationRequirement
    signers: tuple[str, ...]

    def describe(self) -> str:
        """``scan:max-age=7d signed by one of scanner``."""
        return f"{self.requirement.describe()} signed by one of {', '.join(self.signers)}"


def _known_type(name: str) -> bool:
    from omsign.predicates import ATTESTATION_KINDS

    return name in ATTESTATION_KINDS or "://" in name or name.startswith("urn:")


def parse_attestations(
    reader: Reader,
    index: int,
    value: Any,
    line: int,
    *,
    rule_signers: tuple[str, ...],
    signers: Mapping[str, Any],
) -> tuple[RuleAttestation, ...]:
    """Validates a rule's ``attestations`` list (see the module docstring)."""
    at = reader.line_of("attestations", line - 1)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise reader.fail(at, f"rule {index}: attestations must be a list of tables")
    out = []
    for table in value:
        where = f"rule {index} attestation"
        reader.known(table, _KEYS, where, at - 1)
        kind = table.get("type")
        if not isinstance(kind, str) or not _known_type(kind):
            from omsign.predicates import ATTESTATION_KINDS

            known = ", ".join(sorted(ATTESTATION_KINDS))
            raise reader.fail(
                reader.line_of("type", at - 1),
                f"{where}: type must be one of {known} or a predicate type URI, got {kind!r}",
            )
        names = table.get("signers", list(rule_signers))
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise reader.fail(at, f"{where} {kind}: signers must list at least one signer")
        for name in names:
            if name not in signers:
                raise reader.fail(at, f"{where} {kind}: unknown signer '{name}'")
        max_age = None
        if "max_age" in table:
            if not isinstance(table["max_age"], str):
                raise reader.fail(at, f"{where} {kind}: max_age must be a duration such as 7d")
            try:
                max_age = parse_duration(table["max_age"])
            except UsageError as exc:
                raise reader.fail(at, f"{where} {kind}: {exc.message}") from None
        out.append(
            RuleAttestation(AttestationRequirement(kind, max_age), tuple(dict.fromkeys(names)))
        )
    return tuple(out)
