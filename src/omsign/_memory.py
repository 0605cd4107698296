"""Memory for loaded tensors: private anonymous pages, on Linux huge pages where they pay.

Reading a file into fresh memory costs more than reading it into one reused buffer: each
4 KiB page is faulted in, zeroed and mapped as the read first writes it (about 0.3-0.45
CPU-seconds per GiB measured, as much as hashing a third of the bytes). Transparent huge
pages remove most of that (one fault maps 2 MiB: about 0.15 CPU-seconds per GiB), when
free 2 MiB blocks are at hand: a huge page fault that finds none may stall in direct
compaction, and a virtual machine that reports its free memory to the host (a balloon
device) has its free 2 MiB blocks dropped by the host, so that a huge page taken from one
costs the host's faults as well (0.6-1.1 CPU-seconds per GiB measured). So
:func:`new_buffer` asks for huge pages (``MADV_HUGEPAGE``) only when the kernel's free
lists (``/proc/buddyinfo``) hold twice the buffer in free blocks of that size and no
balloon device reports free memory; those pages are then populated just ahead of the reads
that fill them (``MADV_POPULATE_WRITE``, a few MiB per call, without the GIL), which costs
less than faulting them in from inside the read. Everywhere else (another system, an older
kernel, huge pages disabled or scarce) the memory is plain private anonymous pages faulted
in by the reads: the bytes and the guarantees are the same either way.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import glob
import io
import mmap
import sys
from collections.abc import Callable
from typing import Any

from omsign.errors import ModelError

__all__ = ["MemoryReader", "TensorMemory", "check_room", "new_buffer"]

_HUGE_MIN = 32 << 20  # smaller buffers keep 4 KiB pages
_FILL = 8 << 20  # bytes populated per call, ahead of the reads
_MADV_POPULATE_WRITE = 23  # Linux 5.14; Python's mmap module names it from 3.13 only
_THP = "/sys/kernel/mm/transparent_hugepage/"
_BUDDYINFO = "/proc/buddyinfo"
_MEMINFO = "/proc/meminfo"
_BALLOONS = "/sys/bus/virtio/drivers/virtio_balloon/virtio*/features"
_populate = {"works": True}  # cleared when the kernel does not know MADV_POPULATE_WRITE


class TensorMemory(mmap.mmap):
    """Private anonymous memory, with huge pages populated ahead of the reads when they pay.

    ``huge`` tells whether huge pages were asked for; :meth:`prepare` is then called with
    each range before it is written.
    """

    huge = False
    _address = 0
    _ready = 0

    def prepare(self, end: int) -> None:
        """Populates the pages up to ``end`` (and a few MiB beyond) if huge pages were asked for.

        Only an optimisation: on any error the pages are left to be faulted in by the read.
        """
        if not self.huge or end <= self._ready or self.closed or not _populate["works"]:
            return
        madvise = _madvise()
        if madvise is None:  # pragma: no cover - huge is only set where madvise exists
            return
        page = mmap.PAGESIZE
        stop = min(-(-max(end, self._ready + _FILL) // page), -(-len(self) // page)) * page
        start = self._address + self._ready
        if madvise(start, stop - self._ready, _MADV_POPULATE_WRITE) != 0:
            if ctypes.get_errno() == errno.EINVAL:
                _populate["works"] = False  # an older kernel
            self.huge = False  # the reads fault in the rest
            return
        self._ready = stop


class MemoryReader(io.RawIOBase):
    """A read-only, seekable stream over bytes in memory (no copy is made)."""

    def __init__(self, view: memoryview) -> None:
        super().__init__()
        self._view = view
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        out = memoryview(buffer).cast("B")
        n = max(0, min(len(out), len(self._view) - self._pos))
        out[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        self._view = memoryview(b"")  # the caller's buffer is no longer referenced
        super().close()


def new_buffer(size: int) -> TensorMemory | bytearray:
    """A writable buffer of ``size`` bytes for :meth:`VerifiedFile.read_into_verified`.

    Private anonymous memory: unlike ``bytearray(size)``, nothing is zeroed up front
    while holding the GIL; the kernel supplies zeroed pages as they are first touched.
    Private, so a child process forked later gets a copy-on-write view and cannot change
    this process' tensors (anonymous shared memory would let it, and costs more per page).
    On Linux a large buffer is backed by huge pages when enough are free (see the module).
    The memory is released when the last view of it (a tensor) is released.
    """
    if size == 0:
        return bytearray()
    if not hasattr(mmap, "MAP_PRIVATE"):  # pragma: no cover - Windows: anonymous is private
        return TensorMemory(-1, size)
    memory = TensorMemory(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if size >= _HUGE_MIN and _populate["works"] and _madvise() and _huge_pages_pay(size):
        try:
            memory.madvise(mmap.MADV_HUGEPAGE)
        except (OSError, AttributeError):
            return memory
        anchor = ctypes.c_char.from_buffer(memory)  # an export, released just below
        memory._address = ctypes.addressof(anchor)
        del anchor
        memory.huge = True
    return memory


def check_room(name: str, size: int, *, whose: str = "its") -> None:
    """Refuses to read a whole file of ``size`` bytes into memory the machine does not have.

    ``whose`` says in the message whose bytes they are (``"its shards'"`` for an index).

    A ``files`` signature does not record sizes, so a file checked as it is read may have
    been grown on disk since it was signed; without this check its read would take memory
    until the kernel kills a process, long before the digest differs at the end.

    Raises:
        ModelError: more than the memory (and swap) available now, on Linux.
    """
    room = _available_memory()
    if room is not None and size > room:
        raise ModelError(
            f"{name}: loading {whose} {size} bytes needs that much memory, but only {room} "
            "bytes are available"
        )


def _available_memory() -> int | None:
    """Bytes of memory and swap available now (``/proc/meminfo``), or None if unknown."""
    try:
        with open(_MEMINFO) as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        kib = int(fields["MemAvailable"].split()[0]) + int(fields["SwapFree"].split()[0])
    except (OSError, KeyError, ValueError, IndexError):
        return None
    return kib * 1024


def _huge_pages_pay(size: int) -> bool:
    """Whether huge pages are enabled, backed by memory, and twice ``size`` of them free."""
    if _reported_to_hypervisor():
        return False
    try:
        with open(_THP + "enabled") as f:
            if "[never]" in f.read():
                return False
        with open(_THP + "hpage_pmd_size") as f:
            huge = int(f.read())
        with open(_BUDDYINFO) as f:
            free = free_huge_bytes(f.read(), huge, mmap.PAGESIZE)
    except (OSError, ValueError):
        return False
    return free >= 2 * size


def free_huge_bytes(buddyinfo: str, huge: int, page: int) -> int:
    """Bytes in free blocks of at least ``huge`` bytes, from the text of ``/proc/buddyinfo``.

    Each line reads ``Node 0, zone Normal c0 c1 ...``: ``ck`` free blocks of ``page << k``.
    """
    total = 0
    for line in buddyinfo.splitlines():
        counts = line.partition("zone")[2].split()[1:]
        for order, count in enumerate(counts):
            if page << order >= huge:
                total += int(count) * (page << order)
    return total


@functools.cache
def _reported_to_hypervisor() -> bool:
    """Whether free huge blocks are handed back to a hypervisor (free page reporting).

    A virtual machine whose balloon device reports free memory (virtio-balloon with
    VIRTIO_BALLOON_F_REPORTING, feature bit 5) gives every free 2 MiB block back to the
    host, which drops it; a huge page taken from one then costs the host's faults too,
    measured at 0.6-1.1 CPU-seconds per GiB against 0.3 for 4 KiB pages (which mostly come
    from smaller, still backed, free blocks).
    """
    for features in glob.glob(_BALLOONS):
        try:
            with open(features) as f:
                if f.read()[5:6] == "1":
                    return True
        except OSError:
            continue
    return False


@functools.cache
def _madvise() -> Callable[[int, int, int], int] | None:
    """libc's ``madvise``, called without the GIL (a populate may take a while), on Linux."""
    if not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_HUGEPAGE"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):  # pragma: no cover - a libc without madvise
        return None
    function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    function.restype = ctypes.c_int
    return function
