"""Which files are unsafe to load: pickle in any of its disguises.

A signature says who shipped a file, not that loading it is safe: unpickling runs
code. Verified loading refuses these unless the caller allows them explicitly:
``.pt``, ``.pth``, ``.ckpt``, ``.pkl``, ``.pickle``, ``.joblib``, ``.dill``; a ``.bin``
(or any other name) that holds a pickle stream of any protocol (walked, never run, by
:mod:`._pickle_walk`) or a zip or tar archive holding a pickle (PyTorch's);
NumPy object arrays and zip archives (``.npz``) holding one, whatever their name; and
pickles compressed with gzip, zlib, bzip2, xz or lzma (``.pkl.gz``; joblib opens these by
content, so what they hold is walked too: see :mod:`._inflate`).
"""

from __future__ import annotations

import ast
import io
import tarfile
import zipfile
import zlib
from typing import Any, BinaryIO, cast

from omsign.integrations._inflate import inflating, read_up_to
from omsign.integrations._pickle_walk import LINE, walks_as_pickle

__all__ = ["PICKLE_SUFFIXES", "sniff_length", "unsafe_by_name", "unsafe_reason"]

PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".dill")
# Formats that are never unpickled: their content is not sniffed (a safetensors header
# length can begin with the bytes of a pickle protocol marker).
_SAFE_SUFFIXES = (".safetensors", ".json", ".txt", ".md", ".gguf", ".jinja", ".onnx")
_PICKLED = (".pkl", ".pickle")  # archive members that hold a pickle
_TORCH_TAR = frozenset({"pickle", "storages", "tensors"})  # PyTorch's legacy tar format
_HEAD = 4096  # bytes of a file that the checks below look at
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".lzma", ".z", ".zst", ".lz4")


def sniff_length(name: str) -> int:
    """How many leading bytes :func:`unsafe_reason` needs for this name (0: none)."""
    return 0 if name.lower().endswith(PICKLE_SUFFIXES + _SAFE_SUFFIXES) else _HEAD


def unsafe_by_name(name: str) -> str | None:
    """Why a file is unsafe by its name alone (a pickle-based suffix, compressed or not),
    or None."""
    lower = name.lower()
    while lower.endswith(_COMPRESSED_SUFFIXES):  # model.pkl.gz, as joblib and pandas write
        lower = lower.rpartition(".")[0]
    if lower.endswith(PICKLE_SUFFIXES):
        return "a pickle-based format (loading it can run code)"
    return None


def _npy_is_object(head: bytes) -> bool:
    """Whether an ``.npy`` header declares an object (pickled) dtype."""
    if not head.startswith(b"\x93NUMPY") or len(head) < 10:
        return False
    major = head[6]
    size_bytes = 2 if major == 1 else 4
    size = int.from_bytes(head[8 : 8 + size_bytes], "little")
    text = head[8 + size_bytes : 8 + size_bytes + size].decode("latin-1", "replace")
    try:
        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return True  # unreadable: numpy would refuse it too; do not guess it is safe
    descr: Any = header.get("descr") if isinstance(header, dict) else None
    try:
        from numpy.lib.format import descr_to_dtype
    except ImportError:  # without numpy: any spelling that could name an object
        return "o" in str(descr).lower()
    try:
        return bool(descr_to_dtype(descr).hasobject)
    except Exception:  # numpy refuses it: nothing to unpickle, but do not guess
        return True


def _archive_reason(stream: BinaryIO) -> str | None:
    """Why a zip archive is unsafe: a pickle member (a PyTorch archive), or a NumPy
    array member of an object dtype (``numpy.load`` reads members by content)."""
    try:
        with zipfile.ZipFile(stream) as archive:
            for member in archive.namelist():
                if member.lower().endswith(_PICKLED):
                    return f"a zip archive holding the pickle {member} (a PyTorch archive)"
                with archive.open(member) as f:
                    if _npy_is_object(f.read(_HEAD)):
                        return f"a NumPy archive whose {member} is an object array"
    except zipfile.BadZipFile:  # PyTorch's reader opens some of these (a broken zip64 locator)
        return "a zip archive whose members cannot be listed (PyTorch may still read it)"
    except (RuntimeError, NotImplementedError, ValueError, EOFError, zlib.error):
        return "a zip archive whose members cannot be checked"
    return None


class _FullReads:
    """A stream whose reads return every byte asked for, fewer only at its end."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self._stream.read()
        return read_up_to(self._stream, size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def seekable(self) -> bool:
        return True


def _tar_reason(stream: BinaryIO) -> str | None:
    """Why a tar archive is unsafe: a member PyTorch's legacy format unpickles."""
    stream.seek(0)
    try:
        with tarfile.open(fileobj=stream, mode="r:") as archive:
            for member in archive:
                if member.name in _TORCH_TAR or member.name.lower().endswith(_PICKLED):
                    return f"a tar archive holding the pickle {member.name} (a PyTorch archive)"
    except tarfile.TarError:
        return "a tar archive whose members cannot be checked"
    return None


def unsafe_reason(name: str, head: bytes, stream: BinaryIO | None = None) -> str | None:
    """Why ``name`` is unsafe to load, or None.

    Args:
        name: the file's name.
        head: its first :func:`sniff_length` bytes.
        stream: the file, seekable: a pickle is walked past long strings, and a zip
            or tar archive's members are checked.
    """
    lower = name.lower()
    by_name = unsafe_by_name(name)
    if by_name is not None:
        return by_name
    if lower.endswith(_SAFE_SUFFIXES):
        return None
    if stream is not None:  # archive readers take a short read for a truncated archive
        stream = cast("BinaryIO", _FullReads(stream))
    if walks_as_pickle(stream if stream is not None else io.BytesIO(head)):
        return "a pickle stream (loading it can run code)"
    inflated = inflating(stream if stream is not None else io.BytesIO(head), behind=2 * LINE)
    if inflated is not None and walks_as_pickle(cast("BinaryIO", inflated)):
        return "a compressed pickle stream (loading it can run code)"
    if head.startswith(b"PK\x03\x04"):
        if lower.endswith((".bin", ".pt", ".model")):
            return "a PyTorch zip archive holding a pickle (loading it can run code)"
        if stream is not None:
            return _archive_reason(stream)
    if head[257:262] == b"ustar" and stream is not None:
        return _tar_reason(stream)
    if _npy_is_object(head):
        return "a NumPy object array (loading it unpickles)"
    return None
