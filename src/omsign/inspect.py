"""Describing a signature without verifying it: who signed, how, when, and what.

:func:`describe_signature` reads a bundle and reports everything it claims: the
method and signer, timestamps, the statement's format, subject, hashing settings
and resources, and the attestations stored beside it (``claims.jsonl``) as each
claims itself. Nothing is verified; ``omsign inspect`` prints this description.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omsign.bundle import Bundle, read_bundle
from omsign.errors import Error, MalformedSignatureError, SignatureError
from omsign.manifest import ManifestItem, Serialization
from omsign.reports import report

__all__ = ["SignatureDescription", "describe_signature"]


@dataclass(frozen=True)
class SignatureDescription:
    """What a signature says about itself, unverified.

    Attributes:
        signature: the signature file, or None when a parsed bundle was described.
        method: ``key``, ``certificate`` or ``sigstore``.
        signer: who the bundle says signed, JSON-ready: ``key_hint`` (key method);
            ``certificate`` and ``chain`` (certificate method); ``identity``,
            ``issuer``, ``github``, certificate validity and log entry (sigstore).
        timestamps: each RFC 3161 timestamp's ``time``, ``authority``, ``serial``,
            ``hash_algorithm`` and ``policy``.
        format: how the statement's predicate is named (``OMS v1.0``, say), or None
            when the statement cannot be read.
        subject: the statement's subject name.
        root_digest: the subject's ``sha256:<hex>`` digest (None for the v0.2 format).
        serialization: the hashing settings the signature records.
        resources: the signed files or shards, as listed.
        statement_error: why the statement cannot be read, or None.
        companions: the further signatures of the same model (the companion folder
            ``model.sig.d/`` beside a signature file), each described the same way, or
            ``(path, error)`` when one cannot be read.
        attestations: each attestation stored beside the signature (claims file), as it
            claims itself, NOT verified: ``location``, ``type`` (a built-in short name),
            ``predicate_type``, ``signer`` (as the bundle claims it), ``subject`` and
            ``subject_digest``, ``matches_signature`` (its subject digest equals the
            signature's root digest), or ``error`` for a line that cannot be read.
    """

    signature: str | None
    method: str
    signer: dict[str, Any]
    timestamps: tuple[dict[str, Any], ...] = ()
    format: str | None = None
    subject: str | None = None
    root_digest: str | None = None
    serialization: Serialization | None = None
    resources: tuple[ManifestItem, ...] = ()
    statement_error: str | None = None
    companions: tuple[SignatureDescription | tuple[str, str], ...] = ()
    attestations: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The description as an inspection report (``omsign inspect --json``).

        Returns:
            A report of the versioned format in :mod:`omsign.reports`; the statement's
            own format is ``statement_format``.
        """
        info: dict[str, Any] = {
            "signature": self.signature,
            "verified": False,
            "method": self.method,
            "signer": self.signer,
            "timestamps": list(self.timestamps),
        }
        if self.companions:
            info["companions"] = [_companion_json(c) for c in self.companions]
        if self.attestations:
            info["attestations"] = list(self.attestations)
        if self.statement_error is not None or self.serialization is None:
            info["statement_error"] = self.statement_error
            return report("inspection", info)
        ser = self.serialization
        info.update(
            {
                "statement_format": self.format,
                "subject": self.subject,
                "root_digest": self.root_digest,
                "serialization": {
                    "method": ser.method,
                    "hash_type": ser.hash_type,
                    "shard_size": ser.shard_size,
                    "allow_symlinks": ser.allow_symlinks,
                    "ignore_paths": list(ser.ignore_paths or []),
                },
                "resources": [{"name": i.name, "digest": i.digest.hex()} for i in self.resources],
            }
        )
        return report("inspection", info)


def _companion_json(companion: SignatureDescription | tuple[str, str]) -> dict[str, Any]:
    if isinstance(companion, tuple):
        return {"signature": companion[0], "error": companion[1]}
    body = companion.to_json()
    for key in ("format", "version", "report"):
        body.pop(key, None)
    return body


_MAX_COMPANIONS = 64  # as many as verification reads


def _companions(signature: Path) -> tuple[SignatureDescription | tuple[str, str], ...]:
    """Describes the bundles of the companion folder beside a signature file."""
    from omsign.errors import Error

    folder = signature.with_name(signature.name + ".d")
    if not folder.is_dir() or folder.is_symlink():
        return ()
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".sig"))[:_MAX_COMPANIONS]
    except OSError as exc:
        return ((str(folder), f"cannot list signatures ({exc.strerror})"),)
    found: list[SignatureDescription | tuple[str, str]] = []
    for name in names:
        try:
            found.append(describe_signature(folder / name))
        except Error as exc:
            found.append((str(folder / name), str(exc)))
    return tuple(found)


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


def _key_signer(bundle: Bundle) -> dict[str, Any]:
    out: dict[str, Any] = {"key_hint": bundle.key_hint}
    raw = bundle.key_raw
    if raw is None:
        return out
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    from omsign.backends._ec import key_hint

    start = raw.find(b"-----BEGIN")
    try:
        key = (
            serialization.load_pem_public_key(raw[start:])
            if start >= 0
            else serialization.load_der_public_key(raw)
        )
        out["key_hint"] = key_hint(key)  # type: ignore[arg-type]  # any key's PEM fingerprint
    except (ValueError, TypeError, AttributeError, UnsupportedAlgorithm):
        out["key_raw"] = "unreadable"
    out["key_details"] = bundle.material.key_details
    return out


