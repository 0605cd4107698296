"""A signed file opened for verified reads: bytes are served only once proven.

:class:`VerifiedFile` reads each piece of a file (the whole file for ``files``
signatures, one shard for ``shards``) once, hashing it into a private copy (memory, or
an unlinked temporary file for a piece over 128 MiB) and comparing the digest before any
byte of it is returned. :meth:`VerifiedFile.read_into_verified` reads a whole file once
straight into a caller's buffer (:func:`omsign._memory.new_buffer`), for loaders that
drop the buffer if it raises: each chunk is hashed in that buffer while a second thread
reads the next one, so loading costs one read and one hash per byte, on two cores even
for one file.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, cast

from omsign._memory import MemoryReader, TensorMemory
from omsign.errors import IntegrityError, ModelError, UnsafeFormatError
from omsign.hashing import new_hasher

__all__ = ["Piece", "VerifiedFile", "unsafe_error"]

_SPOOL = 128 << 20  # pieces larger than this are copied to an unlinked temporary file
_CHUNK = 1 << 20
_PIPE_CHUNK = 2 << 20  # bytes read per call straight into a caller's buffer
_KEEP = 2  # verified pieces kept per open file


@dataclass(frozen=True)
class Piece:
    """Bytes ``[start, end)`` of a file and their signed digest."""

    start: int
    end: int
    digest: bytes


class _Proven:
    """The verified bytes of one piece, in memory or in a private temporary file."""

    def __init__(self, data: bytearray | None, spool: BinaryIO | None) -> None:
        self._data = data
        self._spool = spool

    def read(self, offset: int, size: int) -> bytes:
        if self._data is not None:
            return bytes(self._data[offset : offset + size])
        assert self._spool is not None
        return os.pread(self._spool.fileno(), size, offset)

    def whole(self) -> bytes | None:
        return bytes(self._data) if self._data is not None else None

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


class VerifiedFile(io.RawIOBase):
    """A read-only, seekable view of a signed file that serves only proven bytes.

    Obtained from :meth:`VerifiedModel.open` (wrapped in a buffered reader).
    """

    def __init__(
        self,
        name: str,
        fd: int,
        pieces: list[Piece],
        algorithm: str,
        on_proven: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.size = pieces[-1].end if pieces else 0
        self._fd = fd
        self._pieces = pieces
        self._algorithm = algorithm
        self._on_proven = on_proven  # told the size once the end of the file is proven
        self._pos = 0
        self._proven: OrderedDict[int, _Proven] = OrderedDict()
        self.sniff = False  # refuse pickle content at the first read (set by open_raw)
        self.refusal_note = ""  # added to a refusal's reason (set by open_raw)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self.sniff:
            self._refuse_unsafe()
        view = memoryview(buffer).cast("B")
        if not len(view):
            return 0
        if self._pos >= self.size:
            if self._pieces:  # end of file: only once the last piece (and length) is proven
                self._verified(len(self._pieces) - 1)
            return 0
        index = self._index(self._pos)
        piece = self._pieces[index]
        n = min(len(view), piece.end - self._pos)
        view[:n] = self._verified(index).read(self._pos - piece.start, n)
        self._pos += n
        return n

    def _refuse_unsafe(self) -> None:
        """Refuses pickle content; reads (verified) only the bytes the checks need.

        Until a verdict is reached every read checks again: a check that fails (a piece
        changed on disk while it was read) leaves the file to be judged at the next read.
        """
        from omsign.integrations.unsafe import sniff_length

        self.sniff = False  # the checks' own reads
        pos = self._pos
        try:
            self._pos = 0
            head = bytearray(min(sniff_length(self.name), self.size))
            got, n = 0, 1
            while got < len(head) and n:  # a read stops at the end of a shard
                n = self.readinto(memoryview(head)[got:])
                got += n
            self._judge(bytes(head[:got]), self)
        except BaseException:
            self.sniff = True
            raise
        finally:
            self._pos = pos

    def _judge(self, head: bytes, stream: io.RawIOBase) -> None:
        """Refuses pickle content, from ``head`` (the file's first bytes, proven) and what
        the checks read of ``stream`` (this file, verified, or the proven bytes)."""
        from omsign.integrations.unsafe import unsafe_reason

        pos = self._pos
        try:
            reason = unsafe_reason(self.name, head, cast("BinaryIO", stream))
        finally:
            self._pos = pos
        if reason is not None:
            self.sniff = True  # every later read is refused too
            raise unsafe_error(self.name, reason + self.refusal_note)

    def peek(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``, NOT verified: only to plan a whole-file read.

        Whatever is planned from these bytes must be checked against what that read
        delivers (and so proves).
        """
        return os.pread(self._fd, max(0, min(size, self.size - offset)), offset)

    def read_into_verified(self, buffer: Any, *, overlap: bool = True) -> None:
        """Reads the whole file once, straight into ``buffer`` (of the file's size), hashing
        as it goes; raises if any piece differs. On an exception ``buffer`` holds unproven
        bytes and must be dropped. No private copy is made (one read, no extra copy).

        Args:
            buffer: a writable buffer of the file's size, e.g. from
                :func:`omsign._memory.new_buffer` (whose pages are then populated just
                ahead of the reads that fill them).
            overlap: read the next chunk in a second thread while this one hashes the
                current one (both release the GIL), so a lone file uses two cores.

        Raises:
            IntegrityError: a piece differs from the signature, or the size changed.
            UnsafeFormatError: pickle content, unless the file was opened allowing it.
        """
        target = memoryview(buffer).cast("B")
        if target.nbytes != self.size:
            raise ValueError("the buffer must have the file's size")
        sniff = self.sniff
        if sniff:  # refused early if the bytes on disk already say so (not proven yet)
            from omsign.integrations.unsafe import sniff_length, unsafe_reason

            reason = unsafe_reason(self.name, self.peek(0, sniff_length(self.name)))
            if reason is not None:
                raise unsafe_error(self.name, reason + self.refusal_note)
        with contextlib.ExitStack() as stack:
            reader = None
            if overlap and self.size > _PIPE_CHUNK:
                reader = stack.enter_context(
                    ThreadPoolExecutor(max_workers=1, thread_name_prefix="omsign-read")
                )
            prepare = buffer.prepare if isinstance(buffer, TensorMemory) else None
            for i, piece in enumerate(self._pieces):
                self._hash_into(piece, i == len(self._pieces) - 1, target, reader, prepare)
        if sniff:  # judged again on the proven bytes: the disk may have changed since
            self.sniff = False
            with MemoryReader(target) as proven:
                self._judge(bytes(target[: sniff_length(self.name)]), proven)

    def _hash_into(
        self,
        piece: Piece,
        last: bool,
        target: memoryview,
        reader: ThreadPoolExecutor | None,
        prepare: Callable[[int], None] | None,
    ) -> None:
        """Reads a piece straight into ``target`` (indexed by file offset) and hashes it
        there; with ``reader``, chunk k+1 is read while chunk k is hashed. ``prepare(end)``
        readies the memory up to ``end`` before a chunk is read into it.

        Raises:
            IntegrityError: the piece differs from the signature, or the size changed.
        """

        def read(offset: int) -> memoryview:
            end = min(offset + _PIPE_CHUNK, piece.end)
            if prepare is not None:
                prepare(end)
            chunk = target[offset:end]
            return chunk[: self._read_into(chunk, offset)]

        hasher = new_hasher(self._algorithm)
        offset = piece.start
        ahead = reader.submit(read, offset) if reader is not None and offset < piece.end else None
        while offset < piece.end:
            chunk = read(offset) if ahead is None else ahead.result()
            if not chunk:
                raise self._shorter()
            offset += len(chunk)
            if reader is not None and offset < piece.end:
                ahead = reader.submit(read, offset)  # read the next chunk while this one hashes
            hasher.update(chunk)
        self._check(piece, last, hasher.digest())

    def read_all_verified(self) -> bytes:
        """Every byte of the file, each piece verified before it is copied out."""
        if self.sniff:
            self._refuse_unsafe()
        if len(self._pieces) == 1:
            whole = self._verified(0).whole()
            if whole is not None:
                return whole
        out = bytearray(self.size)
        for i, piece in enumerate(self._pieces):
            out[piece.start : piece.end] = self._verified(i).read(0, piece.end - piece.start)
        return bytes(out)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
            for proven in self._proven.values():
                proven.close()
            self._proven.clear()
        super().close()

    def _index(self, pos: int) -> int:
        lo, hi = 0, len(self._pieces) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._pieces[mid].start <= pos:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _verified(self, index: int) -> _Proven:
        if index in self._proven:
            self._proven.move_to_end(index)
            return self._proven[index]
        last = index == len(self._pieces) - 1
        proven = self._prove(self._pieces[index], last=last)
        self._proven[index] = proven
        if last and self._on_proven is not None:
            self._on_proven(self.size)
        while len(self._proven) > _KEEP:
            self._proven.popitem(last=False)[1].close()
        return proven

    def _hash_piece(self, piece: Piece, last: bool, sink: Callable[[int, bytes], None]) -> None:
        """Reads a piece once, hashing it; each chunk goes to ``sink(offset, chunk)``.

        Exactly the piece's bytes are read (one more at the end of the last piece, to
        catch growth); the digest is compared once the piece is read.

        Raises:
            IntegrityError: the piece differs from the signature, or the size changed.
        """
        hasher = new_hasher(self._algorithm)
        offset = piece.start
        while offset < piece.end:
            chunk = self._read(min(_CHUNK, piece.end - offset), offset)
            if not chunk:
                raise self._shorter()
            hasher.update(chunk)
            sink(offset, chunk)
            offset += len(chunk)
        self._check(piece, last, hasher.digest())

    def _shorter(self) -> IntegrityError:
        return IntegrityError(
            f"{self.name}: file is shorter than signed (changed after verification)"
        )

    def _check(self, piece: Piece, last: bool, digest: bytes) -> None:
        """Compares a piece's digest; at the end of the file, checks that it ends there."""
        if last and self._read(1, piece.end):
            raise IntegrityError(
                f"{self.name}: file is longer than signed (changed after verification)"
            )
        if not hmac.compare_digest(digest, piece.digest):
            raise IntegrityError(
                f"{self.name}: bytes {piece.start}-{piece.end} do not match the signature "
                "(changed after signing or after verification)"
            )

    def _prove(self, piece: Piece, last: bool) -> _Proven:
        """Reads a piece once into a private copy, hashing it; compares before use.

        A copy too large for the temporary folder is refused before anything is read.
        """
        length = piece.end - piece.start
        with contextlib.ExitStack() as cleanup:
            spool = cleanup.enter_context(self._spool(length)) if length > _SPOOL else None
            data = None if spool is not None else bytearray(length)

            def keep(offset: int, chunk: bytes) -> None:
                if spool is not None:
                    self._keep(spool, chunk)
                else:
                    assert data is not None
                    data[offset - piece.start : offset - piece.start + len(chunk)] = chunk

            self._hash_piece(piece, last, keep)
            if spool is not None:
                self._keep(spool, b"")
            cleanup.pop_all()  # the proven copy stays open
        return _Proven(data, spool)

    def _read_into(self, view: memoryview, offset: int) -> int:
        try:
            return os.preadv(self._fd, [view], offset)
        except OSError as exc:
            raise ModelError(f"{self.name}: cannot read ({exc.strerror})") from None

    def _read(self, size: int, offset: int) -> bytes:
        try:
            return os.pread(self._fd, size, offset)
        except OSError as exc:
            raise ModelError(f"{self.name}: cannot read ({exc.strerror})") from None

    def _spool(self, length: int) -> BinaryIO:
        """An unlinked temporary file with room for ``length`` bytes."""
        try:
            spool = tempfile.TemporaryFile()  # noqa: SIM115 - kept open past this call
        except OSError as exc:
            raise ModelError(
                f"{self.name}: cannot create the private copy in {tempfile.gettempdir()} "
                f"({exc.strerror})"
            ) from None
        try:
            vfs = os.fstatvfs(spool.fileno())
            # The copy must leave room: 5% of the file system, at most 1 GiB.
            reserve = min(1 << 30, vfs.f_blocks * vfs.f_frsize // 20)
            room = vfs.f_bavail * vfs.f_frsize - reserve
        except OSError:
            room = length  # unknown: the writes will tell
        if room < length:
            spool.close()
            raise ModelError(
                f"{self.name}: checking its {length} bytes needs a private copy, but only "
                f"{max(room, 0)} bytes can be spared in {tempfile.gettempdir()}; refusing to "
                "fill the disk (set TMPDIR to a larger folder if the file really is this large)"
            )
        return spool

    def _keep(self, spool: BinaryIO, chunk: bytes) -> None:
        try:
            if chunk:
                spool.write(chunk)
            else:
                spool.flush()
        except OSError as exc:
            raise ModelError(
                f"{self.name}: cannot write the private copy in {tempfile.gettempdir()} "
                f"({exc.strerror})"
            ) from None


def unsafe_error(name: str, reason: str) -> UnsafeFormatError:
    return UnsafeFormatError(
        f"{name}: refused: {reason}",
        hint="pass {option} only for files whose source you trust",
        option="allow_pickle",
    )
