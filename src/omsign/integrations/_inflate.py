"""The content of a compressed stream, read forward for the pickle walk of :mod:`.unsafe`.

joblib unpickles gzip, zlib, bzip2, xz and lzma streams by content, whatever the file's
name, so their content is walked as a pickle too. A walk skips long arguments (a string
of 2 MiB ahead of the code it hides): here what is skipped is decompressed and dropped,
never kept, so memory stays bounded while the walk goes as far as the stream does, up to
:data:`LIMIT` decompressed bytes.
"""

from __future__ import annotations

import bz2
import io
import lzma
import zlib
from typing import Any, BinaryIO

__all__ = ["HOLDABLE", "LIMIT", "Inflating", "LimitError", "inflating", "read_up_to"]

# Decompressed bytes a walk may go through: past any argument of a 4-byte length.
LIMIT = (4 << 30) + (1 << 20)
# The stream's end, as the walk sees it: an unpickler reads each argument into memory, so
# nothing after an argument ending beyond this ever runs.
HOLDABLE = 1 << 40
_PIECE = 1 << 20  # decompressed per step
_INPUT = 1 << 16  # compressed bytes read per step


class LimitError(Exception):
    """The walk needs bytes past :data:`LIMIT`, and the stream goes on."""


class Inflating:
    """A compressed stream's content as a forward-only stream for the walk.

    Seeks are free until a read: what lies before the position is decompressed and
    dropped. ``behind`` bytes before the position are kept for the walk to step back.
    """

    def __init__(self, stream: BinaryIO, decompressor: Any, behind: int) -> None:
        self._stream, self._decompressor, self._behind = stream, decompressor, behind
        self._data = b""  # decompressed bytes from offset self._base
        self._base = self._pos = 0
        self._input = b""
        self._ended = False

    def _more(self) -> bool:
        """Decompresses one more piece; False at the end (or damage) of the stream.

        Raises:
            LimitError: :data:`LIMIT` bytes came out and the stream goes on.
        """
        d = self._decompressor
        try:
            while not self._ended and not d.eof:
                if not self._input and getattr(d, "needs_input", True):
                    self._input = self._stream.read(_INPUT)
                    if not self._input:
                        break
                if self._base + len(self._data) >= LIMIT:
                    raise LimitError
                out = d.decompress(self._input, _PIECE)  # bounded output
                self._input = getattr(d, "unconsumed_tail", b"")
                if out:
                    drop = min(len(self._data), max(0, self._pos - self._behind - self._base))
                    self._data = self._data[drop:] + out
                    self._base += drop
                    return True
        except (zlib.error, OSError, EOFError, lzma.LZMAError):
            pass  # judged on what came out before the damage
        self._ended = True
        return False

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            raise ValueError("the walk reads bounded sizes")
        while self._pos + size > self._base + len(self._data) and self._more():
            pass
        start = self._pos - self._base
        if start < 0:  # stepped back further than kept: no verdict is safe
            raise LimitError
        out = self._data[start : start + size]
        self._pos += len(out)
        return out

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: HOLDABLE}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True


def read_up_to(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes, or fewer at the end of the stream (a verified read stops at the end
    of a shard, so one read may return fewer)."""
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def inflating(stream: BinaryIO, behind: int) -> Inflating | None:
    """The content of ``stream`` if it is a gzip, zlib, bzip2, xz or lzma stream, else None."""
    stream.seek(0)
    magic = read_up_to(stream, 6)
    decompressor: Any
    if magic.startswith(b"\x1f\x8b"):
        decompressor = zlib.decompressobj(wbits=31)
    elif len(magic) >= 2 and magic[0] == 0x78 and int.from_bytes(magic[:2], "big") % 31 == 0:
        decompressor = zlib.decompressobj()
    elif magic.startswith(b"BZh"):
        decompressor = bz2.BZ2Decompressor()
    elif magic.startswith((b"\xfd7zXZ\x00", b"\x5d\x00\x00")):
        decompressor = lzma.LZMADecompressor()
    else:
        return None
    stream.seek(0)
    return Inflating(stream, decompressor, behind)
