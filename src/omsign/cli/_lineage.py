"""``omsign lineage``: follow a model's provenance back to its roots, every link verified."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from omsign.cli._common import count, emit_json, safe

__all__ = ["add_parser"]

_HELP = """\
Follow a model's provenance back to its roots. The model is verified, then its
SLSA provenance attestations (claims.jsonl) under the same trust; each base model
and dataset they name by root digest is looked for among the search places,
verified the same way, and followed in turn. A dataset without a signature is
proven by its content digest. Prints the tree, each node verified, unverified (and
why) or not found.

  omsign lineage quantized/ --search models/ --search hf:// --key a.pub --key b.pub
  omsign lineage quantized/ --search models/ --policy policy.toml --html lineage.html

Search places: folders (scanned --search-depth levels down, default 2), files,
hf:// (the whole local Hugging Face cache) or hf://ORG/NAME[@REVISION]; default:
the folder that holds MODEL. Give every signer of the chain (--key is repeatable),
or a --policy whose rules match each artifact. Every model must carry a verified
provenance unless --allow-roots: a removed claims.jsonl line is otherwise invisible.

Exit codes: 0 the whole chain verifies, 1 a link is broken (the first one is named),
2 usage or environment error.
"""


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Registers ``lineage``."""
    from omsign.cli._verify import add_trust_flags

    p = sub.add_parser(
        "lineage",
        help="verify what a model was made from, back to its roots",
        description=_HELP,
        formatter_class=formatter,
    )
    p.add_argument("model", nargs="?", metavar="MODEL", help="file, directory or hf://ORG/NAME")
    p.add_argument(
        "--signature", metavar="PATH", help="the model's signature (default MODEL/model.sig)"
    )
    where = p.add_argument_group("where to look")
    where.add_argument(
        "--search",
        action="extend",
        nargs="+",
        default=[],
        metavar="PLACE",
        help="folder, file, hf:// or hf://ORG/NAME to look for copies in; repeatable",
    )
    where.add_argument(
        "--search-depth", type=count, default=2, metavar="N", help="folder levels scanned"
    )
    where.add_argument(
        "--max-depth", type=count, default=16, metavar="N", help="links followed at most"
    )
    where.add_argument(
        "--allow-roots",
        action="store_true",
        help="accept a verified model without provenance as a root",
    )
    where.add_argument(
        "--require-attestation",
        action="append",
        default=[],
        metavar="TYPE[:max-age=DURATION]",
        help="every model must also have a verified attestation of this type (as verify "
        "requires it); repeatable",
    )
    where.add_argument(
        "--workers", type=count, metavar="N", help="hashing threads (default: every CPU)"
    )
    add_trust_flags(p)
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print the lineage as JSON")
    out.add_argument(
        "--html", metavar="FILE", help="also write a self-contained page drawing the graph"
    )
    p.set_defaults(handler=run)


def _trust(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """A policy file (flag or environment), else the trust keywords the flags give."""
    from omsign.cli._policy import policy_from_args
    from omsign.cli._verify import _no_signer_settings
    from omsign.errors import UsageError

    given = any((args.key, args.cert_chain, args.identity, args.identity_regexp, args.issuer))
    if args.policy and given:
        raise UsageError("give --policy or --key, --cert-chain, --identity; not both")
    policy = policy_from_args(args.policy, required=False) if not given else None
    if policy is not None:
        _no_signer_settings(args, policy.path)
        return policy, {}
    return None, {
        "key": args.key,
        "cert_chain": args.cert_chain,
        "identity": args.identity,
        "identity_regexp": args.identity_regexp,
        "issuer": args.issuer,
        "github_repository": args.github_repository,
        "github_ref": args.github_ref,
        "github_workflow_name": args.github_workflow_name,
        "tsa_certs": args.tsa_cert,
        "offline": args.offline,
        "staging": args.staging,
        "trust_config": args.trust_config,
    }


def _model_after_search(args: argparse.Namespace) -> None:
    """Takes MODEL from the end of ``--search`` when it was written after the places."""
    from omsign.errors import UsageError

    if args.model is not None:
        return
    if len(args.search) < 2:
        raise UsageError("the following arguments are required: MODEL")
    args.model = args.search.pop()


def run(args: argparse.Namespace) -> int:
    """Walks the lineage; prints the tree (or JSON), writes the page, exits 1 if broken."""
    from pathlib import Path

    from omsign._lineage import lineage, write_lineage_html

    _model_after_search(args)
    policy, trust = _trust(args)
    search = args.search or [str(Path(args.model).absolute().parent)]
    result = lineage(
        args.model,
        search=search,
        policy=policy,
        signature=args.signature,
        allow_roots=args.allow_roots,
        max_depth=args.max_depth,
        search_depth=args.search_depth,
        history=args.history,
        require_attestations=args.require_attestation,
        workers=args.workers,
        **trust,
    )
    if args.html:
        write_lineage_html(result, args.html)
    if args.json:
        emit_json(result.to_json())
    elif not args.quiet:
        for line in result.tree().splitlines():
            print(safe(line))
    if args.html and not args.quiet:
        print(f"lineage graph written to {safe(args.html)}", file=sys.stderr)
    result.check()  # raises LineageError (exit 1) naming the first broken link
    return 0
