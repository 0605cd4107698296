"""Reading a model's bytes for hashing: a small reader protocol and its local implementation.

The hashing engine never opens files itself: a :class:`Reader` opens an entry and gives
an :class:`OpenEntry` that reads byte ranges and checks, once the entry has been hashed,
that it did not change meanwhile. A reader is a small picklable value, so it travels
with the units to whatever runs them (threads, a process pool, a cluster). The local
reader is the default; a remote source (a registry, object storage) supplies its own.

The local reader opens every file without following links (unless it was enumerated
through an allowed link), checks it is the very file that was enumerated (device and
inode), reads with ``pread`` and checks again after hashing (size, modification and
change time), so a file swapped or modified while it is read is reported instead of
silently hashed. Files are never memory-mapped: a mapped file truncated by another
process kills the reader with SIGBUS, and a verifier must fail with an error instead.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from typing import Protocol

from omsign.errors import ModelError
from omsign.hashing._walk import FileEntry

__all__ = [
    "ChangedWhileHashingError",
    "EntryLike",
    "LocalReader",
    "OpenEntry",
    "Reader",
    "open_checked",
    "shrank",
]


class ChangedWhileHashingError(ModelError):
    """A file was replaced, grew, shrank or was modified while it was being hashed."""


class EntryLike(Protocol):
    """What the plan needs to know of an entry: its resource name and its size."""

    @property
    def name(self) -> str:
        """Canonical model-relative name."""
        ...

    @property
    def size(self) -> int:
        """Size in bytes when the model was listed."""
        ...


class OpenEntry(Protocol):
    """An entry opened for range reads."""

    def read(self, offset: int, size: int) -> bytes | memoryview:
        """Returns up to ``size`` bytes from ``offset``; fewer (or none) only at the end.

        A reader that holds a larger block may return a view into it instead of a copy.
        """
        ...

    def check_unchanged(self) -> None:
        """Raises :class:`ChangedWhileHashingError` if the entry changed since it was listed."""
        ...

    def close(self) -> None:
        """Releases the entry."""
        ...


class Reader(Protocol):
    """Opens entries for hashing; must be picklable to run on other processes.

    A reader may also define ``check_entries(entries)``: the engine calls it once every
    unit of a run is hashed, in the calling process, with each entry of the run once. A
    reader whose every read is pinned to the version listed (object storage) looks its
    entries up again there, once per entry and run, instead of after each batch.
    """

    def open(self, entry: EntryLike) -> OpenEntry:
        """Opens ``entry``, checking it is still the entry that was listed.

        Raises:
            ModelError: the entry cannot be opened.
            ChangedWhileHashingError: it was replaced since it was listed.
        """
        ...


def shrank(entry: EntryLike) -> ChangedWhileHashingError:
    """The error for an entry that ended before its listed size."""
    where = entry.path if isinstance(entry, FileEntry) else entry.name
    return ChangedWhileHashingError(f"{where}: file shrank while it was being hashed")


def open_checked(entry: FileEntry) -> int:
    """Opens the enumerated file and checks it is still the same regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not entry.via_link:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(entry.path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ChangedWhileHashingError(
                f"{entry.path}: was replaced by a symbolic link after it was listed"
            ) from None
        raise ModelError(f"{entry.path}: cannot open ({exc.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (entry.device, entry.inode):
        os.close(fd)
        raise ChangedWhileHashingError(f"{entry.path}: was replaced while the model was read")
    return fd


class _LocalFile:
    """A local file opened by :func:`open_checked`."""

    __slots__ = ("entry", "fd")

    def __init__(self, entry: FileEntry) -> None:
        self.entry = entry
        self.fd = open_checked(entry)

    def read(self, offset: int, size: int) -> bytes:
        try:
            return os.pread(self.fd, size, offset)
        except OSError as exc:  # a failing disk, or a kernel file that refuses reads
            raise ModelError(f"{self.entry.path}: cannot read ({exc.strerror})") from None

    def readinto(self, offset: int, buffer: memoryview) -> int:
        """Reads into ``buffer`` from ``offset``; returns the bytes read (0 at the end)."""
        try:
            if hasattr(os, "preadv"):
                return os.preadv(self.fd, [buffer], offset)
            data = os.pread(self.fd, len(buffer), offset)  # pragma: no cover - no preadv
        except OSError as exc:
            raise ModelError(f"{self.entry.path}: cannot read ({exc.strerror})") from None
        buffer[: len(data)] = data  # pragma: no cover - no preadv
        return len(data)  # pragma: no cover - no preadv

    def check_unchanged(self) -> None:
        st = os.fstat(self.fd)
        e = self.entry
        if (st.st_size, st.st_mtime_ns, st.st_ctime_ns) != (e.size, e.mtime_ns, e.ctime_ns):
            raise ChangedWhileHashingError(f"{e.path}: file changed while it was being hashed")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass(frozen=True, slots=True)
class LocalReader:
    """Reads enumerated local files (:class:`FileEntry`), checked as described above."""

    def open(self, entry: EntryLike) -> OpenEntry:
        """Opens a :class:`FileEntry` from :func:`enumerate_model`."""
        if not isinstance(entry, FileEntry):
            raise TypeError(f"the local reader reads enumerated files, not {type(entry).__name__}")
        return _LocalFile(entry)
