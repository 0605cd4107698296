"""Verified loading: open a signed file so that no byte is used before it is proven.

>>> from omsign.loading import open_verified, load_safetensors
>>> model = open_verified("my-model", key="public.pem")          # doctest: +SKIP
>>> with model.open("config.json") as f:                          # doctest: +SKIP
...     config = json.load(f)
>>> tensors = load_safetensors(model, "model.safetensors")        # doctest: +SKIP

What is guaranteed. ``open_verified`` checks the signature and signer and (by default)
every signed file, and keeps the signed manifest. ``VerifiedModel.open(name)`` then
opens the file once (no link is followed unless the signature or the Hugging Face
cache rules allow it), checks that the descriptor is the same file (device and inode)
that verification read, and serves bytes only from a private copy that was hashed and
compared with the signed digest:

- ``files`` signatures are verified as a whole: the first read hashes the entire file
  into the private copy and fails with :class:`~omsign.errors.IntegrityError` before
  any byte is returned if the digest differs.
- ``shards`` signatures are verified shard by shard: a read first hashes the shards
  its range touches, so a loader fails at the first bad byte range and never sees
  bytes that are not proven.

The private copy is held in memory, or, for a piece larger than 128 MiB, in an
unlinked temporary file that no other process can name (an attacker running as the
same user could change the process' memory too). A file replaced, truncated, grown or
modified after verification is therefore caught: by its inode at ``open``, by its size,
or by the digest of the bytes actually read; bytes already proven are never re-read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hmac
import io
import itertools
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from omsign._keywords import RuntimeKeywords, ScopeKeywords, VerifyKeywords
from omsign._verify import as_integrity
from omsign.errors import (
    IntegrityError,
    ModelError,
    UnsafeFormatError,
    UsageError,
)
from omsign.hashing import FileEntry, new_hasher, open_checked
from omsign.manifest import split_shard_name
from omsign.options import Runtime, VerifyScope

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from omsign.policy import Policy
    from omsign.results import VerificationResult

__all__ = ["VerifiedFile", "VerifiedModel", "load_safetensors", "open_verified"]

_SPOOL = 128 << 20  # pieces larger than this are copied to an unlinked temporary file
_CHUNK = 1 << 20
_KEEP = 2  # verified pieces kept per open file


@dataclass(frozen=True)
class _Piece:
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
        pieces: list[_Piece],
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
        """Refuses pickle content; reads (verified) only the bytes it sniffs."""
        from omsign.integrations.unsafe import sniff_length, unsafe_reason

        self.sniff = False
        pos = self._pos
        try:
            self._pos = 0
            head = bytearray(min(sniff_length(self.name), self.size))
            got = self.readinto(head) if head else 0
            reason = unsafe_reason(self.name, bytes(head[:got]), cast("BinaryIO", self))
        finally:
            self._pos = pos
        if reason is not None:
            self.sniff = True  # every later read is refused too
            raise _unsafe_error(self.name, reason)

    def peek(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``, NOT verified: only to plan a :meth:`scan`.

        Whatever is planned from these bytes must be checked against what the scan
        delivers (and so proves).
        """
        return os.pread(self._fd, max(0, min(size, self.size - offset)), offset)

    def scan(self, sink: Callable[[int, memoryview], None]) -> None:
        """Reads the whole file once, in order, hashing as it goes; raises if it differs.

        ``sink(offset, chunk)`` receives every byte before its piece is proven: the
        caller copies what it needs into memory of its own and must discard it all if
        this raises. Nothing is copied to a private file, so loading a large file this
        way costs one read. Each piece's digest is compared when the piece ends.

        Raises:
            IntegrityError: a piece differs from the signature, or the size changed.
            UnsafeFormatError: pickle content, unless the file was opened allowing it.
        """
        if self.sniff:  # on a peek: proving the head first would read the file twice
            from omsign.integrations.unsafe import sniff_length, unsafe_reason

            reason = unsafe_reason(self.name, self.peek(0, sniff_length(self.name)))
            if reason is not None:
                raise _unsafe_error(self.name, reason)
        for i, piece in enumerate(self._pieces):
            hasher = new_hasher(self._algorithm)
            offset = piece.start
            while offset < piece.end:
                chunk = os.pread(self._fd, min(_CHUNK, piece.end - offset), offset)
                if not chunk:
                    raise IntegrityError(
                        f"{self.name}: file is shorter than signed (changed after verification)"
                    )
                hasher.update(chunk)
                sink(offset, memoryview(chunk))
                offset += len(chunk)
            if i == len(self._pieces) - 1 and os.pread(self._fd, 1, piece.end):
                raise IntegrityError(
                    f"{self.name}: file is longer than signed (changed after verification)"
                )
            if not hmac.compare_digest(hasher.digest(), piece.digest):
                raise IntegrityError(
                    f"{self.name}: bytes {piece.start}-{piece.end} do not match the signature "
                    "(changed after signing or after verification)"
                )

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

    def _prove(self, piece: _Piece, last: bool) -> _Proven:
        """Reads a piece once into a private copy, hashing it; compares before use.

        Exactly the piece's bytes are read (one more at the end, to catch growth), and a
        copy too large for the temporary folder is refused before anything is read.
        """
        length = piece.end - piece.start
        hasher = new_hasher(self._algorithm)
        with contextlib.ExitStack() as cleanup:
            spool = cleanup.enter_context(self._spool(length)) if length > _SPOOL else None
            data = None if spool is not None else bytearray(length)
            offset = 0
            while offset < length:
                chunk = self._read(min(_CHUNK, length - offset), piece.start + offset)
                if not chunk:
                    raise IntegrityError(
                        f"{self.name}: file is shorter than signed (changed after verification)"
                    )
                hasher.update(chunk)
                if spool is not None:
                    self._keep(spool, chunk)
                else:
                    assert data is not None
                    data[offset : offset + len(chunk)] = chunk
                offset += len(chunk)
            if last and self._read(1, piece.end):
                raise IntegrityError(
                    f"{self.name}: file is longer than signed (changed after verification)"
                )
            if not hmac.compare_digest(hasher.digest(), piece.digest):
                raise IntegrityError(
                    f"{self.name}: bytes {piece.start}-{piece.end} do not match the signature "
                    "(changed after signing or after verification)"
                )
            if spool is not None:
                self._keep(spool, b"")
            cleanup.pop_all()  # the proven copy stays open
        return _Proven(data, spool)

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