def _signer(bundle: Bundle) -> dict[str, Any]:
    if bundle.method == "key":
        return _key_signer(bundle)
    if bundle.method == "certificate":
        chain = [_certificate(der) for der in bundle.certificates]
        return {"certificate": chain[0], "chain": chain[1:]}
    from omsign.backends.sigstore import describe_sigstore_material

    return describe_sigstore_material(bundle)


def _timestamps(bundle: Bundle) -> tuple[dict[str, Any], ...]:
    from omsign._timestamp import describe_timestamp

    return tuple(describe_timestamp(t) for t in bundle.timestamps)


def _signature_of(path: Path) -> Path:
    """The signature a path names: itself, or a model's signature at its default path.

    A directory is a model; so is a file beside which ``NAME.sig`` exists.
    """
    if path.is_dir():
        return path / "model.sig"
    beside = path.with_name(path.name + ".sig")
    if path.is_file() and beside.is_file():
        return beside
    return path


def _registry_signature(model: str) -> tuple[Bundle, str]:
    """The newest signature of a model in a registry, and where it is."""
    from omsign.sources import resolve_source
    from omsign.storage import resolve_store

    store = resolve_store(resolve_source(model))
    found = store.locations()
    if not found:
        store.read()  # raises: no signature, saying where it looked
    return store.read(found[0]), found[0]


def _claimed_signer(bundle: Bundle) -> str:
    """Who a bundle says signed it, in a few words (nothing checked)."""
    try:
        signer = _signer(bundle)
    except (Error, ValueError, TypeError, KeyError):  # unverified material may be anything
        return f"{bundle.method} (unreadable material)"
    if bundle.method == "key":
        return f"key sha256:{signer.get('key_hint')}"
    if bundle.method == "certificate":
        return str(signer["certificate"]["subject"])
    return f"{signer.get('identity')} ({signer.get('issuer')})"


def _attestation(location: str, raw: bytes | Error, root: str | None) -> dict[str, Any]:
    """One claims line as it claims itself (see :class:`SignatureDescription`)."""
    from omsign import intoto
    from omsign.attestations import type_name
    from omsign.bundle import parse_bundle

    if isinstance(raw, Error):
        return {"location": location, "error": str(raw).removeprefix(f"{location}: ")}
    try:
        bundle = parse_bundle(raw, location)
        statement = intoto.parse(bundle.payload)
    except Error as exc:
        return {"location": location, "error": str(exc).removeprefix(f"{location}: ")}
    subjects = statement.subjects
    digest = subjects[0].digest.get("sha256") if len(subjects) == 1 else None
    return {
        "location": location,
        "type": type_name(statement.predicate_type),
        "predicate_type": statement.predicate_type,
        "method": bundle.method,
        "signer": _claimed_signer(bundle),
        "subjects": len(subjects),
        "subject": subjects[0].name if len(subjects) == 1 else None,
        "subject_digest": f"sha256:{digest}" if isinstance(digest, str) else None,
        "matches_signature": root is not None and digest == root,
    }


def _attestations(signature: Path, root: bytes | None) -> tuple[dict[str, Any], ...]:
    """The claims stored beside a signature file, described (unverified)."""
    from omsign.storage._claims import read_lines
    from omsign.storage._file import claims_path

    try:
        lines = read_lines(claims_path(signature))
    except Error as exc:
        return ({"location": str(claims_path(signature)), "error": str(exc)},)
    hex_root = root.hex() if root else None
    return tuple(_attestation(location, raw, hex_root) for location, raw in lines)


def describe_signature(source: str | os.PathLike[str] | Bundle) -> SignatureDescription:
    """Describes a signature without verifying it.

    Args:
        source: a signature file, a model (whose signature is at the default path:
            ``MODEL/model.sig`` or ``MODEL.sig``; for an ``oci://`` model, its newest
            signature referrer), or a parsed :class:`~omsign.bundle.Bundle`.

    Returns:
        What the signature claims. A statement that cannot be read is reported in
        ``statement_error``, not raised.

    Raises:
        ModelError: the signature file is missing or unreadable.
        MalformedSignatureError: the file is not a well-formed bundle.
        SignatureError: a timestamp in the bundle cannot be parsed.
    """
    from omsign.predicates import find_predicate, parse_statement

    path: Path | None = None
    if isinstance(source, Bundle):
        bundle, name = source, None
    elif isinstance(source, str) and source.startswith("oci://"):
        bundle, name = _registry_signature(source)
    else:
        path = _signature_of(Path(source))
        bundle, name = read_bundle(path), str(path)
    described = SignatureDescription(
        signature=name,
        method=bundle.method,
        signer=_signer(bundle),
        timestamps=_timestamps(bundle),
        companions=() if name is None or name.startswith("oci://") else _companions(Path(name)),
    )
    try:
        signed = parse_statement(bundle.payload, name)
    except (MalformedSignatureError, SignatureError) as exc:
        claims = _attestations(path, None) if path is not None else ()
        return dataclasses.replace(described, statement_error=str(exc), attestations=claims)
    predicate = find_predicate(signed.predicate_type)
    return dataclasses.replace(
        described,
        attestations=_attestations(path, signed.root_digest) if path is not None else (),
        format=predicate.description if predicate else signed.predicate_type,
        subject=signed.subject_name,
        root_digest=f"sha256:{signed.root_digest.hex()}" if signed.root_digest else None,
        serialization=signed.manifest.serialization,
        resources=signed.manifest.items,
    )
