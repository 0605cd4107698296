"""``omsign policy``: check a trust policy file, and explain which rule applies to a model.

Also the trust-policy part of ``omsign verify --policy FILE``: pick the rule for the
model, then enforce, warn or skip as its mode says.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omsign.policy import Decision, PolicyFile

__all__ = ["add_parser", "policy_report", "policy_from_args"]

POLICY_ENV = "OMSIGN_POLICY"

_HELP = """\
Trust policy files (versioned TOML): named signers, and ordered rules saying which
signers (and how many of them) each model location needs, in enforce, warn or off mode.

  omsign policy check FILE                    validate the file and summarise it
  omsign policy explain MODEL --policy FILE   which rule applies and what it requires
  omsign policy accept MODEL --policy FILE    verify MODEL in full, then pin the signers
                                              that signed it (rules with pin = true)

Verify under a policy with: omsign verify MODEL --policy FILE (or $OMSIGN_POLICY).
"""


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Registers ``policy check`` and ``policy explain``."""
    p = sub.add_parser(
        "policy",
        help="check or explain a trust policy file",
        description=_HELP,
        formatter_class=formatter,
    )
    actions = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="validate a policy file and summarise it", formatter_class=formatter
    )
    check.add_argument("file", metavar="FILE", help="the policy file (TOML)")
    check.set_defaults(handler=run_check)
    explain = actions.add_parser(
        "explain", help="say which rule applies to a model", formatter_class=formatter
    )
    explain.add_argument("model", metavar="MODEL", help="file, directory or hf://ORG/NAME")
    explain.add_argument(
        "--policy", metavar="FILE", help=f"the policy file (default ${POLICY_ENV})"
    )
    explain.set_defaults(handler=run_explain)
    accept = actions.add_parser(
        "accept",
        help="verify a model, then pin its current signers (first-use pinning)",
        description="Verify MODEL in full under the policy file, then record the signers that "
        "verified (and their signing time) as the ones pinned for it: after an expected change "
        "of signer, or a deliberate return to an older version, that verify refuses.",
        formatter_class=formatter,
    )
    accept.add_argument("model", metavar="MODEL", help="file, directory or hf://ORG/NAME")
    accept.add_argument("--policy", metavar="FILE", help=f"the policy file (default ${POLICY_ENV})")
    accept.add_argument(
        "--history",
        metavar="FILE",
        help="the signer history (default $OMSIGN_HISTORY, else "
        "$XDG_STATE_HOME/omsign/history.json)",
    )
    accept.add_argument(
        "--signature", metavar="PATH", help="signature file (default MODEL/model.sig or MODEL.sig)"
    )
    accept.set_defaults(handler=run_accept)


def policy_from_args(given: str | None, *, required: bool) -> PolicyFile | None:
    """Loads the policy file named by the flag, else by ``$OMSIGN_POLICY``."""
    from omsign.errors import UsageError
    from omsign.policy import load_policy

    path = given or os.environ.get(POLICY_ENV) or None
    if path is None:
        if required:
            raise UsageError(f"no trust policy file given (use --policy FILE or ${POLICY_ENV})")
        return None
    return load_policy(path)


def policy_report(policy: PolicyFile, decision: Decision, *, enforced: bool) -> dict[str, Any]:
    """The ``policy`` member of a JSON verification report, before the verdict.

    ``decision`` is ``not-checked`` until :func:`policy_verdict` fills it in.
    """
    rule = decision.rule
    return {
        "file": str(policy.path),
        "rule": None if rule is None else rule.index,
        "rule_name": None if rule is None else rule.name or None,
        "mode": decision.mode,
        "decision": "not-checked",
        "signers": [s.name for s in decision.signers],
        "counted": [],
        "threshold": decision.threshold,
        "enforced": enforced,
    }


def policy_verdict(member: dict[str, Any], result: Any) -> dict[str, Any]:
    """The ``policy`` member with the verdict: ``accepted``, ``rejected`` or ``would-reject``.

    Args:
        member: from :func:`policy_report`.
        result: the :class:`~omsign.VerificationResult`, or None when verification failed.
    """
    if result is None:
        verdict = "rejected" if member["enforced"] else "would-reject"
        return {**member, "decision": verdict, "counted": []}
    counted = [s.trusted_as or s.signer for s in result.signers]
    out = {**member, "decision": "accepted", "counted": counted}
    if result.pinning is not None:
        out["pinning"] = dict(result.pinning)
    return out


def run_check(args: argparse.Namespace) -> int:
    """Validates the file, loads its key and certificate files, prints a summary."""
    from omsign.cli._common import safe
    from omsign.policy import load_policy

    policy = load_policy(args.file)
    policy.check()
    if not args.quiet:
        print(safe(policy.summary()))
    return 0


def run_explain(args: argparse.Namespace) -> int:
    """Prints which rule applies to the model and what it requires."""
    from omsign.cli._common import safe

    policy = policy_from_args(args.policy, required=True)
    assert policy is not None
    decision = policy.decide(args.model)
    print(safe(decision.describe()))
    if decision.pin:
        from omsign.policy._history import default_history_path

        print(safe(f"signer history: {default_history_path()} (verify --history FILE to change)"))
    return 0


def run_accept(args: argparse.Namespace) -> int:
    """Verifies the model under the policy, then pins its signers."""
    import omsign
    from omsign.cli._common import safe

    policy = policy_from_args(args.policy, required=True)
    assert policy is not None
    result = omsign.accept_signers(
        args.model, policy=policy, signature=args.signature, history=args.history
    )
    assert result.pinning is not None
    if not args.quiet:
        pinned = ", ".join(result.pinning["pinned"])
        print(f"accepted: {safe(args.model)} is now pinned to {safe(pinned)}")
    return 0


def note(message: str) -> None:
    """A line on stderr for what the policy's mode changed."""
    from omsign.cli._common import safe

    print(f"omsign: warning: {safe(message)}", file=sys.stderr)