class VerifiedModel:
    """A verified model whose signed files can be opened without a check-to-use gap.

    Attributes:
        result: the verification result (signer, manifest, what was checked).
    """

    def __init__(self, result: VerificationResult) -> None:
        self.result = result
        self._files = result.manifest.by_file()
        # Sizes proven by a read, for files verification did not hash (lazy, partial).
        self._proven_sizes: dict[str, int] = {}

    @property
    def files(self) -> tuple[str, ...]:
        """The signed file names, sorted."""
        return tuple(sorted(self._files))

    def open(self, name: str, *, allow_pickle: bool = False) -> io.BufferedReader:
        """Opens a signed file for reading; bytes are verified before they are returned.

        Args:
            name: the file's model-relative name as signed (``/``-separated).
            allow_pickle: serve pickle-based files too (see
                :mod:`omsign.integrations.unsafe`); loading them can run code.

        Returns:
            A buffered binary reader; closing it releases the file and private copies.

        Raises:
            IntegrityError: the file is not signed, was replaced or changed, or (when read)
                its bytes differ from the signed digest.
            ModelError: the file cannot be opened.
            UnsafeFormatError: a pickle-based file, without ``allow_pickle``.
        """
        return io.BufferedReader(self.open_raw(name, allow_pickle=allow_pickle))

    def open_raw(self, name: str, *, allow_pickle: bool = False) -> VerifiedFile:
        """Like :meth:`open`, without the buffering layer."""
        from omsign.integrations.unsafe import sniff_length, unsafe_by_name

        reason = None if allow_pickle else unsafe_by_name(name)
        if reason is not None:
            raise _unsafe_error(name, reason)
        raw = self._open_raw(name)
        # By content, at the first read (nothing is read yet), unless the name rules it out.
        raw.sniff = not allow_pickle and sniff_length(name) > 0
        return raw

    def _open_raw(self, name: str) -> VerifiedFile:
        if name not in self._files:
            raise IntegrityError(f"{name}: not a signed file of {self.result.model}")
        entry = self._entry(name)
        fd = _open_entry(entry)
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(os.close, fd)
            st = os.fstat(fd)
            seen = self.result.identities.get(name)
            if seen is not None and seen != (st.st_dev, st.st_ino):
                raise IntegrityError(f"{name}: was replaced after it was verified")
            verified_size = self.result.sizes.get(name, self._proven_sizes.get(name))
            if verified_size is not None and verified_size != st.st_size:  # before any read
                raise IntegrityError(f"{name}: size changed after it was verified")
            pieces = self._pieces(name, st.st_size)
            if pieces[-1].end != st.st_size:
                raise IntegrityError(
                    f"{name}: size {st.st_size} differs from the signed size {pieces[-1].end}"
                )
            cleanup.pop_all()
        return VerifiedFile(
            name,
            fd,
            pieces,
            self.result.serialization.hash_type,
            on_proven=functools.partial(self._proven_sizes.__setitem__, name),
        )

    def read_bytes(self, name: str, *, allow_pickle: bool = False) -> bytes:
        """The whole content of a signed file, verified (see :meth:`open`)."""
        raw = self.open_raw(name, allow_pickle=allow_pickle)
        try:
            return raw.read_all_verified()
        finally:
            raw.close()

    def _entry(self, name: str) -> FileEntry:
        from omsign.sources import resolve_source

        model, ser = self.result.model, self.result.serialization
        source = resolve_source(model, link_policy=self.result.link_policy)
        try:
            found = source.entries(allow_symlinks=ser.allow_symlinks, names=[name])
        except ModelError as exc:
            raise as_integrity(exc) from None
        if not found:
            raise ModelError(f"{name}: signed file is absent from {model}")
        return found[0]

    def _pieces(self, name: str, size: int) -> list[_Piece]:
        items = self._files[name]
        if self.result.serialization.method == "files":
            return [_Piece(0, size, next(iter(items.values())))]
        pieces = []
        for resource, digest in items.items():
            _, start, end = split_shard_name(resource)
            pieces.append(_Piece(start, end, digest))
        pieces.sort(key=lambda p: p.start)
        if pieces[0].start != 0 or any(a.end != b.start for a, b in itertools.pairwise(pieces)):
            raise IntegrityError(f"{name}: the signed shards do not cover the file contiguously")
        return pieces


