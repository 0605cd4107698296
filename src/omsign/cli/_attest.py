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

  --provenance --step STEP [--base MODEL]... [--dataset PATH]... [--code URI@COMMIT]
      [--parameters FILE.json|FILE.toml] [--builder-id URI]
                                                 SLSA Provenance v1 for a pipeline step
  --model-card README.md                         a Hugging Face model card's metadata
  --bom                                          a CycloneDX 1.6 ML-BOM of the model
  --predicate-type URI --predicate FILE.json     any other predicate (evaluations...)
  --scan fickling|modelscan|picklescan           run that scanner on the bytes hashed and
                                                 sign its verdict (a SLSA verification
                                                 summary that expires: --scan-valid-for,
                                                 default 30d); each scanner is an extra:
                                                 pip install 'omsign[scan-picklescan]'

Provenance names each base model and dataset by its OMS root digest (hashed as its
signature was), the code by its commit (default: the git checkout of the current
directory), and the builder from GitHub Actions or GitLab CI (else --builder-id).
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
    what.add_argument(
        "--provenance", action="store_true", help="SLSA Provenance v1 of the step that made it"
    )
    what.add_argument(
        "--model-card", metavar="README.md", help="the metadata of this Hugging Face model card"
    )
    what.add_argument(
        "--bom", action="store_true", help="a CycloneDX 1.6 ML-BOM of the model's files"
    )
    prov = p.add_argument_group("provenance (with --provenance)")
    prov.add_argument(
        "--step", metavar="STEP", help="train, fine-tune, quantize, convert, merge, ..."
    )
    prov.add_argument(
        "--base",
        action="append",
        default=[],
        metavar="MODEL",
        help="a model the step started from (folder, file, hf://...); repeatable",
    )
    prov.add_argument(
        "--dataset",
        action="append",
        default=[],
        metavar="PATH",
        help="a dataset the step used (hashed like a model); repeatable",
    )
    prov.add_argument(
        "--code",
        metavar="URI@COMMIT",
        help="the code that ran (default: the git checkout of the current directory)",
    )
    prov.add_argument(
        "--parameters", metavar="FILE", help="the step's parameters (JSON, or TOML by .toml)"
    )
    prov.add_argument(
        "--builder-id",
        metavar="URI",
        help="who ran the step (default: the GitHub Actions or GitLab CI run)",
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


_PROVENANCE_ONLY = ("step", "base", "dataset", "code", "parameters", "builder_id")


def _sources(args: argparse.Namespace) -> list[str]:
    given = [
        ("--predicate", args.predicate is not None),
        ("--provenance", args.provenance),
        ("--model-card", args.model_card is not None),
        ("--bom", args.bom),
        ("--scan", args.scan is not None),
    ]
    return [flag for flag, on in given if on]


def _predicate(args: argparse.Namespace, runtime: Any) -> tuple[str, Any]:
    """The predicate type and predicate the flags ask for (exactly one source)."""
    import omsign
    from omsign._attest import read_predicate
    from omsign.errors import UsageError

    sources = _sources(args)
    if len(sources) != 1:
        said = f"{', '.join(sources)} were given" if sources else "none was given"
        raise UsageError(
            "give exactly one predicate source (--provenance, --model-card, --bom, --scan, or "
            f"--predicate-type with --predicate); {said}"
        )
    stray = [
        "--" + name.replace("_", "-")
        for name in _PROVENANCE_ONLY
        if getattr(args, name) not in (None, [])
    ]
    if stray and not args.provenance:
        raise UsageError(f"{', '.join(stray)}: only with --provenance")
    if args.predicate_type is not None and args.predicate is None:
        raise UsageError("--predicate-type goes with --predicate FILE.json")
    if args.predicate is not None:
        if args.predicate_type is None:
            raise UsageError("--predicate needs --predicate-type URI")
        return args.predicate_type, read_predicate(args.predicate)
    if args.scan is not None:
        from omsign.options import parse_duration
        from omsign.scanners import scanner_predicate

        valid_for = parse_duration(args.scan_valid_for, option="valid_for")
        build = scanner_predicate(args.scan, valid_for=valid_for)

        def kept(verified: Any) -> Any:  # the verdict is also told on stderr
            args.verdict = build(verified)
            return args.verdict

        return "scan", kept
    if args.model_card is not None:
        return "model-card", omsign.model_card_predicate(args.model_card)
    if args.bom:
        return "bom", omsign.bom_predicate
    if not args.step:
        raise UsageError("--provenance needs --step (train, fine-tune, quantize, ...)")
    return "provenance", omsign.provenance_predicate(
        step=args.step,
        base=args.base,
        dataset=args.dataset,
        code=args.code,
        parameters=args.parameters,
        builder_id=args.builder_id,
        runtime=runtime,
    )


def run(args: argparse.Namespace) -> int:
    """Attests; prints where the attestation went and the root digest it names."""
    import omsign
    from omsign.executors import make_executor
    from omsign.options import HashOptions, Runtime

    signing = signing_keywords(args)
    hashing = None
    if args.hash or args.shard_size or args.ignore_paths or args.allow_symlinks:
        hashing = HashOptions(
            args.hash or "sha256", args.shard_size, tuple(args.ignore_paths), args.allow_symlinks
        )
    with make_executor(args.executor, args.workers) as executor:
        runtime = Runtime(
            workers=args.workers, progress=progress_bar(args, "hashing"), executor=executor
        )
        predicate_type, predicate = _predicate(args, runtime)
        result = omsign.attest(
            args.model,
            predicate_type=predicate_type,
            predicate=predicate,
            output=args.output,
            signature=args.signature,
            hashing=hashing,
            runtime=runtime,
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
