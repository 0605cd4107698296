"""``omsign sign``: choose the method from the flags and sign a model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from omsign.cli._common import (
    add_hashing_flags,
    add_ignore_flags,
    add_signing_flags,
    progress_bar,
    signing_keywords,
)

__all__ = ["add_parser"]

_HELP = """\
Sign a model (a file or a directory). The method follows from the flags:

  --key PRIVATE.pem                                key method
  --key PRIVATE.pem --cert LEAF.pem [--cert-chain INTERMEDIATES.pem]
                                                   certificate method
  --pkcs11-uri 'pkcs11:token=T;object=K' [--cert LEAF.pem ...]
                                                   key in a hardware token (HSM)
  (none of these)                                  Sigstore keyless: log in with your
                                                   browser, or --identity-token, or CI
                                                   credentials (GitHub Actions, ...)

An encrypted key's password is read from --password-file, $OMSIGN_PASSWORD, or a
prompt; a token PIN from the URI's pin-source, $OMSIGN_PKCS11_PIN, or a prompt.
"""


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Registers ``sign``."""
    p = sub.add_parser("sign", help="sign a model", description=_HELP, formatter_class=formatter)
    p.add_argument(
        "model",
        metavar="MODEL",
        help="file or directory to sign, s3://, gs://, az:// BUCKET/PREFIX (object storage), "
        "or https://HOST/PATH/ (a directory listing; needs a local --signature)",
    )
    p.add_argument(
        "--signature",
        metavar="PATH",
        help="where to write the signature (default MODEL/model.sig or MODEL.sig)",
    )
    p.add_argument(
        "--add",
        action="store_true",
        help="keep the existing signature and add this one beside it (MODEL/model.sig.d/), "
        "for a trust policy that needs several signers",
    )
    add_signing_flags(p)
    hashing = p.add_argument_group("hashing")
    add_hashing_flags(hashing)
    add_ignore_flags(hashing)
    cache = hashing.add_mutually_exclusive_group()
    cache.add_argument(
        "--reuse-digests",
        action="store_true",
        help="re-hash only files whose size, times or inode changed since the "
        "last --reuse-digests run (digest cache in ~/.cache/omsign or "
        "$OMSIGN_CACHE_DIR; never in the model or signature)",
    )
    cache.add_argument(
        "--no-cache",
        action="store_true",
        help="hash every file; neither read nor write the digest cache (the default)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Signs; prints the signature path and root digest."""
    import omsign
    from omsign.cli._common import hash_options
    from omsign.options import Runtime

    signing = signing_keywords(args)
    from omsign.executors import make_executor

    with make_executor(args.executor, args.workers) as executor:
        result = omsign.sign(
            args.model,
            **signing,
            signature=args.signature,
            hashing=hash_options(args),
            runtime=Runtime(
                workers=args.workers,
                progress=progress_bar(args, "hashing"),
                executor=executor,
            ),
            reuse_digests=args.reuse_digests and not args.no_cache,
            add=args.add,
            compat=args.compat,
        )
    if not args.quiet:
        files = len(result.manifest.by_file())
        hashed = f" ({len(result.hashed)} re-hashed)" if args.reuse_digests else ""
        print(
            f"signed {files} file{'s' * (files != 1)}{hashed}: {result.signature}", file=sys.stderr
        )
    print(f"sha256:{result.root_digest}")
    return 0
