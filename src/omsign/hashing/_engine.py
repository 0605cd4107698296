"""The parallel hashing engine: whole files or byte ranges, spread over every core.

Work is cut into units (a whole file in ``files`` mode, one shard in ``shards`` mode),
small units are batched so that per-task overhead stays negligible, and batches run
on a thread pool. Hashing and reading release the GIL, so threads use every core.
Each thread reuses one buffer, so memory stays constant whatever the model's size.

Every file is opened without following links (unless it was enumerated through an
allowed link), checked to be the very file that was enumerated (device and inode)
and checked again after hashing (size, modification and change time), so a file
swapped or modified while it is read is reported instead of silently hashed.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from omsign.errors import ModelError
from omsign.hashing._algorithms import new_hasher
from omsign.hashing._walk import FileEntry

__all__ = ["ChangedWhileHashingError", "Unit", "hash_units", "plan_units", "worker_count"]

_BUFFER = 1 << 20  # bytes read per call, per thread
_BIG_BUFFER = 16 << 20  # for blake3's internal threads on large inputs
_BATCH_BYTES = 32 << 20  # small units are grouped until a batch holds this much
_BATCH_UNITS = 256
_BLAKE3_THREADED = 64 << 20  # a blake3 unit this large hashes with internal threads

Progress = Callable[[int], None]


class ChangedWhileHashingError(ModelError):
    """A file was replaced, grew, shrank or was modified while it was being hashed."""


@dataclass(frozen=True, slots=True)
class Unit:
    """One piece of work: bytes ``[start, end)`` of ``entry``."""

    entry: FileEntry
    start: int
    end: int
    name: str


def worker_count(workers: int | None = None) -> int:
    """The number of hashing threads: ``workers`` or the CPUs this process may use."""
    if workers is not None and workers > 0:
        return workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def plan_units(entries: Sequence[FileEntry], shard_size: int | None) -> list[Unit]:
    """Cuts files into units: one per file, or one per shard (OMS 6.3.2).

    In shards mode, empty files produce no unit and each name is ``path:start:end``.
    """
    if shard_size is None:
        return [Unit(e, 0, e.size, e.name) for e in entries]
    units = []
    for e in entries:
        for start in range(0, e.size, shard_size):
            end = min(start + shard_size, e.size)
            units.append(Unit(e, start, end, f"{e.name}:{start}:{end}"))
    return units


def _batches(units: Sequence[Unit]) -> Iterator[tuple[int, int]]:
    """Yields index ranges of consecutive units, grouping small ones."""
    begin, size = 0, 0
    for i, unit in enumerate(units):
        size += unit.end - unit.start
        if size >= _BATCH_BYTES or i + 1 - begin >= _BATCH_UNITS:
            yield begin, i + 1
            begin, size = i + 1, 0
    if begin < len(units):
        yield begin, len(units)


def _open_checked(entry: FileEntry) -> int:
    """Opens the enumerated file and checks it is still the same regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not entry.via_link:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(entry.path, flags)
    except OSError as exc:
        if exc.errno == getattr(os, "ELOOP", -1):
            raise ChangedWhileHashingError(
                f"{entry.path}: was replaced by a symbolic link after it was listed"
            ) from None
        raise ModelError(f"{entry.path}: cannot open ({exc.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) != (entry.device, entry.inode):
        os.close(fd)
        raise ChangedWhileHashingError(f"{entry.path}: was replaced while the model was read")
    return fd


class _Hashing:
    """Shared state of one hashing run."""

    def __init__(self, algorithm: str, threads: int, progress: Progress | None) -> None:
        self.algorithm = algorithm
        self.threads = threads
        self.progress = progress
        self.local = threading.local()

    def buffer(self, size: int) -> memoryview:
        buf: bytearray | None = getattr(self.local, "buf", None)
        if buf is None or len(buf) < size:
            buf = bytearray(size)
            self.local.buf = buf
        return memoryview(buf)

    def hash_unit(self, fd: int, unit: Unit) -> bytes:
        length = unit.end - unit.start
        threaded = self.algorithm == "blake3" and length >= _BLAKE3_THREADED and self.threads > 1
        hasher = new_hasher(self.algorithm, self.threads if threaded else 1)
        view = self.buffer(_BIG_BUFFER if threaded else _BUFFER)
        offset, remaining = unit.start, length
        while remaining:
            want = min(remaining, len(view))
            got = os.preadv(fd, [view[:want]], offset)
            if got <= 0:
                raise ChangedWhileHashingError(
                    f"{unit.entry.path}: file shrank while it was being hashed"
                )
            hasher.update(view[:got])
            offset += got
            remaining -= got
            if self.progress is not None:
                self.progress(got)
        return hasher.digest()

    def run_batch(self, units: Sequence[Unit]) -> list[bytes]:
        out: list[bytes] = []
        fd, current = -1, None
        try:
            for unit in units:
                if unit.entry is not current:
                    if fd >= 0:
                        _check_unchanged(fd, current)
                        os.close(fd)
                        fd = -1
                    current = unit.entry
                    fd = _open_checked(current)
                out.append(self.hash_unit(fd, unit))
            if fd >= 0:
                _check_unchanged(fd, current)
        finally:
            if fd >= 0:
                os.close(fd)
        return out


def _check_unchanged(fd: int, entry: FileEntry | None) -> None:
    assert entry is not None
    st = os.fstat(fd)
    if (st.st_size, st.st_mtime_ns, st.st_ctime_ns) != (entry.size, entry.mtime_ns, entry.ctime_ns):
        raise ChangedWhileHashingError(f"{entry.path}: file changed while it was being hashed")


def hash_units(
    units: Sequence[Unit],
    algorithm: str,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[bytes]:
    """Hashes every unit; returns the raw digests in the order of ``units``.

    Args:
        units: from :func:`plan_units`; units of one file should be adjacent.
        algorithm: a registry identifier.
        workers: number of threads (default: every usable CPU).
        progress: called with a byte count as data is hashed (from worker threads).

    Raises:
        ModelError: a file cannot be opened.
        ChangedWhileHashingError: a file was replaced or changed while it was read.
    """
    threads = worker_count(workers)
    state = _Hashing(algorithm, threads, progress)
    ranges = list(_batches(units))
    if threads == 1 or len(ranges) == 1:
        return [d for b, e in ranges for d in state.run_batch(units[b:e])]
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="omsign-hash") as pool:
        futures = [pool.submit(state.run_batch, units[b:e]) for b, e in ranges]
        try:
            return [d for f in futures for d in f.result()]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
