"""``omsign digest``: print a model's root digest without signing."""

from __future__ import annotations

import argparse
from typing import Any

from omsign.cli._common import add_hashing_flags, add_ignore_flags

__all__ = ["add_parser"]


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Registers ``digest``."""
    p = sub.add_parser(
        "digest",
        help="print the model's root digest",
        formatter_class=formatter,
        description="Hash a model as signing would and print sha256:<root digest>, the "
        "value a signature records for it.",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="file, directory, hf://ORG/NAME[@REVISION] (local cache), s3://, gs://, az:// "
        "BUCKET/PREFIX, or https://HOST/PATH/ (a directory listing)",
    )
    p.add_argument(
        "--signature",
        metavar="PATH",
        help="signature file to leave out, as signing does (default MODEL/model.sig)",
    )
    add_hashing_flags(p)
    add_ignore_flags(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Prints ``sha256:<hex>``."""
    import omsign
    from omsign.cli._common import hash_options
    from omsign.executors import make_executor
    from omsign.options import Runtime

    with make_executor(args.executor, args.workers) as executor:
        root = omsign.digest(
            args.model,
            signature=args.signature,
            hashing=hash_options(args),
            runtime=Runtime(workers=args.workers, executor=executor),
            compat=args.compat,
        )
    print(f"sha256:{root}")
    return 0
