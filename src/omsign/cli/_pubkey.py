"""``omsign public-key``: export the public key of a private key or token key as PEM."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Registers ``public-key``."""
    p = sub.add_parser(
        "public-key",
        help="export a signing key's public key (PEM)",
        formatter_class=formatter,
        description="Print the PEM public key of a private key file or a PKCS#11 token key, "
        "for verifiers to use with 'omsign verify --key'.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--key", metavar="PRIVATE.pem", help="private key file")
    src.add_argument("--pkcs11-uri", metavar="URI", help="key in a PKCS#11 token")
    p.add_argument("--password-file", metavar="FILE", help="password for an encrypted key")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(handler=run)


def _write(path: Path, pem: bytes) -> None:
    """Writes the PEM atomically; never over a private key (a likely slip of -o)."""
    from omsign._atomic import write_atomic
    from omsign.errors import UsageError

    try:
        existing = path.read_bytes()[:8192]
    except OSError:  # absent (the usual case) or unreadable: the write below will tell
        existing = b""
    if b"PRIVATE KEY" in existing:
        raise UsageError(f"{path}: holds a private key; not overwriting it")
    try:
        write_atomic(path, pem)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write the public key ({exc.strerror})") from None


def run(args: argparse.Namespace) -> int:
    """Writes the PEM public key."""
    from omsign import export_public_key
    from omsign.cli._common import read_password_file

    password = read_password_file(args.password_file) if args.password_file else None
    pem = export_public_key(args.pkcs11_uri or args.key, password=password)
    if args.output:
        _write(Path(args.output), pem)
    else:
        sys.stdout.write(pem.decode())
    return 0
