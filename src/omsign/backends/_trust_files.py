"""Bounded reading of the files that say whom to trust: keys, certificates, trust configs.

These files come from the user, not from the model, but a wrong path (``/dev/zero``, a
FIFO, a huge or deeply nested file) must still end as one line naming the file, never a
hang or a traceback. A file must be a regular file (checked on the open descriptor,
before any byte is read, without blocking) and is read up to a size limit.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from omsign.errors import KeyLoadError

__all__ = [
    "MAX_KEY_FILE_BYTES",
    "MAX_TRUST_CONFIG_BYTES",
    "load_trust_json",
    "read_trust_file",
    "read_trust_json",
]

MAX_KEY_FILE_BYTES = 1 << 20  # a PEM key or a chain of a few hundred certificates
MAX_TRUST_CONFIG_BYTES = 4 << 20  # Sigstore's public trusted root is about 10 KiB
MAX_JSON_DEPTH = 32  # a trusted root nests 6 levels deep
MAX_JSON_VALUES = 100_000  # arrays, objects and commas; a trusted root has a few hundred


def read_trust_file(path: str | os.PathLike[str], what: str, limit: int) -> bytes:
    """Reads a small regular file, refusing anything else before reading it.

    Args:
        path: the file.
        what: what the file should hold, for messages ("public key", "trust config").
        limit: the largest size accepted, in bytes.

    Raises:
        KeyLoadError: missing, unreadable, not a regular file, or larger than ``limit``.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise KeyLoadError(f"{path}: {what} file not found") from None
    except OSError as exc:
        raise KeyLoadError(f"{path}: cannot read {what} ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise KeyLoadError(f"{path}: is a directory, not a {what} file")
        if not stat.S_ISREG(st.st_mode):
            raise KeyLoadError(f"{path}: not a regular file (a FIFO, socket or device)")
        if st.st_size > limit:
            raise KeyLoadError(f"{path}: too large for a {what} file (over {_size(limit)})")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise KeyLoadError(f"{path}: cannot read {what} ({exc.strerror})") from None
    finally:
        os.close(fd)
    if len(data) > limit:  # grew while being read
        raise KeyLoadError(f"{path}: too large for a {what} file (over {_size(limit)})")
    return data


def read_trust_json(path: str | os.PathLike[str], what: str = "trust config") -> str:
    """Reads a JSON trust file as text, after checking its size, value count and nesting.

    Raises:
        KeyLoadError: unreadable, too large, nested too deeply or not UTF-8.
    """
    from omsign._json import ShapeError, check_shape

    data = read_trust_file(path, what, MAX_TRUST_CONFIG_BYTES)
    try:
        check_shape(data, max_values=MAX_JSON_VALUES, max_depth=MAX_JSON_DEPTH)
        return data.decode("utf-8")
    except ShapeError as exc:
        raise KeyLoadError(f"{path}: not a usable {what} ({exc})") from None
    except UnicodeDecodeError:
        raise KeyLoadError(f"{path}: not a usable {what} (not UTF-8 text)") from None


def load_trust_json(path: str | os.PathLike[str], what: str = "trust config") -> Any:
    """Reads and parses a JSON trust file with the limits of :func:`read_trust_json`.

    Raises:
        KeyLoadError: unreadable, too large, nested too deeply or not valid JSON.
    """
    from omsign._json import load_json

    text = read_trust_json(path, what)
    try:
        return load_json(text)
    except (ValueError, RecursionError) as exc:
        raise KeyLoadError(f"{path}: not valid JSON ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit} bytes"
