"""Models on object storage: ``s3://``, ``gs://`` and ``az://`` through fsspec.

``s3://BUCKET/PREFIX`` (``gs://``, ``gcs://``, ``az://``, ``abfs://`` alike) names a
folder model (every object under ``PREFIX/``) or a single object. Nothing is downloaded
first: the hashing units read byte ranges straight from the store, wherever they run
(threads here, a process pool, Dask or Ray workers), through :class:`ObjectReader`, a
small picklable value that opens the store again in each worker.

Each object's version is pinned when it is listed (:mod:`omsign.sources._stores`: S3's
VersionId on a versioned bucket and its ETag always, GCS's generation, Azure's ETag),
every range is read from that version only (a conditional read: a replaced object
answers "precondition failed" or "no such version" instead of other bytes), and every
object is looked up again once the whole run is hashed, by the process that listed it
(:mod:`omsign.sources._recheck`: one listing for many S3 objects, else a request per
object). An object replaced, grown or
deleted at any point of the run is a :class:`~omsign.hashing.ChangedWhileHashingError`
naming it (a failed verification), never a digest of mixed bytes.

Credentials and endpoints come from each store's usual environment (``AWS_*`` including
``AWS_ENDPOINT_URL``, Google application default credentials or
``STORAGE_EMULATOR_HOST``, ``AZURE_STORAGE_CONNECTION_STRING`` or
``AZURE_STORAGE_ACCOUNT_NAME``); a worker elsewhere uses its own credentials, and the
endpoint the listing used travels with the reader so that every worker reads the same
store. fsspec and the store's library (extras ``omsign[s3]``, ``[gcs]``, ``[azure]``)
are imported only when such a URL is used.

A model on a web server (``https://``) is read by :mod:`omsign.sources._http` instead:
its files come from the server's directory index, each pinned by its ``ETag``.

A single object hashed in ``files`` mode is one unit read by one worker from start to
end (SHA-256 is sequential); for a large object that is a warning suggesting shards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from omsign.errors import ModelError, UsageError
from omsign.hashing import DEFAULT_IGNORES, EntryLike, OpenEntry, normalize_ignore
from omsign.hashing._io import ChangedWhileHashingError, shrank
from omsign.sources._recheck import check_objects
from omsign.sources._stores import (
    STORES,
    ObjectStore,
    Pinned,
    RangeStream,
    access_error,
    store_for,
)

__all__ = [
    "LARGE_OBJECT",
    "ObjectEntry",
    "ObjectReader",
    "ObjectSource",
    "is_object_url",
    "open_source",
]

logger = logging.getLogger("omsign")

LARGE_OBJECT = 4 << 30  # a files-mode unit this large gets a warning: one worker reads it all
MAX_OBJECTS = 1_000_000  # objects listed at most under one model prefix
_BLOCK = 32 << 20  # bytes requested past an announced range (a read the engine did not announce)
_T = TypeVar("_T")


def is_object_url(model: object) -> bool:
    """True for an object-storage URL of a scheme this module serves."""
    return isinstance(model, str) and any(model.startswith(s) for s in STORES)


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """One object of a model, pinned to the version listed.

    Attributes:
        name: model-relative name (``/``-separated); a single object's basename.
        url: the object's URL, for messages.
        key: the object's path in the store (``BUCKET/KEY``).
        size: size in bytes when listed.
        pinned: the version and ETag the object had when listed.
    """

    name: str
    url: str
    key: str
    size: int
    pinned: Pinned

    @property
    def path(self) -> str:
        """Where the object is, for messages (its URL)."""
        return self.url

    @property
    def stamp(self) -> Hashable:
        """Change stamp: size, version and ETag as listed."""
        return (self.size, self.pinned.version, self.pinned.etag)


class _OpenObject:
    """An object opened for range reads of its pinned version.

    Once the hashing engine says which range it reads next (:meth:`will_read`, the units
    of a batch that continue one another), that whole range is one request of the store
    (:meth:`ObjectStore.open_async`), taken in chunks of the store's ``chunk`` bytes: the
    next chunk is taken while the current one is hashed, so memory stays at two chunks
    whatever the range, and nothing past the range is fetched. A read elsewhere (outside
    an announced range, or not where the stream is) starts a request of its own, of at
    most ``_BLOCK`` bytes past the announced range.
    """

    __slots__ = (
        "_ahead",
        "_block",
        "_fs",
        "_pos",
        "_start",
        "_stop",
        "_stream",
        "_until",
        "entry",
        "store",
    )

    def __init__(self, store: ObjectStore, entry: ObjectEntry) -> None:
        self.store = store
        self.entry = entry
        self._fs = store.filesystem()
        self._start = 0
        self._block = memoryview(b"")
        self._until = 0  # the end of the range the engine reads now
        self._stream: RangeStream | None = None
        self._pos = 0  # where the stream's next chunk starts
        self._stop = 0  # where the stream ends
        self._ahead: Future[bytes] | None = None

    def will_read(self, start: int, end: int) -> None:
        """The engine reads ``[start, end)`` next, in order."""
        del start
        self._until = min(end, self.entry.size)

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> Future[_T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._fs.loop)

    def _open(self, offset: int, size: int) -> None:
        """Starts the request of the range from ``offset`` (closing the one before)."""
        self._drop_stream()
        e = self.entry
        stop = self._until if offset < self._until else min(e.size, offset + max(size, _BLOCK))
        coroutine = self.store.open_async(self._fs, e.key, e.pinned, offset, stop)
        self._stream = self._run(coroutine).result()
        self._pos, self._stop = offset, stop

    def _next(self, offset: int, size: int) -> bytes:
        """The chunk at ``offset``: taken ahead when the stream is there, else requested."""
        try:
            if self._stream is None or offset != self._pos or self._pos >= self._stop:
                self._open(offset, size)
            stream = self._stream
            assert stream is not None
            ahead, self._ahead = self._ahead, None
            want = max(size, self.store.chunk)
            block = (ahead or self._run(stream.take(want))).result()
        except ChangedWhileHashingError:
            raise
        except Exception as exc:
            raise access_error(exc, self.entry.url, reading=True) from None
        self._pos += len(block)
        if block and self._pos < self._stop:
            self._ahead = self._run(stream.take(want))
        return block

    def read(self, offset: int, size: int) -> bytes | memoryview:
        """Bytes from ``offset``: a view into the chunk taken (no copy) when it holds them."""
        e = self.entry
        size = min(size, e.size - offset)
        pieces = []
        while size > 0:
            at = offset - self._start
            if not 0 <= at < len(self._block):
                block = self._next(offset, size)
                if not block:
                    raise shrank(e)
                self._block, self._start, at = memoryview(block), offset, 0
            piece = self._block[at : at + size]
            pieces.append(piece)
            offset += len(piece)
            size -= len(piece)
        return b"".join(pieces) if len(pieces) != 1 else pieces[0]

    def _drop_stream(self) -> None:
        """Cancels the chunk taken ahead and closes the request, on the event loop."""
        ahead, self._ahead = self._ahead, None
        stream, self._stream = self._stream, None
        if ahead is not None:
            ahead.cancel()
        if stream is not None:

            async def close() -> None:
                stream.close()

            with contextlib.suppress(Exception):
                self._run(close()).result()

    def check_unchanged(self) -> None:
        """Nothing to request here: every range was read from the pinned version only.

        The look-up after reading is :meth:`ObjectReader.check_entries`, once per object
        when the whole run is hashed (later than any of the object's reads, wherever they
        ran), rather than one request per batch.
        """

    def close(self) -> None:
        self._block = memoryview(b"")
        self._drop_stream()


@dataclass(frozen=True, slots=True)
class ObjectReader:
    """Reads pinned objects of one store; picklable, so workers anywhere read directly.

    Attributes:
        scheme: the store's URL scheme (``s3://``, ``gs://``, ``az://``...).
        endpoint: the endpoint the listing used (None: the store's default), so every
            worker reads the same store.
    """

    scheme: str
    endpoint: str | None = None

    def open(self, entry: EntryLike) -> OpenEntry:
        """Opens an :class:`ObjectEntry` of this store."""
        if not isinstance(entry, ObjectEntry):
            raise TypeError(f"the object reader reads listed objects, not {type(entry).__name__}")
        return _OpenObject(store_for(self.scheme, self.endpoint), entry)

    def check_entries(self, entries: Sequence[EntryLike]) -> None:
        """Looks every object up again once the run has read it (:mod:`._recheck`).

        Raises:
            ChangedWhileHashingError: an object was deleted or is another version now.
            StorageAccessError: a look-up failed.
        """
        objects = [e for e in entries if isinstance(e, ObjectEntry)]
        if objects:
            store = store_for(self.scheme, self.endpoint)
            check_objects(store, store.filesystem(), objects)


def _split(url: str) -> tuple[str, str]:
    """``SCHEME://BUCKET/PREFIX`` -> (scheme, ``BUCKET/PREFIX``), checked."""
    scheme = next(s for s in STORES if url.startswith(s))
    body = url[len(scheme) :].strip("/")
    parts = body.split("/")
    if not body or any(p in ("", ".", "..") for p in parts) or "\0" in body:
        raise UsageError(f"{url}: expected {scheme}BUCKET[/PREFIX] with no empty, . or .. part")
    return scheme, body


def _check_name(name: str, where: str) -> None:
    """Object names become resource names: no empty, ``.`` or ``..`` parts, no NUL."""
    parts = name.split("/")
    if not name or any(p in ("", ".", "..") for p in parts) or "\0" in name or "\\" in name:
        raise ModelError(f"{where}: object name {name!r} cannot be a model file name (OMS 6.1)")


def _ignored(name: str, ignores: Sequence[str]) -> bool:
    return any(name == i or name.startswith(i + "/") for i in ignores)


class ObjectSource:
    """A model in object storage (see :class:`omsign.sources.ModelSource`)."""

    def __init__(self, url: str) -> None:
        self.scheme, self.root = _split(url)
        self.store = store_for(self.scheme)
        self.location = self.scheme + self.root
        self.key = self.location
        self.path: Path | None = None
        self.link_policy = None
        self.name = self.root.rsplit("/", 1)[-1]
        self._fs = self.store.filesystem()
        self.is_dir = self._probe()

    def url(self, key: str) -> str:
        """The URL of an object of this store."""
        return self.scheme + key

    def _probe(self) -> bool:
        """Whether the URL names a folder of objects (else a single object)."""
        try:
            found = self.store.current(self._fs, self.root)
        except FileNotFoundError:
            found = None
        except Exception as exc:
            raise access_error(exc, self.location) from None
        if found is not None:
            return False
        try:
            if self._fs.find(self.root, maxdepth=None, withdirs=False, detail=False)[:1]:
                return True
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise access_error(exc, self.location) from None
        raise ModelError(f"{self.location}: no such object or prefix")

    def exists(self) -> bool:
        """Always true: a missing model is refused when the source is opened."""
        return True

    def _entry(self, name: str, key: str, pinned: Pinned) -> ObjectEntry:
        return ObjectEntry(name, self.url(key), key, pinned.size, pinned)

    def entries(
        self,
        *,
        ignore_paths: Sequence[str] = (),
        allow_symlinks: bool = False,
        names: Sequence[str] | None = None,
        keep: Sequence[str] = (),
    ) -> list[ObjectEntry]:
        """Lists the objects (or looks up ``names`` only), each pinned to its version.

        Object stores have no links: ``allow_symlinks`` changes nothing.
        """
        del allow_symlinks
        if not self.is_dir:
            return self._single()
        if names is not None:
            return self._lookup(sorted(names))
        ignores = [*DEFAULT_IGNORES, *(normalize_ignore(i) for i in ignore_paths)]
        kept = set(keep)
        try:
            listed = self.store.list(self._fs, self.root, MAX_OBJECTS + 1)
        except Exception as exc:
            raise access_error(exc, self.location) from None
        if len(listed) > MAX_OBJECTS:
            raise ModelError(f"{self.location}: more than {MAX_OBJECTS} objects under the prefix")
        out = []
        prefix = self.root + "/"
        for key, pinned in listed:
            if not key.startswith(prefix) or key.endswith("/"):
                continue  # a folder marker, not a file
            name = key[len(prefix) :]
            _check_name(name, self.url(key))
            if name in kept or not _ignored(name, ignores):
                out.append(self._entry(name, key, pinned))
        out.sort(key=lambda e: e.name)
        return out

    def _single(self) -> list[ObjectEntry]:
        try:
            pinned = self.store.current(self._fs, self.root)
        except FileNotFoundError:
            pinned = None
        except Exception as exc:
            raise access_error(exc, self.location) from None
        if pinned is None:
            raise ModelError(f"{self.location}: no such object")
        return [self._entry(self.name, self.root, pinned)]

    def _lookup(self, names: Sequence[str]) -> list[ObjectEntry]:
        out = []
        for name in names:
            _check_name(name, self.location)
            key = f"{self.root}/{name}"
            try:
                pinned = self.store.current(self._fs, key)
            except FileNotFoundError:
                continue
            except Exception as exc:
                raise access_error(exc, self.url(key)) from None
            if pinned is not None:
                out.append(self._entry(name, key, pinned))
        return out

    def reader(self) -> ObjectReader:
        """A picklable reader of this store's pinned objects."""
        return ObjectReader(self.scheme, self.store.endpoint)

    def warn_unsplittable(self, entries: Sequence[ObjectEntry], shard_size: int | None) -> None:
        """Warns about large objects that ``files`` mode hashes in one piece."""
        if shard_size is not None:
            return
        large = [e for e in entries if e.size >= LARGE_OBJECT]
        if large:
            names = ", ".join(e.name for e in large[:3]) + (" ..." if len(large) > 3 else "")
            logger.warning(
                "%d object(s) of %d GiB or more (%s): in files mode each is read and hashed "
                "by one worker from start to end (SHA-256 is sequential); sign with shards "
                "to spread them over workers",
                len(large),
                LARGE_OBJECT >> 30,
                names,
            )


def open_source(name: str, link_policy: Any = None) -> ObjectSource:
    """The model source of an object-storage URL (links do not exist there).

    Raises:
        UsageError: the URL is malformed.
        BackendUnavailableError: fsspec or the store's library is not installed.
        StorageAccessError: the store cannot be reached or refuses the request.
        ModelError: no object or prefix of that name.
    """
    del link_policy
    return ObjectSource(name)
