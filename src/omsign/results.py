"""What a call returns: :class:`SignResult` and :class:`VerificationResult`, as values.

Both are frozen; ``to_json()`` gives the JSON-ready form the command line prints.
A verification lists what each verified signature proves in ``signers`` (one entry
today; several once a policy accepts several signatures); the top-level ``method``,
``signer``, ``issuer`` and ``signed_at`` repeat the first of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omsign.manifest import Manifest, Serialization
from omsign.reports import report

if TYPE_CHECKING:
    from omsign.attestations import Attestation
    from omsign.hashing import LinkPolicy

__all__ = ["AttestResult", "SignResult", "VerificationResult", "VerifiedSigner"]


@dataclass(frozen=True)
class SignResult:
    """What ``sign`` wrote.

    Attributes:
        signature: the path of the bundle written (a URL in object storage).
        root_digest: hex SHA-256 root digest of the manifest.
        manifest: the signed manifest.
        bundle: the bundle written, as a JSON object.
        hashed: the files read and hashed by this run (all of them unless digests
            were reused).
    """

    signature: Path | str
    root_digest: str
    manifest: Manifest
    bundle: dict[str, object]
    hashed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready object."""
        return {
            "signature": str(self.signature),
            "root_digest": f"sha256:{self.root_digest}",
            "files": sorted(self.manifest.by_file()),
            "hashed": list(self.hashed),
        }


@dataclass(frozen=True)
class AttestResult:
    """What ``attest`` wrote.

    Attributes:
        location: where the bundle went (``.../claims.jsonl:N``, or the output file).
        root_digest: hex SHA-256 root digest of the model: the statement's one subject.
        subject_name: the subject's name (the model's name).
        predicate_type: the predicate type URI signed.
        bundle: the bundle written, as a JSON object.
        hashed: the files read and hashed by this run (none when every digest was
            reused from the digest cache).
    """

    location: str
    root_digest: str
    subject_name: str
    predicate_type: str
    bundle: dict[str, object]
    hashed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON-ready object (``omsign attest --json``)."""
        return {
            "attestation": self.location,
            "subject": self.subject_name,
            "root_digest": f"sha256:{self.root_digest}",
            "predicate_type": self.predicate_type,
            "hashed": list(self.hashed),
        }


@dataclass(frozen=True)
class VerifiedSigner:
    """What one verified signature proves.

    Attributes:
        method: ``key``, ``certificate`` or ``sigstore``.
        signer: who signed (key fingerprint, certificate subject, or identity).
        issuer: certificate issuer or OIDC issuer, when there is one.
        signed_at: signing time proven by a trusted timestamp or log entry.
        signature: where the signature was read from (for a model in an OCI
            registry, the referrer that verified: ``oci://HOST/REPO@<its digest>``).
        legacy: the signature uses the deprecated v0.2 format.
        claimed_at: when the bundle says it was signed, unproven (only when no time
            is proven).
        trusted_as: the name of the trust policy file's signer that accepted it.
    """

    method: str
    signer: str
    issuer: str | None
    signed_at: dt.datetime | None
    signature: str
    legacy: bool = False
    claimed_at: dt.datetime | None = None
    trusted_as: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The signer as a JSON-ready object."""
        return {
            "method": self.method,
            "signer": self.signer,
            "issuer": self.issuer,
            "signed_at": self.signed_at.isoformat() if self.signed_at else None,
            "signature": self.signature,
            "legacy_format": self.legacy,
            "claimed_at": self.claimed_at.isoformat() if self.claimed_at else None,
            "trusted_as": self.trusted_as,
        }


@dataclass(frozen=True)
class VerificationResult:
    """What a successful verification proved.

    Attributes:
        model: the model path (a URL for a model in object storage).
        signature: the bundle path (or URL; for a model in an OCI registry, the
            referrer that verified, ``oci://HOST/REPO@<its digest>``).
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
        identities: ``(device, inode)`` of each verified file as it was read.
        sizes: the size of each verified file as it was read.
        link_policy: the links that were followed besides the signed settings.
        signers: what each verified signature proves (the first is the one above).
        pinning: what the first-use history said (a trust policy rule with pinning), as
            a JSON-ready object; None otherwise.
        attestations: every attestation stored for the model, verified or not and why
            (read when attestations were required or asked for).
        attestations_checked: the attestations were read (``attestations`` is then
            complete, even when empty).
    """

    model: Path | str
    signature: Path | str
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
    identities: Mapping[str, tuple[int, int]] = field(default_factory=dict, repr=False)
    sizes: Mapping[str, int] = field(default_factory=dict, repr=False)
    link_policy: LinkPolicy | None = field(default=None, repr=False)
    signers: tuple[VerifiedSigner, ...] = ()
    pinning: Mapping[str, Any] | None = field(default=None, repr=False)
    attestations: tuple[Attestation, ...] = ()
    attestations_checked: bool = False

    def __post_init__(self) -> None:
        if not self.signers:
            only = VerifiedSigner(
                self.method,
                self.signer,
                self.issuer,
                self.signed_at,
                str(self.signature),
                self.legacy,
            )
            object.__setattr__(self, "signers", (only,))

    def to_json(self, warnings: Iterable[str] = ()) -> dict[str, Any]:
        """The result as a verification report (the CLI's ``--json`` output).

        Args:
            warnings: what was warned about while verifying, for the report.

        Returns:
            A report of the versioned format in :mod:`omsign.reports`.
        """
        ser = self.serialization
        body = {
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
            "serialization": {
                "method": ser.method,
                "hash_type": ser.hash_type,
                "shard_size": ser.shard_size,
                "allow_symlinks": ser.allow_symlinks,
            },
            "files": {
                "verified": list(self.verified),
                "absent": list(self.absent),
                "unchecked": list(self.unchecked),
                "unsigned": list(self.unsigned),
            },
            "signers": [s.to_json() for s in self.signers],
            "warnings": list(warnings),
        }
        if self.attestations_checked:
            body["attestations"] = [a.to_json() for a in self.attestations]
        return report("verification", body)
