"""An append-only file of bundles, one JSON document per line (``claims.jsonl``).

Appending writes the whole line and its newline in one ``write`` on a descriptor opened
with ``O_APPEND``, under an exclusive lock where the system has one, then ``fsync``: a
crash can leave at most one line without its newline. Such a line is never read as
valid (a line counts only once its newline is written), and the next append starts on
a fresh line so that it cannot be glued to the torn one.

Reading is bounded before anything is authenticated: at most :data:`MAX_LINES` lines of
at most :data:`MAX_LINE_BYTES` each; the lines are returned raw, each with its location
(``path:N``, N counting from 1). A line that is too long, torn or past the count is
reported by itself as an error in its place; the other lines are still returned.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from omsign.bundle import open_regular
from omsign.errors import Error, MalformedSignatureError, ModelError

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_LINES",
    "MAX_LINE_BYTES",
    "append_line",
    "parse_lines",
    "read_lines",
]

MAX_LINE_BYTES = 16 << 20  # one bundle; a bill of materials of a large model fits
MAX_LINES = 1000  # attestations read per model
MAX_FILE_BYTES = 256 << 20  # read at most this much of the file


def _bad(location: str, problem: str) -> MalformedSignatureError:
    return MalformedSignatureError(f"{location}: {problem}")


def _lines(f: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """Each line (without its newline), and whether it ended in a newline within bounds.

    A line longer than the bound is skipped to its end without being kept.
    """
    while True:
        line = f.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if line.endswith(b"\n"):
            yield line[:-1], True
            continue
        if len(line) <= MAX_LINE_BYTES:  # the file ends without a newline: a torn line
            yield line, False
            return
        while line and not line.endswith(b"\n") and f.tell() <= MAX_FILE_BYTES:
            line = f.readline(1 << 20)  # too long: skip the rest of it
        yield b"", False


def read_lines(path: Path) -> list[tuple[str, bytes | Error]]:
    """The lines of a claims file, raw and located; blank lines are skipped.

    Raises:
        ModelError: the file exists but cannot be opened or read.
        MalformedSignatureError: it is not a regular file.
    """
    if not os.path.lexists(path):
        return []
    fd = open_regular(path)
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            return parse_lines(f, str(path))
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)


def parse_lines(f: BinaryIO, where: str) -> list[tuple[str, bytes | Error]]:
    """The lines of claims read from ``f``, raw and located as ``where:N``, within bounds.

    Blank lines are skipped; a line that is torn, too long or past the bounds is reported
    in its place as an error, and the others are still returned.
    """
    out: list[tuple[str, bytes | Error]] = []
    for number, (line, whole) in enumerate(_lines(f), start=1):
        location = f"{where}:{number}"
        if len(out) >= MAX_LINES or f.tell() > MAX_FILE_BYTES:
            limit = f"{MAX_LINES} lines" if len(out) >= MAX_LINES else f"{MAX_FILE_BYTES >> 20} MiB"
            out.append((location, _bad(location, f"more than {limit}; not read")))
            break
        if not whole:
            problem = (
                "line is torn (no newline at its end: an interrupted write)"
                if line
                else f"line is longer than {MAX_LINE_BYTES >> 20} MiB"
            )
            out.append((location, _bad(location, problem)))
        elif line.strip():
            out.append((location, line))
    return out


def _lock(fd: int) -> None:
    with contextlib.suppress(ImportError, OSError):
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX)


def _count_lines(fd: int, size: int) -> int:
    count, offset = 0, 0
    while offset < size:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            break
        count += chunk.count(b"\n")
        offset += len(chunk)
    return count


def append_line(path: Path, data: bytes) -> str:
    """Appends ``data`` and a newline durably; returns ``path:N`` of the line written.

    Raises:
        ModelError: the file cannot be created or written, is not a regular file, or the
            line would be too long for a reader to accept.
    """
    if b"\n" in data or b"\r" in data:
        raise ModelError(f"{path}: a claims line cannot hold a line break")
    if len(data) > MAX_LINE_BYTES:
        raise ModelError(f"{path}: the bundle is larger than {MAX_LINE_BYTES >> 20} MiB")
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        raise ModelError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not _regular(st.st_mode):
            raise ModelError(f"{path}: not a regular file; refusing to append to it")
        _lock(fd)
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        line = (b"\n" if torn else b"") + data + b"\n"
        written = 0
        while written < len(line):
            written += os.write(fd, line[written:])
        os.fsync(fd)
        number = _count_lines(fd, size + len(line))
    except OSError as exc:
        raise ModelError(f"{path}: cannot write ({exc.strerror})") from None
    finally:
        os.close(fd)
    if size == 0:
        _sync_dir(path.parent)
    return f"{path}:{number}"


def _regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def _sync_dir(directory: Path) -> None:
    """Makes a new file's name durable (where directories can be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
