"""A scanner's verdict on a model, as a SLSA Verification Summary v1 predicate.

``omsign attest --scan NAME`` runs a model scanner on the model's verified bytes and
signs what it found as an in-toto statement whose one subject is the model's OMS root
digest, with predicate type ``https://slsa.dev/verification_summary/v1``:

- ``verifier.id``: ``https://omsign.dev/scanners/<scanner>``; ``verifier.version``
  maps ``omsign`` and the scanner to their versions.
- ``timeVerified``: when the scan ran (UTC, RFC 3339); ``resourceUri``: the model as
  it was named; ``policy.uri``: :data:`SCAN_POLICY` (a file passes when the scanner
  reports nothing and did not fail on it; the model passes when every file does).
- ``verificationResult``: ``PASSED`` or ``FAILED``; ``verifiedLevels``: ``[]`` when
  passed (a scan is no SLSA track), ``["FAILED"]`` when failed; ``slsaVersion``: ``1.0``.
- Under the extension field :data:`SCAN_EXTENSION` (a URI, as the VSA allows), what
  the verdict rests on: ``scanner`` (``name``, ``version``), ``rootDigest`` (the
  ``sha256`` the scanned bytes hash to, equal to the subject's), ``expires`` (after it
  the verdict is stale), ``scanned`` (per file: ``name``, ``result`` ``PASSED`` or
  ``FAILED``, ``findings``: what the scanner reported, at most 20 lines) and ``skipped``
  (per file: ``name``, ``reason``).

:func:`read_scan_verdict` reads such a predicate back (bounded, every field checked).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omsign._json import brief
from omsign.errors import MalformedSignatureError
from omsign.predicates._common import AttestationKind

__all__ = [
    "KIND",
    "MAX_FINDINGS",
    "PREDICATE_TYPE",
    "SCAN_EXTENSION",
    "SCAN_POLICY",
    "FileVerdict",
    "ScanVerdict",
    "build_scan_predicate",
    "format_time",
    "read_scan_verdict",
]

PREDICATE_TYPE = "https://slsa.dev/verification_summary/v1"
SCAN_EXTENSION = "https://omsign.dev/scan/v1"
SCAN_POLICY = "https://omsign.dev/scan-policy/v1"
VERIFIER_PREFIX = "https://omsign.dev/scanners/"
MAX_FINDINGS = 20  # findings kept per file
_MAX_TEXT = 300  # characters kept per finding
_MAX_FILES = 1_000_000
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class FileVerdict:
    """What a scanner found in one file.

    Attributes:
        name: the file's model-relative name, as signed.
        passed: the scanner reported nothing and did not fail on it.
        findings: what it reported (or why it failed), one line each.
    """

    name: str
    passed: bool
    findings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScanVerdict:
    """A scan verdict, as a predicate says it.

    Attributes:
        scanner: the scanner's name (``fickling``, ``modelscan``, ``picklescan``).
        scanner_version: its version.
        passed: ``verificationResult`` is ``PASSED``.
        time_verified: when the scan ran (claimed by the signer).
        expires: after this time the verdict is stale.
        root_digest: the hex SHA-256 root digest of the bytes scanned.
        scanned: each file scanned, with its verdict.
        skipped: each file not scanned, and why.
    """

    scanner: str
    scanner_version: str
    passed: bool
    time_verified: dt.datetime
    expires: dt.datetime
    root_digest: str
    scanned: tuple[FileVerdict, ...] = ()
    skipped: Mapping[str, str] = field(default_factory=dict)

    def file(self, name: str) -> FileVerdict | None:
        """The verdict on one scanned file, or None when it was not scanned."""
        return next((f for f in self.scanned if f.name == name), None)

    def flagged(self, limit: int = 3) -> str:
        """The failed files with their first finding, in one line (empty when none)."""
        bad = [f for f in self.scanned if not f.passed]
        text = "; ".join(
            f"{f.name}: {f.findings[0] if f.findings else 'flagged'}" for f in bad[:limit]
        )
        return text + (f" and {len(bad) - limit} more" if len(bad) > limit else "")


def format_time(when: dt.datetime) -> str:
    """A timezone-aware time as RFC 3339 in UTC, to the second (``...Z``)."""
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clip(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_TEXT else line[: _MAX_TEXT - 3] + "..."


def build_scan_predicate(
    *,
    scanner: str,
    scanner_version: str,
    omsign_version: str,
    root_digest: str,
    resource_uri: str,
    scanned: Sequence[FileVerdict],
    skipped: Mapping[str, str],
    time_verified: dt.datetime,
    valid_for: dt.timedelta,
) -> dict[str, Any]:
    """The verification summary predicate for one scan (see the module docstring).

    The model passes when every scanned file passed.
    """
    passed = all(f.passed for f in scanned)
    files = [
        {
            "name": f.name,
            "result": "PASSED" if f.passed else "FAILED",
            "findings": [_clip(x) for x in f.findings[:MAX_FINDINGS]],
        }
        for f in sorted(scanned, key=lambda f: f.name)
    ]
    return {
        "verifier": {
            "id": VERIFIER_PREFIX + scanner,
            "version": {"omsign": omsign_version, scanner: scanner_version},
        },
        "timeVerified": format_time(time_verified),
        "resourceUri": resource_uri,
        "policy": {"uri": SCAN_POLICY},
        "verificationResult": "PASSED" if passed else "FAILED",
        "verifiedLevels": [] if passed else ["FAILED"],
        "slsaVersion": "1.0",
        SCAN_EXTENSION: {
            "scanner": {"name": scanner, "version": scanner_version},
            "rootDigest": {"sha256": root_digest},
            "expires": format_time(time_verified + valid_for),
            "scanned": files,
            "skipped": [
                {"name": name, "reason": _clip(reason)} for name, reason in sorted(skipped.items())
            ],
        },
    }


def _bad(what: str) -> MalformedSignatureError:
    return MalformedSignatureError(f"malformed scan verdict: {what}")


def _get(obj: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict):
        raise _bad(f"{where} is not an object")
    value = obj.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _bad(f"{where}.{key} is missing or not a {kind.__name__}")
    return value


def _time(value: Any, where: str) -> dt.datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise _bad(f"{where} is not a time")
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"{where} {brief(value)} is not an RFC 3339 time") from None
    if when.tzinfo is None:
        raise _bad(f"{where} {brief(value)} has no time zone")
    return when


def _files(ext: dict[str, Any]) -> tuple[tuple[FileVerdict, ...], dict[str, str]]:
    scanned_raw = _get(ext, "scanned", list, "scan")
    skipped_raw = _get(ext, "skipped", list, "scan")
    if len(scanned_raw) + len(skipped_raw) > _MAX_FILES:
        raise _bad(f"more than {_MAX_FILES} files")
    scanned = []
    for i, raw in enumerate(scanned_raw):
        where = f"scan.scanned[{i}]"
        result = _get(raw, "result", str, where)
        if result not in ("PASSED", "FAILED"):
            raise _bad(f"{where}.result is {brief(result)}, not PASSED or FAILED")
        findings = raw.get("findings", [])
        if not isinstance(findings, list) or not all(isinstance(x, str) for x in findings):
            raise _bad(f"{where}.findings is not a list of strings")
        scanned.append(
            FileVerdict(_get(raw, "name", str, where), result == "PASSED", tuple(findings))
        )
    skipped = {
        _get(raw, "name", str, f"scan.skipped[{i}]"): _get(raw, "reason", str, f"scan.skipped[{i}]")
        for i, raw in enumerate(skipped_raw)
    }
    return tuple(scanned), skipped


def read_scan_verdict(predicate: Mapping[str, Any] | None) -> ScanVerdict:
    """Reads a scan verdict from a verification summary predicate written by omsign.

    Raises:
        MalformedSignatureError: not a verification summary with omsign's scan fields,
            or a field of the wrong type or value (the message names it).
    """
    if not isinstance(predicate, dict):
        raise _bad("the predicate is not an object")
    result = _get(predicate, "verificationResult", str, "predicate")
    if result not in ("PASSED", "FAILED"):
        raise _bad(f"verificationResult is {brief(result)}, not PASSED or FAILED")
    ext = predicate.get(SCAN_EXTENSION)
    if not isinstance(ext, dict):
        raise _bad(f"no {SCAN_EXTENSION} object (not a scan verdict written by omsign)")
    scanner = _get(ext, "scanner", dict, "scan")
    digest = _get(_get(ext, "rootDigest", dict, "scan"), "sha256", str, "scan.rootDigest")
    if not _HEX64.fullmatch(digest):
        raise _bad("scan.rootDigest.sha256 is not a lowercase hex SHA-256 digest")
    scanned, skipped = _files(ext)
    if result == "PASSED" and not all(f.passed for f in scanned):
        raise _bad("verificationResult is PASSED but a scanned file FAILED")
    return ScanVerdict(
        scanner=_get(scanner, "name", str, "scan.scanner"),
        scanner_version=_get(scanner, "version", str, "scan.scanner"),
        passed=result == "PASSED",
        time_verified=_time(predicate.get("timeVerified"), "timeVerified"),
        expires=_time(ext.get("expires"), "scan.expires"),
        root_digest=digest,
        scanned=scanned,
        skipped=skipped,
    )


def _check(predicate: dict[str, Any]) -> None:
    """A verification summary: omsign's scan fields in full when present."""
    if SCAN_EXTENSION in predicate:
        read_scan_verdict(predicate)
        return
    result = _get(predicate, "verificationResult", str, "predicate")
    if result not in ("PASSED", "FAILED"):
        raise _bad(f"verificationResult is {brief(result)}, not PASSED or FAILED")


def _claimed(predicate: dict[str, Any]) -> dt.datetime | None:
    value = predicate.get("timeVerified")
    return None if value is None else _time(value, "timeVerified").astimezone(dt.timezone.utc)


def _expires(predicate: dict[str, Any]) -> dt.datetime | None:
    ext = predicate.get(SCAN_EXTENSION)
    if not isinstance(ext, dict) or "expires" not in ext:
        return None
    return _time(ext["expires"], "scan.expires")


# How attestations name and check this predicate (omsign.predicates.ATTESTATION_KINDS).
KIND = AttestationKind(
    "scan", PREDICATE_TYPE, "SLSA verification summary v1", _check, _claimed, _expires
)
