"""``omsign verify``: check the signature, the signer and every file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from omsign.cli._common import (
    add_executor_flag,
    add_ignore_flags,
    count,
    emit_json,
    listing,
    progress_bar,
    safe,
)

__all__ = ["add_parser", "add_trust_flags"]

_HELP = """\
Verify a model against its signature (OMS v1.0 section 8): the signature, the
signer, then every file re-hashed with the signed settings. Say whom you trust:

  --key PUBLIC.pem                         key method
  --cert-chain CA.pem [--cert-chain ...]   certificate method: trusted CAs (never the
                                           system trust store)
  --identity ID --issuer URL               Sigstore keyless (or --identity-regexp)
  --policy FILE                            a trust policy file (or $OMSIGN_POLICY when
                                           no other trust flag is given): its first
                                           rule matching MODEL says who must have signed
                                           and whether to enforce, warn (exit 0 with a
                                           report) or skip; each of its signers carries
                                           its own TSA, trust config and offline settings
                                           (--tsa-cert, --trust-config, --offline... are
                                           refused with it)

Partial checks: --allow-missing verifies every file present and reports the signed
files that are absent; --files PATH... verifies exactly those signed files (globs
allowed) and reads nothing else. A Hugging Face cache snapshot (or hf://ORG/NAME)
verifies without --allow-symlinks: links into the repository's own cache folder count
as the files they point to; any other link is refused.

Object storage: s3://, gs:// and az:// BUCKET/PREFIX are read in place, each object
pinned to the version listed; the signature is PREFIX/model.sig there unless
--signature names a local file. https://HOST/PATH/ (or http://) reads a folder from
the server's directory index, each file pinned by its ETag; the signature is
PATH/model.sig there unless --signature names a local file.

Required attestations: --require-attestation TYPE[:max-age=DURATION] (repeatable;
TYPE is provenance, scan, model-card, bom or a predicate type URI) needs, once the
model verifies, an attestation of that type in claims.jsonl signed by a signer this
verification trusts, about the verified root digest, and with max-age (30d, 12h...)
a proven time (trusted timestamp or log entry) that recent. A scan verdict must have
passed and not expired. --json lists every attestation found and why each failed.

Exit codes: 0 verified, 1 verification failed, 2 usage or environment error.
"""


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Registers ``verify``."""
    p = sub.add_parser(
        "verify", help="verify a model", description=_HELP, formatter_class=formatter
    )
    p.add_argument(  # optional for argparse only: "--files A B MODEL" is taken apart in run
        "model",
        nargs="?",
        metavar="MODEL",
        help="file, directory, or hf://ORG/NAME[@REVISION] (local Hugging Face cache, no network)",
    )
    p.add_argument(
        "--signature", metavar="PATH", help="signature file (default MODEL/model.sig or MODEL.sig)"
    )
    add_trust_flags(p)
    scope = p.add_argument_group("what to check")
    add_ignore_flags(scope, symlinks=False)
    scope.add_argument(
        "--ignore-unsigned-files",
        action="store_true",
        help="do not fail on files that the signature does not list",
    )
    scope.add_argument(
        "--allow-missing",
        action="store_true",
        help="verify the files present; report signed files that are absent",
    )
    scope.add_argument(
        "--files",
        nargs="+",
        metavar="NAME",
        help="verify only these signed files, named as in the signature (relative to the "
        "model, globs allowed)",
    )
    scope.add_argument(
        "--workers", type=count, metavar="N", help="hashing threads (default: every CPU)"
    )
    add_executor_flag(scope)
    scope.add_argument(
        "--require-attestation",
        action="append",
        default=[],
        metavar="TYPE[:max-age=DURATION]",
        help="also require a verified attestation of this type (provenance, scan, "
        "model-card, bom or a URI), at most DURATION old by a proven time; repeatable",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def add_trust_flags(p: argparse.ArgumentParser) -> None:
    """The "whom to trust" flags of ``verify`` (also taken by ``lineage``)."""
    trust = p.add_argument_group("whom to trust")
    trust.add_argument(
        "--policy", metavar="FILE", help="trust policy file (TOML; default $OMSIGN_POLICY)"
    )
    trust.add_argument(
        "--history",
        metavar="FILE",
        help="with --policy: the first-use signer history for rules with pin = true "
        "(default $OMSIGN_HISTORY, else $XDG_STATE_HOME/omsign/history.json)",
    )
    trust.add_argument(
        "--key", action="append", metavar="PUBLIC.pem", help="trusted public key; repeatable"
    )
    trust.add_argument(
        "--cert-chain",
        action="append",
        default=[],
        metavar="PEM",
        help="trusted CA certificates; repeatable",
    )
    trust.add_argument(
        "--tsa-cert",
        action="append",
        default=[],
        metavar="PEM",
        help="trusted RFC 3161 timestamp authority root; repeatable",
    )
    trust.add_argument("--identity", metavar="ID", help="Sigstore signer identity (e-mail/URI)")
    trust.add_argument(
        "--identity-regexp",
        metavar="REGEX",
        help="Sigstore identity pattern (full match), instead of --identity",
    )
    trust.add_argument("--issuer", metavar="URL", help="Sigstore OIDC issuer")
    trust.add_argument(
        "--github-repository",
        metavar="OWNER/REPO",
        help="require this GitHub Actions repository claim",
    )
    trust.add_argument("--github-ref", metavar="REF", help="require this GitHub Actions ref")
    trust.add_argument(
        "--github-workflow-name", metavar="NAME", help="require this GitHub Actions workflow name"
    )
    trust.add_argument(
        "--offline",
        action="store_true",
        help="Sigstore: no network; use the cached or shipped trust root",
    )
    trust.add_argument("--staging", action="store_true", help="Sigstore: staging instance")
    trust.add_argument(
        "--trust-config",
        metavar="FILE",
        help="Sigstore ClientTrustConfig JSON (private instance); with --key or --cert-chain, "
        "its timestamp authorities are trusted",
    )


def _collect_warnings() -> list[str]:
    """Also records the warnings logged during verification, for the JSON report."""
    import logging

    found: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found.append(record.getMessage())

    logging.getLogger("omsign").addHandler(_Collect(logging.WARNING))
    return found


_TRUST_NOTE = (
    "note: distributed verification trusts every worker to report the digests of what it read"
)


def _model_after_files(args: argparse.Namespace) -> None:
    """Takes MODEL from the end of ``--files`` when it was written after them.

    ``--files`` takes one or more names, so ``--files a b MODEL`` gives it MODEL too.
    """
    from omsign.errors import UsageError

    if args.model is not None:
        return
    if not args.files or len(args.files) < 2:
        raise UsageError(
            "the following arguments are required: MODEL (verify [--files NAME...] MODEL)"
        )
    args.model = args.files.pop()


def run(args: argparse.Namespace) -> int:
    """Verifies; prints the result (or JSON)."""
    from omsign._api import make_policy
    from omsign.errors import UsageError

    _model_after_files(args)
    trust = {
        "key": args.key,
        "cert_chain": args.cert_chain,
        "identity": args.identity,
        "identity_regexp": args.identity_regexp,
        "issuer": args.issuer,
    }
    from omsign.cli._policy import policy_from_args

    given = any(trust.values())
    if args.policy and given:
        raise UsageError("give --policy or --key, --cert-chain, --identity; not both")
    policy_file = policy_from_args(args.policy, required=False) if not given else None
    if args.history and policy_file is None:
        raise UsageError("--history applies to a trust policy file (--policy FILE)")
    if policy_file is not None:
        _no_signer_settings(args, policy_file.path)
        return _run_policy_file(args, policy_file)
    policy = make_policy(
        key=args.key,
        cert_chain=args.cert_chain,
        identity=args.identity,
        identity_regexp=args.identity_regexp,
        issuer=args.issuer,
        github_repository=args.github_repository,
        github_ref=args.github_ref,
        github_workflow_name=args.github_workflow_name,
        tsa_certs=args.tsa_cert,
        offline=args.offline,
        staging=args.staging,
        trust_config=args.trust_config,
    )
    return _verify(args, policy)


# Settings of one signer's trust: under a policy file each signer carries its own.
_SIGNER_SETTINGS = (
    ("tsa_cert", "--tsa-cert", "tsa"),
    ("trust_config", "--trust-config", "trust_config"),
    ("offline", "--offline", "offline"),
    ("staging", "--staging", "staging"),
    ("github_repository", "--github-repository", "github_repository"),
    ("github_ref", "--github-ref", "github_ref"),
    ("github_workflow_name", "--github-workflow-name", "github_workflow_name"),
)


def _no_signer_settings(args: argparse.Namespace, path: Any) -> None:
    """Refuses trust flags a policy file would not apply: its signers say their own."""
    from omsign.errors import UsageError

    given = [(flag, key) for attr, flag, key in _SIGNER_SETTINGS if getattr(args, attr)]
    if given:
        flags = ", ".join(flag for flag, _ in given)
        keys = ", ".join(dict.fromkeys(key for _, key in given))
        raise UsageError(
            f"{flags} cannot be used with the trust policy {path}: its signers say their own "
            f"trust settings (set {keys} on the signers in the file)"
        )


def _verify(args: argparse.Namespace, policy: Any, extra: dict[str, Any] | None = None) -> int:
    """Verifies under ``policy``; ``extra`` goes into the JSON report (success or failure)."""
    import omsign
    from omsign._api import requirements
    from omsign.cli._flags import OPTION_FLAGS
    from omsign.errors import VerificationError
    from omsign.options import Runtime, VerifyScope

    needs = requirements(args.require_attestation)  # a bad one is a usage error, first
    warnings = _collect_warnings() if args.json else []
    try:
        from omsign.executors import make_executor, parse_spec

        if parse_spec(args.executor)[0] in ("dask", "ray") and not args.quiet:
            print(_TRUST_NOTE, file=sys.stderr)
        with make_executor(args.executor, args.workers) as executor:
            result = omsign.verify(
                args.model,
                policy=policy,
                signature=args.signature,
                history=args.history,
                require_attestations=needs,
                read_attestations=args.json,
                scope=VerifyScope(
                    ignore_unsigned_files=args.ignore_unsigned_files,
                    allow_missing=args.allow_missing,
                    files=args.files,
                    ignore_paths=tuple(args.ignore_paths),
                ),
                runtime=Runtime(
                    workers=args.workers,
                    progress=None if args.json else progress_bar(args, "verifying"),
                    executor=executor,
                ),
            )
    except VerificationError as exc:
        if args.json:
            from omsign.reports import failure_report

            failed = dict(extra or {})
            if "policy" in failed:
                from omsign.cli._policy import policy_verdict

                failed["policy"] = policy_verdict(failed["policy"], None)
            found = getattr(exc, "attestations", None)
            if found is not None:
                failed["attestations"] = [a.to_json() for a in found]
            emit_json({**failure_report(exc, warnings=warnings, names=OPTION_FLAGS), **failed})
        raise
    if args.json:
        extra = dict(extra or {})
        if "policy" in extra:
            from omsign.cli._policy import policy_verdict

            extra["policy"] = policy_verdict(extra["policy"], result)
        emit_json({**result.to_json(warnings), **extra})
        return 0
    if not args.quiet:
        n = len(result.verified)
        who = f"{result.signer}" + (f" (issuer {result.issuer})" if result.issuer else "")
        print(f"verified: {n} file{'s' * (n != 1)} signed by {safe(who)}")
        if result.pinning is not None:
            _print_pinning(result.pinning)
        if result.legacy:
            print(
                "note: the signature uses the deprecated v0.2 format; re-sign to upgrade",
                file=sys.stderr,
            )
        if needs:
            held = ", ".join(n.describe() for n in needs)
            print(f"attestations: {held}: verified")
        for label, names in (
            ("absent", result.absent),
            ("unchecked", result.unchecked),
            ("unsigned", result.unsigned),
        ):
            if names:
                print(f"{label}: {len(names):,} file(s): {listing(names)}")
    return 0


def _print_pinning(pinning: Any) -> None:
    """One line on stderr: what the first-use history said."""
    status = {
        "first-use": "first use; recorded",
        "pinned": "signed by the pinned",
        "accepted": "accepted",
    }[pinning["status"]]
    print(
        f"pinning: {status} signer(s) {safe(', '.join(pinning['pinned']))} "
        f"({safe(pinning['history'])})",
        file=sys.stderr,
    )
    for note in pinning["notes"]:
        print(f"pinning: {safe(note)}", file=sys.stderr)


def _run_policy_file(args: argparse.Namespace, policy: Any) -> int:
    """Verifies under the first rule of the policy file matching the model, in its mode."""
    from omsign.cli._flags import OPTION_FLAGS
    from omsign.cli._policy import note, policy_report
    from omsign.errors import VerificationError

    decision = policy.decide(args.model)
    where = decision.rule.label() if decision.rule else "the default"
    if decision.mode == "off":
        note(f"{args.model}: not verified: {where} of {policy.path} is off")
        if args.json:
            from omsign.reports import report

            emit_json(
                report(
                    "verification",
                    {
                        "verified": False,
                        "kind": "NotChecked",
                        "message": f"not verified: {where} of the trust policy is off",
                        "difference": None,
                        "warnings": [],
                        "policy": policy_report(policy, decision, enforced=False),
                    },
                )
            )
        return 0
    if decision.mode != "warn":
        extra = {"policy": policy_report(policy, decision, enforced=True)}
        return _verify(args, policy, extra)
    # warn: verify fully, report what fails, exit 0
    extra = {"policy": policy_report(policy, decision, enforced=False)}
    try:
        return _verify(args, policy, extra)
    except VerificationError as exc:
        note(
            f"{where} of {policy.path} is in warn mode; this would fail: {exc.render(OPTION_FLAGS)}"
        )
        return 0
