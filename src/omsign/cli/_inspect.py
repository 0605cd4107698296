"""``omsign inspect``: show what a signature says, without verifying it."""

from __future__ import annotations

import argparse
from typing import Any

from omsign.cli._common import emit_json

__all__ = ["add_parser", "describe"]


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
        help="signature file (e.g. model.sig), or a model directory containing model.sig",
    )
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=run)


def _certificate(der: bytes) -> dict[str, Any]:
    from cryptography import x509

    from omsign.backends._certificate import describe_certificate

    cert = x509.load_der_x509_certificate(der)
    return {
        "subject": describe_certificate(cert),
        "issuer": cert.issuer.rfc4514_string(),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "serial": format(cert.serial_number, "x"),
    }


def _signer(bundle: Any) -> dict[str, Any]:
    if bundle.method == "key":
        out: dict[str, Any] = {"key_hint": bundle.key_hint}
        if bundle.key_raw is not None:
            from cryptography.hazmat.primitives import serialization

            from omsign.backends._ec import key_hint

            raw = bundle.key_raw
            start = raw.find(b"-----BEGIN")
            try:
                key = (
                    serialization.load_pem_public_key(raw[start:])
                    if start >= 0
                    else serialization.load_der_public_key(raw)
                )
                out["key_hint"] = key_hint(key)  # type: ignore[arg-type]
            except (ValueError, TypeError, AttributeError):
                out["key_raw"] = "unreadable"
            out["key_details"] = bundle.material.key_details
        return out
    if bundle.method == "certificate":
        chain = [_certificate(der) for der in bundle.certificates]
        return {"certificate": chain[0], "chain": chain[1:]}
    from omsign.backends.sigstore import describe_sigstore_material

    return describe_sigstore_material(bundle)


def describe(path: str) -> dict[str, Any]:
    """Everything a signature says, as a JSON-ready object (unverified)."""
    from pathlib import Path

    from omsign._timestamp import describe_timestamp
    from omsign.bundle import read_bundle
    from omsign.errors import MalformedSignatureError
    from omsign.statement import parse_statement

    sig = Path(path)
    if sig.is_dir():
        sig = sig / "model.sig"
    bundle = read_bundle(sig)
    info: dict[str, Any] = {
        "signature": str(sig),
        "verified": False,
        "method": bundle.method,
        "signer": _signer(bundle),
    }
    info["timestamps"] = [describe_timestamp(t) for t in bundle.timestamps]
    try:
        st = parse_statement(bundle.payload, str(sig))
    except MalformedSignatureError as exc:
        from omsign.cli._flags import OPTION_FLAGS

        info["statement_error"] = exc.render(OPTION_FLAGS)
        return info
    ser = st.manifest.serialization
    info.update(
        {
            "format": "v0.2 (deprecated Digests/v0.1)" if st.legacy else "OMS v1.0",
            "subject": st.subject_name,
            "root_digest": f"sha256:{st.root_digest.hex()}" if st.root_digest else None,
            "serialization": {
                "method": ser.method,
                "hash_type": ser.hash_type,
                "shard_size": ser.shard_size,
                "allow_symlinks": ser.allow_symlinks,
                "ignore_paths": list(ser.ignore_paths or []),
            },
            "resources": [{"name": i.name, "digest": i.digest.hex()} for i in st.manifest.items],
        }
    )
    return info


def _out(line: str = "") -> None:
    """Prints a line with control characters escaped: nothing shown here is verified."""
    from omsign.cli._common import safe

    print(safe(line))


def _print_text(info: dict[str, Any]) -> None:
    _out(f"signature:   {info['signature']}  (NOT verified: use 'omsign verify')")
    _out(f"method:      {info['method']}")
    signer = info["signer"]
    if info["method"] == "key":
        _out(f"public key:  sha256:{signer.get('key_hint')}")
    elif info["method"] == "certificate":
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
    for t in info["timestamps"]:
        _out(f"timestamp:   {t.get('time')} by {t.get('authority')}")
    if "statement_error" in info:
        _out(f"statement:   {info['statement_error']}")
        return
    ser = info["serialization"]
    shard = f", shard size {ser['shard_size']}" if ser["shard_size"] else ""
    _out(f"format:      {info['format']}")
    if info["root_digest"]:
        _out(f"model:       {info['subject']}  {info['root_digest']}")
    _out(
        f"hashing:     {ser['method']}, {ser['hash_type']}{shard}, "
        f"symlinks {'followed' if ser['allow_symlinks'] else 'refused'}"
    )
    if ser["ignore_paths"]:
        _out(f"ignored:     {', '.join(ser['ignore_paths'])}")
    _out(f"resources:   {len(info['resources'])}")
    for r in info["resources"]:
        _out(f"  {r['digest'][:16]}  {r['name']}")


def run(args: argparse.Namespace) -> int:
    """Prints the description."""
    info = describe(args.signature)
    if args.json:
        emit_json(info)
    else:
        _print_text(info)
    return 1 if "statement_error" in info else 0  # malformed, as verify would say
