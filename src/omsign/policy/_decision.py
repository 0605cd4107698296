"""What a trust policy file says about one model: the rule that applies and what it requires."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from omsign.errors import IdentityError, UsageError
from omsign.options import AttestationRequirement, VerifyScope
from omsign.policy._base import Verifier
from omsign.policy._composite import Threshold
from omsign.policy._requirements import RuleAttestation
from omsign.policy._signers import NamedSigner

__all__ = ["FILES", "Decision", "Rule"]

FILES = ("all", "present")


@dataclass(frozen=True)
class Rule:
    """One ordered rule of the file.

    Attributes:
        index: its position (1-based) among the rules.
        line: the line of its ``[[rules]]`` header.
        match: the globs over model locations: absolute paths, or URIs (``hf://``,
            ``oci://``, ``s3://``, ``gs://``, ``az://``...) matched on their canonical string
            (see :mod:`omsign.policy._globs`).
        mode: ``enforce``, ``warn`` or ``off``.
        signers: the names of the accepted signers.
        threshold: how many distinct accepted signers must have signed.
        name: an optional label.
        files: ``all`` (every signed file must be present and verified), ``present``
            (verify the signed files present, report the absent ones), or None (as the
            caller asks).
        pin: record the first verified signers of each model and refuse others later
            (first-use pinning, see :mod:`omsign.policy._history`).
        attestations: the attestations a model must also have, each with its signers
            (see :mod:`omsign.policy._requirements`).
    """

    index: int
    line: int
    match: tuple[str, ...]
    mode: str
    signers: tuple[str, ...]
    threshold: int
    name: str = ""
    files: str | None = None
    pin: bool = False
    attestations: tuple[RuleAttestation, ...] = ()

    def label(self) -> str:
        """``rule 2 (name)``."""
        return f"rule {self.index}" + (f" ({self.name})" if self.name else "")


@dataclass(frozen=True)
class Decision:
    """What the policy says about one model.

    Attributes:
        location: the model's location as the rules see it.
        rule: the first rule that matches, or None (the default applies).
        mode: ``enforce``, ``warn``, ``off``; ``deny`` when no rule matches and the
            default denies.
        signers: the accepted signers.
        threshold: how many of them must have signed.
        named: every signer of the file, by name (for the attestations' own signers).
    """

    location: str
    rule: Rule | None
    mode: str
    signers: tuple[NamedSigner, ...]
    threshold: int
    named: Mapping[str, NamedSigner] = field(default_factory=dict, repr=False)

    @property
    def attestations(self) -> tuple[RuleAttestation, ...]:
        """The attestations the rule requires."""
        return self.rule.attestations if self.rule else ()

    def required_attestations(self) -> list[tuple[AttestationRequirement, Verifier]]:
        """Each required attestation with the verifier of its own signers (one suffices)."""
        return [
            (ra.requirement, Threshold(1, [self.named[n].verifier() for n in ra.signers]))
            for ra in self.attestations
        ]

    @property
    def files(self) -> str | None:
        """The rule's ``files`` setting (``all``, ``present``, or None)."""
        return self.rule.files if self.rule else None

    @property
    def pin(self) -> bool:
        """Whether the rule pins the first verified signers of the model."""
        return bool(self.rule and self.rule.pin)

    def scope(self, scope: VerifyScope) -> VerifyScope:
        """The caller's scope as the rule's ``files`` setting makes it.

        ``present`` verifies the signed files present and reports the absent ones;
        ``all`` refuses a partial verification.

        Raises:
            UsageError: the rule needs every file, and the scope asks for fewer.
        """
        if self.files == "present":
            return dataclasses.replace(scope, allow_missing=True)
        if self.files == "all" and (scope.allow_missing or scope.files is not None):
            assert self.rule is not None
            raise UsageError(
                f"{self.location}: {self.rule.label()} of the trust policy requires every "
                "signed file; a partial verification is refused",
                options=("allow_missing", "files"),
                hint="leave out {option0} and {option1}",
            )
        return scope

    def verifier(self) -> Verifier:
        """The threshold verifier over the accepted signers.

        Raises:
            IdentityError: no rule matches and the default denies.
        """
        if self.mode == "deny":
            raise IdentityError(f"{self.location}: no rule of the trust policy matches; denied")
        if not self.signers:
            raise UsageError(f"{self.location}: the trust policy checks nothing here (mode off)")
        return Threshold(self.threshold, [s.verifier() for s in self.signers])

    def describe(self) -> str:
        """What applies and what it requires, in a few lines."""
        if self.rule is None:
            return f"{self.location}: no rule matches; default: {self.mode}"
        lines = [
            f"{self.location}: {self.rule.label()} (line {self.rule.line}) applies, "
            f"mode {self.mode}",
            f"requires {self.threshold} of {len(self.signers)} signers:",
        ]
        lines += [f"  {s.describe()}" for s in self.signers]
        if self.files == "all":
            lines.append("every signed file must be present")
        elif self.files == "present":
            lines.append("the signed files present are verified; absent ones are reported")
        lines += [f"requires the attestation {ra.describe()}" for ra in self.attestations]
        if self.pin:
            lines.append(
                "first-use pinning: signers other than the first recorded ones are refused "
                "until accepted; an older signature than the newest recorded is a rollback"
            )
        return "\n".join(lines)
