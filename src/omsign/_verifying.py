"""``omsign.verify``: OMS section 8 step by step, with a structured result.

8.1 parse the bundle; 8.2 check the signature and signer under the policy; 8.3
validate the statement (only once the signature holds); 8.4 re-hash the model with
the signed settings and compare; 8.5 unsigned files. Partial verification
(``allow_missing``, ``files``) narrows 8.4 and says exactly what was not checked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omsign._paths import default_signature, model_relative, signature_ignore
from omsign._signing import PathLike, ProgressCallback, _progress_adapter
from omsign.bundle import read_bundle
from omsign.errors import IntegrityError, ModelError, UsageError
from omsign.hashing import LinkPolicy, entries_for, enumerate_model
from omsign.manifest import Difference, Manifest, Serialization, compute_manifest
from omsign.policy import Policy, verify_signature
from omsign.statement import SignedStatement, parse_statement

__all__ = ["VerificationResult", "verify_with_policy"]


@dataclass(frozen=True)
class VerificationResult:
    """What a successful verification proved.

    Attributes:
        model: the model path.
        signature: the bundle path.
        method: ``key``, ``certificate`` or ``sigstore``.
        signer: who signed (key fingerprint, certificate subject, or identity).
        issuer: certificate issuer or OIDC issuer, when there is one.
        signed_at: signing time proven by a trusted timestamp or log entry.
        root_digest: hex root digest of the signed manifest.
        subject_name: the signed subject name (informational).
        serialization: the signed hashing settings.
        verified: files whose content was checked and matched.
        absent: signed files that are not present (only with ``allow_missing``).
        unchecked: signed files not read (only with ``files``).
        unsigned: files present but not signed (only with ``ignore_unsigned_files``).
        legacy: the signature uses the deprecated v0.2 format.
        manifest: the signed manifest.
    """

    model: Path
    signature: Path
    method: str
    signer: str
    issuer: str | None
    signed_at: dt.datetime | None
    root_digest: str
    subject_name: str
    serialization: Serialization
    verified: tuple[str, ...]
    absent: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()
    unsigned: tuple[str, ...] = ()
    legacy: bool = False
    manifest: Manifest = field(default=None, repr=False)  # type: ignore[assignment]

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready object (the CLI's ``--json`` output)."""
        ser = self.serialization
        return {
            "verified": True,
            "model": str(self.model),
            "signature": str(self.signature),
            "method": self.method,
            "signer": self.signer,
            "issuer": self.issuer,
            "signed_at": self.signed_at.isoformat() if self.signed_at else None,
            "root_digest": f"sha256:{self.root_digest}" if self.root_digest else None,
            "subject": self.subject_name,
            "legacy_format": self.legacy,
            "serialization": {"method": ser.method, "hash_type": ser.hash_type,
                              "shard_size": ser.shard_size,
                              "allow_symlinks": ser.allow_symlinks},
            "files": {"verified": list(self.verified), "absent": list(self.absent),
                      "unchecked": list(self.unchecked), "unsigned": list(self.unsigned)},
        }


def _select(signed: set[str], patterns: Sequence[str]) -> set[str]:
    chosen: set[str] = set()
    for pattern in patterns:
        pat = pattern.replace(os.sep, "/").removeprefix("./")
        hits = {n for n in signed if n == pat or fnmatch.fnmatchcase(n, pat)}
        if not hits:
            raise IntegrityError(f"{pattern}: no signed file matches")
        chosen |= hits
    return chosen


def _local_manifest(
    model: Path, signed: SignedStatement, ignores: Sequence[str], wanted: set[str] | None,
    link_policy: LinkPolicy | None, workers: int | None, progress: ProgressCallback | None,
) -> tuple[Manifest, tuple[str, ...]]:
    """Hashes the model with the signed settings; returns it and the unsigned files."""
    ser = signed.manifest.serialization
    local_ser = Serialization(ser.method, ser.hash_type, ser.shard_size, ser.allow_symlinks,
                              tuple(ignores))
    signed_files = set(signed.manifest.by_file())
    try:
        if wanted is not None and model.is_dir():
            entries = entries_for(model, sorted(wanted), allow_symlinks=ser.allow_symlinks,
                                  link_policy=link_policy)
        else:
            entries = enumerate_model(model, ignore_paths=ignores,
                                      allow_symlinks=ser.allow_symlinks, link_policy=link_policy)
    except ModelError as exc:
        raise IntegrityError(str(exc)) from None
    if not model.is_dir() and signed_files == {"."}:  # single file named "." (model_signing)
        entries = [dataclasses.replace(e, name=".") for e in entries]
    unsigned = tuple(e.name for e in entries if e.name not in signed_files)
    keep = signed_files if wanted is None else wanted
    entries = [e for e in entries if e.name in keep]
    advance, start = _progress_adapter(progress)
    start(sum(e.size for e in entries))
    try:
        local = compute_manifest(model, local_ser, entries=entries, link_policy=link_policy,
                                 workers=workers, progress=advance)
    except ModelError as exc:
        raise IntegrityError(str(exc)) from None
    return local, unsigned


def verify_with_policy(
    model: PathLike,
    policy: Policy,
    *,
    signature: PathLike | None = None,
    ignore_paths: Sequence[PathLike] = (),
    ignore_unsigned_files: bool = False,
    allow_missing: bool = False,
    files: Sequence[str] | None = None,
    link_policy: LinkPolicy | None = None,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
) -> VerificationResult:
    """Verifies a model under an explicit policy; see :func:`omsign.verify`."""
    path = Path(model)
    if not path.exists() and not path.is_symlink():
        raise ModelError(f"{path}: no such file or directory")
    sig_path = Path(signature) if signature is not None else default_signature(path)
    bundle = read_bundle(sig_path)  # 8.1
    proven = verify_signature(bundle, policy)  # 8.2
    signed = parse_statement(proven.payload)  # 8.3
    ser = signed.manifest.serialization
    ignores = sorted({*(ser.ignore_paths or ()), *model_relative(path, ignore_paths),
                      *signature_ignore(path, sig_path)})
    signed_files = set(signed.manifest.by_file())
    wanted = _select(signed_files, files) if files else None
    local, unsigned = _local_manifest(path, signed, ignores, wanted, link_policy, workers,
                                      progress)  # 8.4
    diff = signed.manifest.diff(local)
    absent: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()
    if wanted is not None:
        unchecked = tuple(sorted(signed_files - wanted))
        diff = Difference(tuple(m for m in diff.missing if m in wanted), (), diff.changed)
    elif allow_missing:
        absent, diff = diff.missing, Difference((), diff.extra, diff.changed)
    if ignore_unsigned_files or wanted is not None:  # 8.5
        diff = Difference(diff.missing, (), diff.changed)
    if not diff.empty:
        raise IntegrityError(f"{path}: model does not match its signature: {diff.summary()}",
                             diff)
    verified = tuple(sorted(local.by_file()))
    return VerificationResult(
        model=path, signature=sig_path, method=proven.method, signer=proven.signer,
        issuer=proven.issuer, signed_at=proven.signed_at,
        root_digest=signed.root_digest.hex(), subject_name=signed.subject_name,
        serialization=ser, verified=verified, absent=absent, unchecked=unchecked,
        unsigned=unsigned if ignore_unsigned_files else (), legacy=signed.legacy,
        manifest=signed.manifest,
    )
