"""A verified file for loaders that take a path (llama.cpp, GGUF readers).

>>> from omsign.integrations.gguf import verified_path
>>> with verified_path("my-model", "model.Q4_K_M.gguf", key="public.pem") as path:
...     llm = Llama(model_path=path)                                    # doctest: +SKIP

A path handed to another program is read after the check, so a check-then-open gap
is where a swapped file would slip in. ``verified_path`` closes it: the file's bytes
are verified as they are copied, once, into a place nobody else can change:

- on Linux, a sealed in-memory file (``memfd_create`` with write, grow, shrink and seal
  seals), named ``/proc/<pid>/fd/<n>``: this process and its children (llama.cpp, a
  subprocess) can open it, nobody can write it, and it disappears with the process.
  It occupies memory (or swap) the size of the file. The file is read once, straight
  into that memory, and hashed there (costing about what verifying it alone costs); the
  path is handed out only once the digest matches;
- elsewhere, a private copy in a new folder of mode 0700, removed when the context
  ends; another process of the same user could change it, which the memory file rules
  out.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

from omsign._memory import check_room
from omsign.errors import ModelError
from omsign.loading import VerifiedModel

__all__ = ["verified_path"]

_CHUNK = 8 << 20
_SEALS = ("F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE")


def _copy(verified: VerifiedModel, name: str, fd: int) -> None:
    with verified.open(name) as src:
        while chunk := src.read(_CHUNK):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]


def _fill(verified: VerifiedModel, name: str, fd: int) -> None:
    """Reads the file once straight into the memory file, hashing it there (no copy)."""
    with verified.open_raw(name) as src:
        if not src.size:
            src.read_into_verified(bytearray())
            return
        check_room(name, src.size)
        os.ftruncate(fd, src.size)
        memory = mmap.mmap(fd, src.size)
        try:
            src.read_into_verified(memory)
        finally:  # unmapped before sealing; on an error, a view may outlive this call
            with contextlib.suppress(BufferError):
                memory.close()


def _sealed(verified: VerifiedModel, name: str) -> int | None:
    """A sealed memfd holding the verified file, or None where memfds cannot be sealed."""
    if not hasattr(os, "memfd_create") or not hasattr(fcntl, "F_ADD_SEALS"):
        return None
    flags = os.MFD_CLOEXEC | getattr(os, "MFD_ALLOW_SEALING", 2)  # children open it by path
    fd = os.memfd_create(f"omsign:{os.path.basename(name)}", flags)
    try:
        _fill(verified, name, fd)  # on any error the memory file is dropped unsealed
        seals = 0
        for seal in _SEALS:
            seals |= getattr(fcntl, seal)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def verified_path(model: Any, name: str, **options: Any) -> Iterator[str]:
    """Verifies ``name`` of ``model`` and yields a path to exactly the verified bytes.

    Args:
        model: a folder, ``hf://...``, any model omsign reads, or a
            :class:`~omsign.loading.VerifiedModel`.
        name: the signed file's name.
        **options: trust keywords of :func:`omsign.verify` (``key``, ``identity``,
            ``issuer``, ``policy``...), when ``model`` is not verified yet.

    Yields:
        ``/proc/<pid>/fd/<n>`` of a sealed memory file on Linux; elsewhere the path of a
        private copy. Valid until the context ends.

    Raises:
        omsign.errors.VerificationError: the signature or the file does not verify.
    """
    if isinstance(model, VerifiedModel):
        verified = model
    else:
        from omsign.loading import open_verified

        verified = open_verified(model, verify_content=False, **options)
    fd = _sealed(verified, name)
    if fd is not None:
        try:
            yield f"/proc/{os.getpid()}/fd/{fd}"
        finally:
            os.close(fd)
        return
    folder = tempfile.mkdtemp(prefix="omsign-")  # mode 0700
    try:
        path = os.path.join(folder, os.path.basename(name))
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            out = os.open(path, flags, 0o400)
        except OSError as exc:
            raise ModelError(f"{path}: cannot write a private copy ({exc.strerror})") from None
        try:
            _copy(verified, name, out)
        finally:
            os.close(out)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)
