"""``omsign inspect``: print what a signature says (:func:`omsign.describe_signature`)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from omsign.cli._common import emit_json

if TYPE_CHECKING:
    from omsign.inspect import SignatureDescription

__all__ = ["add_parser"]


def add_parser(sub: Any, formatter: type[argparse.HelpFormatter]) -> None:
    """Registers ``inspect``."""
    p = sub.add_parser(
        "inspect",
        help="show who signed what, without verifying",
        formatter_class=formatter,
        description="Print a signature's signer, method, timestamps, hashing settings and "
        "files. Nothing is verified: use 'omsign verify' to trust a model.",
    )
    p.add_argument(
        "signature",
        metavar="SIGNATURE",
        help="signature file (e.g. model.sig), or a model: a directory holding model.sig, "
        "a file whose signature is FILE.sig, or oci://REGISTRY/REPO[:TAG|@DIGEST] (its "
        "newest signature referrer)",
    )
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=run)


def _out(line: str = "") -> None:
    """Prints a line with control characters escaped: nothing shown here is verified."""
    from omsign.cli._common import safe

    print(safe(line))


def _print_signer(described: SignatureDescription) -> None:
    signer = described.signer
    if described.method == "key":
        _out(f"public key:  sha256:{signer.get('key_hint')}")
    elif described.method == "certificate":
        cert = signer["certificate"]
        _out(f"certificate: {cert['subject']}")
        _out(f"  issuer:    {cert['issuer']}")
        _out(f"  valid:     {cert['not_before']} to {cert['not_after']}")
        for c in signer["chain"]:
            _out(f"  chain:     {c['subject']}")
    else:
        _out(f"identity:    {signer.get('identity')}")
        _out(f"issuer:      {signer.get('issuer')}")
        for claim, value in (signer.get("github") or {}).items():
            _out(f"  {claim + ':':<11}{value}")
        _out(
            f"certificate: valid {signer.get('certificate_not_before')} to "
            f"{signer.get('certificate_not_after')}"
        )
        _out(
            f"log entry:   index {signer.get('log_index')}, integrated "
            f"{signer.get('integrated_time')}"
        )


def _print_attestations(described: SignatureDescription) -> None:
    if not described.attestations:
        return
    _out(f"attestations: {len(described.attestations)}  (NOT verified: claimed by each line)")
    for found in described.attestations:
        if "error" in found:
            _out(f"  {found['location']}: unreadable: {found['error']}")
            continue
        match = (
            "matches this signature"
            if found["matches_signature"]
            else "does NOT match this signature"
        )
        subject = found["subject_digest"] or f"{found['subjects']} subjects"
        _out(f"  {found['location']}: {found['type'] or found['predicate_type']}")
        _out(f"    signer:  {found['signer']}")
        _out(f"    subject: {subject} ({match})")


def _print_text(described: SignatureDescription) -> None:
    _out(f"signature:   {described.signature}  (NOT verified: use 'omsign verify')")
    _out(f"method:      {described.method}")
    _print_signer(described)
    for t in described.timestamps:
        _out(f"timestamp:   {t.get('time')} by {t.get('authority')}")
    ser = described.serialization
    if described.statement_error is not None or ser is None:
        _out(f"statement:   {described.statement_error}")
        _print_attestations(described)
        return
    shard = f", shard size {ser.shard_size}" if ser.shard_size else ""
    _out(f"format:      {described.format}")
    if described.root_digest:
        _out(f"model:       {described.subject}  {described.root_digest}")
    _out(
        f"hashing:     {ser.method}, {ser.hash_type}{shard}, "
        f"symlinks {'followed' if ser.allow_symlinks else 'refused'}"
    )
    if ser.ignore_paths:
        _out(f"ignored:     {', '.join(ser.ignore_paths)}")
    _out(f"resources:   {len(described.resources)}")
    for item in described.resources:
        _out(f"  {item.digest.hex()[:16]}  {item.name}")
    _print_attestations(described)


def _print_companions(described: SignatureDescription) -> None:
    if not described.companions:
        return
    _out(f"more signatures: {len(described.companions)} (NOT verified)")
    for c in described.companions:
        if isinstance(c, tuple):
            _out(f"  {c[0]}: {c[1]}")
            continue
        signer = c.signer
        who = (
            f"key sha256:{signer.get('key_hint')}"
            if c.method == "key"
            else signer["certificate"]["subject"]
            if c.method == "certificate"
            else f"{signer.get('identity')} (issuer {signer.get('issuer')})"
        )
        same = (
            "same content"
            if c.root_digest is not None and c.root_digest == described.root_digest
            else f"other content {c.root_digest}"
            if c.root_digest
            else f"statement: {c.statement_error}"
        )
        _out(f"  {c.signature}")
        _out(f"    {c.method}: {who}; {same}")


def run(args: argparse.Namespace) -> int:
    """Prints the description."""
    from omsign.inspect import describe_signature

    described = describe_signature(args.signature)
    if args.json:
        emit_json(described.to_json())
    else:
        _print_text(described)
        _print_companions(described)
    return 1 if described.statement_error is not None else 0  # malformed, as verify would say
