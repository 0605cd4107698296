"""A blob read from a registry: streamed, hashed as read, checked at its end."""

from __future__ import annotations

import hashlib
import io
from typing import Any

from omsign.oci._errors import RegistryContentError
from omsign.oci._http import finish

__all__ = ["BlobStream", "RangeStream", "read_exactly"]

_CHUNK = 1 << 20


class BlobStream(io.RawIOBase):
    """A blob's bytes as a stream, hashed as read; raises at the end if they are not the blob."""

    def __init__(self, response: Any, digest: str, size: int | None, where: str) -> None:
        self._response = response
        self._digest = digest
        self._size = size
        self._where = where
        self._hash = hashlib.sha256()
        self._count = 0
        self._done = False

    def readable(self) -> bool:
        """Always True."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Reads into ``buffer``; at the end checks size and digest."""
        if self._done:
            return 0
        view = memoryview(buffer).cast("B")
        data = self._response.read(len(view))
        if data:
            self._count += len(data)
            if self._size is not None and self._count > self._size:
                self._fail(f"is larger than its {self._size} bytes")
            self._hash.update(data)
            view[: len(data)] = data
            return len(data)
        self._done = True
        self.close()
        if self._size is not None and self._count != self._size:
            self._fail(f"has {self._count} bytes, not {self._size}")
        if "sha256:" + self._hash.hexdigest() != self._digest:
            raise RegistryContentError(
                f"{self._where}: the registry's blob does not hash to {self._digest}"
            )
        return 0

    def _fail(self, what: str) -> None:
        self.close()
        raise RegistryContentError(f"{self._where}: the registry's blob {what}")

    def close(self) -> None:
        """Releases the connection."""
        if not self.closed:
            finish(self._response)
        super().close()


class RangeStream(io.RawIOBase):
    """Part of a blob as a stream, at most ``limit`` bytes (unchecked: a part cannot be)."""

    def __init__(self, response: Any, limit: int | None) -> None:
        self._response = response
        self._left = limit

    def readable(self) -> bool:
        """Always True."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Reads into ``buffer``; 0 at the end of the part."""
        if self._response is None or self._left == 0:
            return 0
        view = memoryview(buffer).cast("B")
        want = len(view) if self._left is None else min(len(view), self._left)
        data = self._response.read(want)
        view[: len(data)] = data
        if self._left is not None:
            self._left -= len(data)
        return len(data)

    def close(self) -> None:
        """Releases the connection."""
        if not self.closed and self._response is not None:
            finish(self._response)
        super().close()


def read_exactly(response: Any, size: int) -> bytes:
    """Reads ``size`` bytes of a response (fewer only at its end)."""
    parts: list[bytes] = []
    left = size
    while left > 0:
        chunk = response.read(min(left, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
