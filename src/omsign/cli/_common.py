"""Helpers shared by the subcommands: common flags, progress bar, passwords, output."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omsign.options import HashOptions

__all__ = [
    "safe",
    "add_hashing_flags",
    "add_executor_flag",
    "add_ignore_flags",
    "add_signing_flags",
    "emit_json",
    "hash_options",
    "listing",
    "more",
    "print_difference",
    "progress_bar",
    "read_password_file",
    "signing_keywords",
]


def safe(text: str) -> str:
    """Escapes what a terminal would act on (newlines, ESC, bidi overrides, ...).

    Names come from the model folder or from a signature nobody has verified yet; printed
    raw, they could forge or hide lines. Undecodable bytes of a file name show as ``\\xNN``.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch.isprintable():
            out.append(ch)
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        else:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def count(text: str) -> int:
    """An argparse type for a positive count such as a number of threads (no suffixes)."""
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def positive_int(text: str) -> int:
    """An argparse type for sizes: a positive integer, optionally with a K/M/G suffix (x1000)."""
    scale = {"k": 10**3, "m": 10**6, "g": 10**9}.get(text[-1:].lower(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit() or int(digits) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of bytes")
    return int(digits) * scale


def add_hashing_flags(p: argparse.ArgumentParser) -> None:
    """``--hash``, ``--shard-size``, ``--workers``, ``--compat``."""
    p.add_argument(
        "--hash",
        choices=("sha256", "blake2b", "blake3"),
        default="sha256",
        help="file hash algorithm (default: sha256)",
    )
    p.add_argument(
        "--shard-size",
        type=positive_int,
        metavar="BYTES",
        help="hash files in shards of BYTES instead of whole files (K, M, G suffixes are "
        "powers of 1000: 1G = 10^9 bytes, the OMS default)",
    )
    p.add_argument(
        "--workers", type=count, metavar="N", help="hashing threads (default: every CPU)"
    )
    add_executor_flag(p)
    p.add_argument(
        "--compat",
        choices=("model-signing",),
        help="model_signing 1.1.1's form instead of OMS v1.0: its algorithm names, a single "
        "file named '.', its resource order (a signature it verifies, its root digest)",
    )


def add_executor_flag(p: argparse.ArgumentParser | Any) -> None:
    """``--executor threads|processes|dask[=ADDRESS]|ray[=ADDRESS]``."""
    p.add_argument(
        "--executor",
        default="threads",
        metavar="KIND",
        help="where hashing runs: threads (default), processes, dask[=ADDRESS] or "
        "ray[=ADDRESS]; without an address a local cluster runs for this command "
        "(--workers workers, default 2); Dask and Ray need omsign[dask] / omsign[ray]",
    )


def hash_options(args: argparse.Namespace) -> HashOptions:
    """The hashing flags as a :class:`~omsign.options.HashOptions` value."""
    from omsign.options import HashOptions

    return HashOptions(args.hash, args.shard_size, tuple(args.ignore_paths), args.allow_symlinks)


def add_ignore_flags(p: argparse.ArgumentParser, symlinks: bool = True) -> None:
    """``--ignore-paths`` (repeatable) and ``--allow-symlinks``."""
    p.add_argument(
        "--ignore-paths",
        action="append",
        default=[],
        metavar="PATH",
        help="exclude this file or directory (absolute or relative to the "
        "current directory); repeat for more",
    )
    if symlinks:
        p.add_argument(
            "--allow-symlinks",
            action="store_true",
            help="follow symbolic links instead of rejecting them",
        )


def read_password_file(path: str) -> bytes:
    """The first line of a password file, without its line ending."""
    from omsign.errors import KeyLoadError

    try:
        with open(path, "rb") as f:
            return f.readline().rstrip(b"\r\n")
    except OSError as exc:
        raise KeyLoadError(f"{path}: cannot read password file ({exc.strerror})") from None


def progress_bar(args: argparse.Namespace, label: str) -> Callable[[int, int], None] | None:
    """A progress callback drawing on stderr when it is a terminal (else None)."""
    if args.quiet or not sys.stderr.isatty():
        return None
    state = {"last": 0.0, "start": time.monotonic()}

    def draw(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - state["last"] < 0.1:
            return
        state["last"] = now
        frac = done / total if total else 1.0
        rate = done / max(now - state["start"], 1e-6) / 1e6
        bar = "#" * int(frac * 30)
        end = "\n" if done >= total else ""
        sys.stderr.write(f"\r{label} [{bar:<30}] {frac:6.1%} {rate:8.1f} MB/s{end}")
        sys.stderr.flush()

    return draw


def print_difference(diff: Any, limit: int | None = 20) -> None:
    """Lists the differences between a model and its signature on stderr, each once.

    Past ``limit`` lines (None: no limit) the list ends with how many more there are.
    """
    lines = [
        f"  {label}: {safe(name)}"
        for label, names in (
            ("changed", diff.changed),
            ("missing", diff.missing),
            ("unsigned", diff.extra),
        )
        for name in names
    ]
    shown = lines if limit is None or len(lines) <= limit else lines[:limit]
    for line in shown:
        print(line, file=sys.stderr)
    if len(shown) < len(lines):
        print(f"  {more(len(lines) - len(shown))}", file=sys.stderr)


def more(count: int) -> str:
    """How a cut list ends: ``... and 1,234 more``."""
    return f"... and {count:,} more"


def listing(names: Sequence[str], limit: int = 10) -> str:
    """Names joined by commas, the first ``limit`` of them, then how many more."""
    shown = ", ".join(safe(n) for n in names[:limit])
    return shown + (f", {more(len(names) - limit)}" if len(names) > limit else "")


def emit_json(obj: Any) -> None:
    """Prints a JSON document on stdout."""
    json.dump(obj, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def add_signing_flags(p: argparse.ArgumentParser) -> None:
    """The signing methods' flags (``sign``, ``attest``): key, certificate, token, Sigstore."""
    keys = p.add_argument_group("key and certificate methods")
    keys.add_argument("--key", metavar="PRIVATE.pem", help="private key (PEM, P-256/384/521)")
    keys.add_argument(
        "--pkcs11-uri", metavar="URI", help="private key in a PKCS#11 token (RFC 7512 URI)"
    )
    keys.add_argument("--cert", metavar="LEAF.pem", help="signing certificate for the key")
    keys.add_argument(
        "--cert-chain",
        action="append",
        default=[],
        metavar="PEM",
        help="intermediate certificates to embed; repeatable",
    )
    keys.add_argument(
        "--password-file",
        metavar="FILE",
        help="file whose first line is the private key's password",
    )
    keys.add_argument(
        "--tsa-url", metavar="URL", help="timestamp the signature with this RFC 3161 authority"
    )
    sig = p.add_argument_group("Sigstore keyless method")
    sig.add_argument(
        "--identity-token",
        metavar="TOKEN",
        help="OIDC identity token (default: CI credentials or browser login)",
    )
    sig.add_argument(
        "--oauth-out-of-band",
        action="store_true",
        help="log in by pasting a code instead of a local browser redirect",
    )
    sig.add_argument("--staging", action="store_true", help="use Sigstore's staging instance")
    sig.add_argument(
        "--trust-config",
        metavar="FILE",
        help="Sigstore ClientTrustConfig JSON for a private instance",
    )


def signing_keywords(args: argparse.Namespace) -> dict[str, Any]:
    """The signing flags as ``omsign.sign`` keywords, after checking they go together."""
    from omsign.errors import UsageError

    if args.key and args.pkcs11_uri:
        raise UsageError("give either --key or --pkcs11-uri, not both")
    if args.pkcs11_uri and not args.pkcs11_uri.startswith("pkcs11:"):
        raise UsageError(f"--pkcs11-uri {args.pkcs11_uri!r} is not a 'pkcs11:' URI (RFC 7512)")
    keyless_only = [
        flag
        for flag, on in (
            ("--identity-token", args.identity_token),
            ("--oauth-out-of-band", args.oauth_out_of_band),
            ("--staging", args.staging),
            ("--trust-config", args.trust_config),
        )
        if on
    ]
    if (args.key or args.pkcs11_uri) and keyless_only:
        raise UsageError(
            f"{', '.join(keyless_only)} is for Sigstore keyless signing, "
            "not with --key or --pkcs11-uri"
        )
    return {
        "key": args.key or args.pkcs11_uri,
        "certificate": args.cert,
        "chain": args.cert_chain,
        "password": read_password_file(args.password_file) if args.password_file else None,
        "tsa_url": args.tsa_url,
        "identity_token": args.identity_token,
        "staging": args.staging,
        "trust_config": args.trust_config,
        "oauth_out_of_band": args.oauth_out_of_band,
    }
