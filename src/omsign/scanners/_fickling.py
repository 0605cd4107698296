"""The fickling adapter: decompiles each pickle and runs fickling's safety analyses.

A plain file is read as a stack of pickles; a zip archive (a PyTorch checkpoint) has
each member named like a pickle (``.pkl``, ``.pickle``, ``.bin``) analysed, as
fickling does for archives. Anything fickling rates above "likely safe" is a finding.
"""

from __future__ import annotations

import zipfile
from typing import Any, BinaryIO

from omsign.scanners._base import ScanFailedError

__all__ = ["DISTRIBUTION", "EXTRA", "NAME", "reads", "scan"]

NAME = "fickling"
DISTRIBUTION = "fickling"
EXTRA = "scan-fickling"
_SUFFIXES = (".pkl", ".pickle", ".joblib", ".dill", ".bin", ".pt", ".pth", ".ckpt")
_MEMBER_SUFFIXES = (".pkl", ".pickle", ".bin")


def reads(name: str) -> bool:
    """Whether fickling is meant for a file of this name."""
    return name.lower().endswith(_SUFFIXES)


def _analyse(where: str, stream: BinaryIO, member: bool) -> list[str]:
    from fickling.analysis import Severity, check_safety
    from fickling.fickle import PickleDecodeError, StackedPickle

    try:
        stacked: Any = StackedPickle.load(stream, fail_on_decode_error=True)
    except PickleDecodeError as exc:
        raise ScanFailedError(f"fickling could not decode {where}: {exc}") from None
    findings = []
    for pickled in stacked:
        results = check_safety(pickled)
        findings += [
            f"{where + ': ' if member else ''}{r.severity.name}: {r}"
            for r in results.results
            if r.severity > Severity.LIKELY_SAFE
        ]
    return findings


def scan(name: str, stream: BinaryIO, pickle_content: bool) -> list[str]:
    """What fickling's analyses report for one file (empty: nothing).

    Raises:
        ScanFailedError: fickling could not decode it (or an archive member).
    """
    del pickle_content  # the content decides: an archive's members, or the file itself
    if zipfile.is_zipfile(stream):
        stream.seek(0)
        findings: list[str] = []
        with zipfile.ZipFile(stream) as archive:
            members = [m for m in archive.namelist() if m.lower().endswith(_MEMBER_SUFFIXES)]
            if not members:
                raise ScanFailedError("a zip archive without a pickle member fickling reads")
            for member in members:
                with archive.open(member) as data:
                    findings += _analyse(member, data, True)  # type: ignore[arg-type]
        return findings
    stream.seek(0)
    return _analyse(name, stream, False)
