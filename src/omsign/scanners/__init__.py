"""Model scanners run on verified bytes: fickling, modelscan and picklescan.

Each scanner is an optional extra (``omsign[scan-fickling]``, ``omsign[scan-modelscan]``,
``omsign[scan-picklescan]``) behind one adapter module. :func:`scan_verified` hands
every file of a :class:`~omsign.loading.VerifiedModel` that may hold a pickle to the
scanner as a stream of verified bytes: each byte the scanner reads was hashed and
compared with the digest the model was verified (or hashed) with, so a file changed
between hashing and scanning fails with :class:`~omsign.errors.IntegrityError`
instead of being scanned. :func:`scan_model` first hashes a model as ``sign`` does,
then scans exactly the bytes hashed.

Which files are scanned: those whose name the scanner reads by itself, and those
omsign finds to hold a pickle (by suffix, or by content: a pickle stream, a PyTorch
zip archive, a NumPy object array, or the text protocols 0 and 1 importing a global).
The others are skipped, each with the reason. A file that holds a pickle fails when the
scanner reports anything or cannot read it; a file without pickle content that the
scanner cannot read is skipped with why.
The verdict becomes a SLSA verification summary (:mod:`omsign.predicates._scan`).
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import os
import pickletools
import re
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, BinaryIO

from omsign._version import __version__
from omsign.errors import BackendUnavailableError, Error, UsageError
from omsign.predicates._scan import (
    FileVerdict,
    ScanVerdict,
    build_scan_predicate,
    read_scan_verdict,
)
from omsign.scanners._base import ScanFailedError

if TYPE_CHECKING:
    from omsign.loading import VerifiedModel
    from omsign.options import HashOptions, PathLike, Runtime

__all__ = [
    "DEFAULT_VALID_FOR",
    "SCANNERS",
    "ScanReport",
    "hashed_model",
    "load_scanner",
    "scan_model",
    "scan_verified",
    "scanner_predicate",
    "summary",
]

SCANNERS = ("fickling", "modelscan", "picklescan")
_IMPORT = re.compile(r"[A-Za-z_][\w.]* [A-Za-z_]\w*")  # GLOBAL's argument: "module name"
DEFAULT_VALID_FOR = dt.timedelta(days=30)
_SNIFF = 4096


@dataclass(frozen=True)
class ScanReport:
    """What one scan found, and the predicate that says it.

    Attributes:
        root_digest: hex SHA-256 root digest of the bytes scanned.
        predicate: the verification summary predicate to sign.
        verdict: the same, read back.
    """

    root_digest: str
    predicate: dict[str, Any]
    verdict: ScanVerdict


def load_scanner(name: str) -> ModuleType:
    """The adapter of a scanner, once its package is known to be importable.

    Raises:
        UsageError: not a scanner omsign knows.
        BackendUnavailableError: the scanner is not installed (the message names the
            extra that installs it).
    """
    if name not in SCANNERS:
        raise UsageError(
            f"unknown scanner {name!r}; choose one of {', '.join(SCANNERS)}", option="scan"
        )
    adapter = importlib.import_module(f"omsign.scanners._{name}")
    try:
        importlib.import_module(adapter.DISTRIBUTION)
    except ImportError:
        raise BackendUnavailableError(
            f"the {name} scanner is not installed",
            hint=f"install it with: pip install 'omsign[{adapter.EXTRA}]'",
        ) from None
    return adapter


def _version(adapter: ModuleType) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(adapter.DISTRIBUTION)
    except PackageNotFoundError:  # pragma: no cover - imported, so it is installed
        return "unknown"


class _Guard(io.RawIOBase):
    """A verified stream that remembers an integrity failure the scanner may swallow."""

    def __init__(self, inner: BinaryIO) -> None:
        super().__init__()
        self._inner = inner
        self.failure: Error | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._inner.read(len(memoryview(buffer)))
        except Error as exc:  # IntegrityError: the bytes differ from the verified ones
            self.failure = exc
            raise
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


def _old_protocol_pickle(head: bytes) -> bool:
    """Whether bytes read as a protocol 0 or 1 pickle that imports a global.

    Protocols 2 and later start with a marker that :mod:`omsign.integrations.unsafe`
    recognises; these older ones are text-like, so a text file can begin like one: it
    must parse for a few opcodes and import names that are Python identifiers.
    """
    ops = imports = 0
    try:
        for op, arg, _ in pickletools.genops(head):
            ops += 1
            if op.name in ("GLOBAL", "INST"):
                if not isinstance(arg, str) or not _IMPORT.fullmatch(arg):
                    return False
                imports += 1
            if op.name == "STOP":
                break
    except ValueError:  # not a pickle past this point, or the head ends inside one
        pass
    return imports > 0 and ops >= 4


def _scan_one(adapter: ModuleType, verified: VerifiedModel, name: str) -> FileVerdict | str:
    """The verdict on one file, or why it was skipped."""
    from omsign.integrations.unsafe import sniff_length, unsafe_by_name, unsafe_reason

    reads = adapter.reads(name)
    if not reads and unsafe_by_name(name) is None and sniff_length(name) == 0:
        return "not a pickle-based format"
    with verified.open(name, allow_pickle=True) as f:
        head = f.read(_SNIFF)
        reason = unsafe_reason(name, head, f)
        if reason is None and _old_protocol_pickle(head):
            reason = "a pickle stream of protocol 0 or 1"
        if not reads and reason is None:
            return f"no pickle content, and not a format {adapter.NAME} reads"
        f.seek(0)
        guard = _Guard(f)
        try:
            findings = adapter.scan(name, io.BufferedReader(guard), reason is not None)
        except Error:
            raise
        except ScanFailedError as exc:
            failed = str(exc)
        except Exception as exc:  # a scanner failing on hostile input must not pass it
            failed = f"{adapter.NAME} failed: {type(exc).__name__}: {exc}"
        else:
            failed = ""
        if guard.failure is not None:  # swallowed by the scanner: the bytes changed
            raise guard.failure
    if failed:
        if reason is None:
            return f"no pickle content, and {failed}"
        return FileVerdict(name, False, (failed,))
    return FileVerdict(name, not findings, tuple(findings))


def scan_verified(
    verified: VerifiedModel,
    scanner: str,
    *,
    valid_for: dt.timedelta = DEFAULT_VALID_FOR,
    now: dt.datetime | None = None,
    resource_uri: str | None = None,
) -> ScanReport:
    """Scans the files of a verified model with one scanner.

    Args:
        verified: from :func:`omsign.open_verified` or :func:`hashed_model`.
        scanner: ``fickling``, ``modelscan`` or ``picklescan``.
        valid_for: how long the verdict stays fresh.
        now: the scan time (default: the current time).
        resource_uri: how the predicate names the model (default: its file URI).

    Returns:
        The verdict and its predicate.

    Raises:
        IntegrityError: a file's bytes differ from those verified.
        BackendUnavailableError: the scanner is not installed.
        UsageError: an unknown scanner, or a validity that is not positive.
    """
    if valid_for <= dt.timedelta(0):
        raise UsageError("a scan verdict must stay valid for a positive time", option="valid_for")
    adapter = load_scanner(scanner)
    when = now or dt.datetime.now(dt.timezone.utc)
    scanned: list[FileVerdict] = []
    skipped: dict[str, str] = {}
    for name in verified.files:
        outcome = _scan_one(adapter, verified, name)
        if isinstance(outcome, str):
            skipped[name] = outcome
        else:
            scanned.append(outcome)
    result = verified.result
    predicate = build_scan_predicate(
        scanner=scanner,
        scanner_version=_version(adapter),
        omsign_version=__version__,
        root_digest=result.root_digest,
        resource_uri=resource_uri or _uri(result.model),
        scanned=scanned,
        skipped=skipped,
        time_verified=when,
        valid_for=valid_for,
    )
    return ScanReport(result.root_digest, predicate, read_scan_verdict(predicate))


def _uri(model: os.PathLike[str] | str) -> str:
    from pathlib import Path

    return model if isinstance(model, str) else Path(model).absolute().as_uri()


def hashed_model(
    model: PathLike,
    *,
    signature: PathLike | None = None,
    hashing: HashOptions | None = None,
    runtime: Runtime | None = None,
) -> VerifiedModel:
    """A model hashed as ``sign`` would hash it, ready for reads checked against that.

    Nothing is trusted here: reads are only checked against the digests just computed,
    so the bytes read are exactly those whose root digest a statement would name.
    """
    from omsign._sign import _hash_model, local_path
    from omsign.loading import VerifiedModel
    from omsign.options import HashOptions, Runtime
    from omsign.predicates import written_form
    from omsign.sources import resolve_source
    from omsign.storage import resolve_store

    source = resolve_source(model)
    store = resolve_store(source, signature)
    manifest, _ = _hash_model(
        source, hashing or HashOptions(), store.excluded(), runtime or Runtime(),
        reuse_digests=False,
    )  # fmt: skip
    manifest = written_form(manifest, None, single_file=not source.is_dir)
    return VerifiedModel.from_hashes(local_path(source), manifest, link_policy=source.link_policy)


def scan_model(
    model: PathLike,
    scanner: str,
    *,
    valid_for: dt.timedelta = DEFAULT_VALID_FOR,
    signature: PathLike | None = None,
    hashing: HashOptions | None = None,
    runtime: Runtime | None = None,
    now: dt.datetime | None = None,
) -> ScanReport:
    """Hashes a model as ``sign`` does, then scans exactly the bytes hashed.

    See :func:`scan_verified` for the arguments and errors.
    """
    load_scanner(scanner)  # not installed: say so before hashing
    verified = hashed_model(model, signature=signature, hashing=hashing, runtime=runtime)
    uri = str(model) if "://" in str(model) else None
    return scan_verified(verified, scanner, valid_for=valid_for, now=now, resource_uri=uri)


def scanner_predicate(
    scanner: str,
    *,
    valid_for: dt.timedelta = DEFAULT_VALID_FOR,
    now: dt.datetime | None = None,
) -> Callable[[VerifiedModel], dict[str, Any]]:
    """A predicate builder for :func:`omsign.attest`: scans the bytes attest hashed.

    ``omsign.attest(model, predicate_type="scan", predicate=scanner_predicate("fickling"),
    key=...)`` scans exactly the bytes whose root digest the attestation names.

    Raises:
        UsageError: an unknown scanner, or a validity that is not positive.
        BackendUnavailableError: the scanner is not installed (said before any hashing).
    """
    load_scanner(scanner)
    if valid_for <= dt.timedelta(0):
        raise UsageError("a scan verdict must stay valid for a positive time", option="valid_for")

    def build(verified: VerifiedModel) -> dict[str, Any]:
        return scan_verified(verified, scanner, valid_for=valid_for, now=now).predicate

    return build


def summary(predicate: dict[str, Any]) -> str:
    """One line saying a verdict: the scanner, PASSED or FAILED, what was flagged."""
    verdict = read_scan_verdict(predicate)
    counts = f"{len(verdict.scanned)} file(s) scanned, {len(verdict.skipped)} skipped"
    if verdict.passed:
        return f"{verdict.scanner} {verdict.scanner_version}: PASSED ({counts})"
    return f"{verdict.scanner} {verdict.scanner_version}: FAILED ({counts}): {verdict.flagged()}"
