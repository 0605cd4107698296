"""``omsign attest``: sign a statement about a model's exact content (:func:`omsign.attest`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from omsign.cli._common import (
    add_executor_flag,
    add_ignore_flags,
    add_signing_flags,
    count,
    emit_json,
    positive_int,
    progress_bar,
    signing_keywords,
)

__all__ = ["add_parser"]

_HELP = """\
Sign an attestation about a model: an in-toto statement whose one subject is the model's
OMS root digest (as 'omsign sign' computes it), appended as one line to claims.jsonl beside
the model's signature (MODEL/claims.jsonl, or FILE.claims.jsonl for a single file), or
written to --output. Signing flags are those of 'omsign sign'. One predicate source:

  --predicate-type URI --predicate FILE.json     any predicate (evaluations, licences)
  --scan fickling|modelscan|picklescan          run that scanner on the bytes hashed and
                                                sign its verdict (a SLSA verification
                                                summary that expires: --scan-valid-for,
                                                default 30d); each scanner is an extra:
                                                pip install 'omsign[scan-picklescan]'
"""


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Registers ``attest``."""
    p = sub.add_parser(
        "attest",
        help="sign an attestation about a model",
        description=_HELP,
        formatter_class=formatter,
    )
    p.add_argument("model", metavar="MODEL", help="file or directory the attestation is about")
    what = p.add_argument_group("what to attest (exactly one source)")
    what.add_argument(
        "--predicate-type",
        metavar="URI",
        help="the predicate type: a URI, or a built-in name (provenance, scan, model-card, bom)",
    )
    what.add_argument("--predicate", metavar="FILE.json", help="the predicate, a JSON object")
    what.add_argument(
        "--scan",
        metavar="SCANNER",
        help="scan the model with fickling, modelscan or picklescan and attest the verdict",
    )
    what.add_argument(
        "--scan-valid-for",
        metavar="DURATION",
        default="30d",
        help="how long the scan verdict stays valid (30d, 12h...; default 30d)",
    )
    p.add_argument(
        "--output", metavar="FILE", help="write the bundle to FILE instead of claims.jsonl"
    )
    p.add_argument(
        "--signature",
        metavar="PATH",
        help="the model's signature, when not at MODEL/model.sig or MODEL.sig "
        "(claims.jsonl goes beside it)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_signing_flags(p)
    hashing = p.add_argument_group(
        "hashing (default: the settings of the model's signature, else as 'omsign sign')"
    )
    hashing.add_argument("--hash", choices=("sha256", "blake2b", "blake3"), help="hash algorithm")
    hashing.add_argument("--shard-size", type=positive_int, metavar="BYTES", help="shard size")
    hashing.add_argument(
        "--workers", type=count, metavar="N", help="hashing threads (default: every CPU)"
    )
    add_executor_flag(hashing)
    add_ignore_flags(hashing)
    hashing.add_argument(
        "--reuse-digests",
        action="store_true",
        help="reuse the digest cache of 'omsign sign --reuse-digests' (unchanged files are "
        "not read again)",
    )
    p.set_defaults(handler=run)


def _predicate(args: argparse.Namespace) -> tuple[str, Any]:
    """The predicate type and predicate the flags ask for (exactly one source)."""
    from omsign._attest import read_predicate
    from omsign.errors import UsageError

    if args.scan is not None:
        if args.predicate is not None or args.predicate_type is not None:
            raise UsageError("give --scan or --predicate-type and --predicate, not both")
        from omsign.options import parse_duration
        from omsign.scanners import scanner_predicate

        valid_for = parse_duration(args.scan_valid_for, option="valid_for")
        build = scanner_predicate(args.scan, valid_for=valid_for)

        def kept(verified: Any) -> Any:  # the verdict is also told on stderr
            args.verdict = build(verified)
            return args.verdict

        return "scan", kept

    if args.predicate is None:
        raise UsageError("give the predicate: --predicate-type URI --predicate FILE.json")
    if args.predicate_type is None:
        raise UsageError("--predicate needs --predicate-type URI")
    return args.predicate_type, read_predicate(args.predicate)


def run(args: argparse.Namespace) -> int:
    """Attests; prints where the attestation went and the root digest it names."""
    import omsign
    from omsign.executors import make_executor
    from omsign.options import HashOptions, Runtime

    predicate_type, predicate = _predicate(args)
    signing = signing_keywords(args)
    hashing = None
    if args.hash or args.shard_size or args.ignore_paths or args.allow_symlinks:
        hashing = HashOptions(
            args.hash or "sha256", args.shard_size, tuple(args.ignore_paths), args.allow_symlinks
        )
    with make_executor(args.executor, args.workers) as executor:
        result = omsign.attest(
            args.model,
            predicate_type=predicate_type,
            predicate=predicate,
            output=args.output,
            signature=args.signature,
            hashing=hashing,
            runtime=Runtime(
                workers=args.workers, progress=progress_bar(args, "hashing"), executor=executor
            ),
            reuse_digests=args.reuse_digests,
            **signing,
        )
    if args.json:
        emit_json(result.to_json())
        return 0
    if not args.quiet:
        print(f"attested {result.predicate_type}: {result.location}", file=sys.stderr)
        if getattr(args, "verdict", None) is not None:
            from omsign.cli._common import safe
            from omsign.scanners import summary

            print(safe(summary(args.verdict)), file=sys.stderr)
    print(f"sha256:{result.root_digest}")
    return 0