def _unsafe_error(name: str, reason: str) -> UnsafeFormatError:
    return UnsafeFormatError(
        f"{name}: refused: {reason}",
        hint="pass {option} only for files whose source you trust",
        option="allow_pickle",
    )


def _open_entry(entry: FileEntry) -> int:
    """Opens exactly the file that was looked up (no link swapped in, no FIFO)."""
    try:
        return open_checked(entry)
    except ModelError as exc:
        raise as_integrity(exc) from None


def open_verified(
    model: str | os.PathLike[str],
    *,
    verify_content: bool = True,
    policy: Policy | None = None,
    signature: str | os.PathLike[str] | None = None,
    scope: VerifyScope | None = None,
    runtime: Runtime | None = None,
    **options: Unpack[VerifyKeywords],
) -> VerifiedModel:
    """Verifies a model and returns it ready for verified reads.

    Args:
        model: file, directory or ``hf://ORG/NAME[@REVISION]``.
        verify_content: hash every signed file now, as :func:`omsign.verify` does
            (default). With False only the signature and signer are checked now; file
            content is then checked only as it is read, which reads each file once.
        policy: an explicit :mod:`omsign.policy` object, instead of the trust keywords.
        signature: bundle path (default ``MODEL/model.sig`` or ``MODEL.sig``).
        scope: what to check now, as for :func:`omsign.verify`; without
            ``verify_content`` only its ``link_policy`` applies.
        runtime: how to run the hashing (only with ``verify_content``).
        **options: the keywords of :func:`omsign.verify` (trust: ``key``,
            ``cert_chain``, ``identity`` and ``issuer``...; scope: ``allow_missing``,
            ``files``...; runtime: ``workers``...).

    Returns:
        The verified model.

    Raises:
        omsign.errors.VerificationError: as :func:`omsign.verify`.
    """
    from omsign._api import resolve_policy, verify
    from omsign._keywords import check_keywords, pick, verify_scope
    from omsign._keywords import runtime as _runtime

    check_keywords("open_verified", options, VerifyKeywords)
    if verify_content:
        return VerifiedModel(
            verify(
                model, policy=policy, signature=signature, scope=scope, runtime=runtime, **options
            )
        )
    from omsign._verify import verify_signature_only

    trust = resolve_policy(policy, options)
    checked = verify_scope(scope, options)
    need_content = sorted(
        {*pick(options, ScopeKeywords), *pick(options, RuntimeKeywords)} - {"link_policy"}
    )
    if scope is not None and dataclasses.replace(checked, link_policy=None) != VerifyScope():
        need_content.append("scope")
    if runtime is not None:
        _runtime(runtime, options)
        need_content.append("runtime")
    if need_content:
        raise UsageError(f"options {', '.join(need_content)} need verify_content=True")
    return VerifiedModel(
        verify_signature_only(model, trust, signature=signature, link_policy=checked.link_policy)
    )


def load_safetensors(
    verified: VerifiedModel,
    name: str,
    *,
    framework: str = "numpy",
    tensors: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Loads the tensors of a signed ``.safetensors`` file from exactly the verified bytes.

    Tensors are read one at a time (memory is bounded by the tensors asked for); see
    :mod:`omsign.integrations.safetensors`, which also loads sharded checkpoints.

    Args:
        verified: from :func:`open_verified`.
        name: the file's signed name.
        framework: ``numpy`` (default), ``torch`` or ``jax``.
        tensors: only these tensors (default: all).

    Returns:
        ``{tensor name: array}``.

    Raises:
        IntegrityError: the file is not signed, its bytes differ from the signature, or
            it is not a valid safetensors file.
        BackendUnavailableError: the framework is not installed.
    """
    from omsign.integrations.safetensors import load

    return load(verified, name, framework=framework, tensors=tensors)
