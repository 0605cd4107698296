"""The picklescan adapter: lists the globals a pickle imports and flags the dangerous ones.

picklescan reads pickles, PyTorch files (legacy and zip), NumPy files and zip archives
from a stream, so it is handed the verified stream itself.
"""

from __future__ import annotations

import logging
import os
import pickletools
import zipfile
from typing import Any, BinaryIO

from omsign.scanners._base import ScanFailedError

__all__ = ["DISTRIBUTION", "EXTRA", "NAME", "reads", "scan"]

NAME = "picklescan"
DISTRIBUTION = "picklescan"
EXTRA = "scan-picklescan"
# The suffixes picklescan scans when it walks a folder.
_SUFFIXES = (
    ".pkl", ".pickle", ".joblib", ".dat", ".data", ".bin", ".pt", ".pth", ".ckpt",
    ".npy", ".zip", ".npz",
)  # fmt: skip


def reads(name: str) -> bool:
    """Whether picklescan scans a file of this name by itself."""
    return name.lower().endswith(_SUFFIXES)


def scan(name: str, stream: BinaryIO, pickle_content: bool) -> list[str]:
    """The dangerous globals picklescan finds in one file (empty: none).

    Raises:
        ScanFailedError: picklescan could not parse the file.
    """
    from picklescan import scanner

    # Its findings are returned, not printed: without a handler of the application's,
    # Python would print its warnings to stderr (the "last resort" handler).
    log = logging.getLogger("picklescan")
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    ext = os.path.splitext(name)[1].lower() or None
    result: Any = scanner.scan_bytes(stream, name, ext)
    dangerous = [
        f"{g.module}.{g.name}: {g.safety.value}"
        for g in result.globals
        if g.safety is scanner.SafetyLevel.Dangerous
    ]
    if result.issues_count or result.infected_files:
        return dangerous or ["picklescan reported an issue"]
    if result.scan_err or (pickle_content and not result.globals and not _parses(stream)):
        raise ScanFailedError("picklescan could not parse it")
    return []


def _parses(stream: BinaryIO) -> bool:
    """Whether a pickle stream parses to its first STOP (picklescan treats a pickle it
    cannot parse as no pickle at all, which would pass it)."""
    stream.seek(0)
    if zipfile.is_zipfile(stream):
        return True  # an archive: picklescan read its members
    stream.seek(0)
    try:
        for _ in pickletools.genops(stream):
            pass
    except ValueError:
        return False
    return True
