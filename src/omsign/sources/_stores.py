"""Object stores for :mod:`omsign.sources._fsspec`: listing, pinned range reads, look-ups.

One class per store says how an object's version is pinned and how a range of exactly
that version is read:

- S3 (``s3://``, s3fs): the VersionId when the bucket is versioned (listed with
  ListObjectVersions; a listing refused falls back to ListObjectsV2) and the ETag always.
  Every range is a GET with ``If-Match: ETag`` (and ``versionId``): an object replaced
  since the listing answers 412 or "no such version" instead of other bytes. The ETag
  matters without versioning: a plain object's ETag is derived from its content, so an
  object written back to its first content would otherwise go unnoticed by a check of the
  ETag after reading, while its bytes in between were read.
- GCS (``gs://``, ``gcs://``, gcsfs): the generation; every range names it
  (``generation=``), so a replaced object (a new generation) answers "not found".
- Azure Blob Storage (``az://``, ``abfs://``, adlfs): the ETag (it changes on every
  write) and the version id when versioning is on; every range is a download with
  ``If-Match: ETag``.

A hashing unit's range is read through :meth:`ObjectStore.open_async`, a stream of the
range taken in chunks. S3 answers it with ONE ranged GET whose body is read chunk by
chunk (memory stays at a chunk or two whatever the range); the other stores read it as
one ranged request per chunk of :attr:`ObjectStore.chunk` bytes.

Each store also looks an object up again after hashing (:meth:`ObjectStore.current`).
The library of a store is imported only when its URL is used; a missing one is a
:class:`~omsign.errors.BackendUnavailableError` naming the extra to install.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from omsign.errors import BackendUnavailableError, Error, ModelError, StorageAccessError
from omsign.hashing._io import ChangedWhileHashingError

__all__ = ["STORES", "ObjectStore", "Pinned", "RangeStream", "access_error", "store_for"]


@dataclass(frozen=True, slots=True)
class Pinned:
    """An object's size and identity when it was listed or looked up."""

    size: int
    version: str | None
    etag: str | None

    def same_object(self, other: Pinned) -> bool:
        """True when ``other`` is the same version (and content tag) of the object."""
        return (self.version, self.etag) == (other.version, other.etag)

    def describe(self) -> str:
        """The version for messages."""
        parts = [f"version {self.version}"] if self.version else []
        parts += [f"ETag {self.etag}"] if self.etag else []
        return ", ".join(parts) or "no version"


class RangeStream(Protocol):
    """A byte range of one pinned object, taken in order (see :meth:`ObjectStore.open_async`)."""

    async def take(self, size: int) -> bytes:
        """The next ``size`` bytes of the range (fewer only at its end, none after it)."""
        ...

    def close(self) -> None:
        """Releases the request (on the filesystem's event loop)."""
        ...


class _ChunkRequests:
    """A range read as one ranged request per :meth:`take` (stores without streaming)."""

    __slots__ = ("fs", "key", "pinned", "pos", "stop", "store")

    def __init__(
        self, store: ObjectStore, fs: Any, key: str, pinned: Pinned, *, start: int, stop: int
    ) -> None:
        self.store, self.fs, self.key, self.pinned = store, fs, key, pinned
        self.pos, self.stop = start, stop

    async def take(self, size: int) -> bytes:
        stop = min(self.stop, self.pos + size)
        if stop <= self.pos:
            return b""
        data = await self.store.read_async(self.fs, self.key, self.pinned, self.pos, stop)
        self.pos += len(data)
        return data

    def close(self) -> None:
        self.pos = self.stop


_FILESYSTEMS: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


class ObjectStore:
    """How one kind of store lists, pins and reads objects (see the module docstring)."""

    extra: ClassVar[str] = ""
    module: ClassVar[str] = ""
    chunk: ClassVar[int] = 32 << 20  # bytes taken from a range stream at a time
    env: ClassVar[tuple[str, ...]] = ()  # the variables a filesystem is built from
    pages_listing: ClassVar[bool] = False  # list() stops after the page reaching its limit

    def __init__(self, endpoint: str | None = None) -> None:
        self.endpoint = endpoint

    def _new_filesystem(self) -> Any:  # pragma: no cover - each store overrides it
        raise NotImplementedError

    def filesystem(self) -> Any:
        """The store's fsspec filesystem, one per process, endpoint and credentials."""
        key = (type(self), self.endpoint, os.getpid(), *(os.environ.get(v) for v in self.env))
        with _LOCK:
            fs = _FILESYSTEMS.get(key)
            if fs is None:
                try:
                    importlib.import_module(self.module)
                except ImportError:
                    raise BackendUnavailableError(
                        f"reading {self.extra} object storage needs the {self.module} package",
                        hint=f"pip install 'omsign[{self.extra}]'",
                    ) from None
                fs = _FILESYSTEMS[key] = self._new_filesystem()
        return fs

    def list(
        self, fs: Any, root: str, limit: int, *, versions: bool = True
    ) -> list[tuple[str, Pinned]]:
        """Every object under ``root/`` (at most ``limit``): (``BUCKET/KEY``, pinned).

        ``versions=False`` says no version ids are needed (a store that lists them with
        a separate request may then use its plain listing).
        """
        del versions
        out = []
        for key, info in fs.find(root, withdirs=False, detail=True).items():
            if info.get("type", "file") == "file":
                out.append((key, self.pinned(info)))
                if len(out) >= limit:
                    break
        return out

    def pinned(self, info: dict[str, Any]) -> Pinned:  # pragma: no cover - overridden
        raise NotImplementedError

    def current(self, fs: Any, key: str) -> Pinned | None:
        """The object as it is now, None when ``key`` is not an object (a prefix).

        Raises:
            FileNotFoundError: nothing there.
        """
        fs.invalidate_cache(key)
        info = fs.info(key)
        return self.pinned(info) if info.get("type", "file") == "file" else None

    def read(self, fs: Any, key: str, pinned: Pinned, start: int, stop: int) -> bytes:
        """Bytes ``[start, stop)`` of exactly the pinned version of the object.

        Raises:
            ChangedWhileHashingError: the object is no longer that version.
        """
        data: bytes = _sync(fs, lambda: self.read_async(fs, key, pinned, start, stop))
        return data

    async def read_async(self, fs: Any, key: str, pinned: Pinned, start: int, stop: int) -> bytes:
        """:meth:`read` as a coroutine of the filesystem's event loop."""
        raise NotImplementedError  # pragma: no cover - each store overrides it

    async def open_async(
        self, fs: Any, key: str, pinned: Pinned, start: int, stop: int
    ) -> RangeStream:
        """Bytes ``[start, stop)`` of the pinned version, as a stream taken in order.

        The default reads each chunk with a ranged request of its own; a store that
        streams a response body overrides it with a single request for the range.

        Raises:
            ChangedWhileHashingError: the object is no longer that version.
        """
        return _ChunkRequests(self, fs, key, pinned, start=start, stop=stop)


def _sync(fs: Any, make: Callable[[], Any]) -> Any:
    """Runs a coroutine on the filesystem's event loop and returns its result."""
    from fsspec.asyn import sync

    async def run() -> Any:
        return await make()

    return sync(fs.loop, run)


def _replaced(url: str, pinned: Pinned) -> ChangedWhileHashingError:
    return ChangedWhileHashingError(
        f"{url}: object replaced or deleted while the model was read (listed {pinned.describe()})"
    )


def _s3_code(exc: BaseException) -> str:
    """The S3 error code behind an s3fs error ('' when there is none)."""
    cause = exc.__cause__ or exc
    response = getattr(cause, "response", None) or {}
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    return str(error.get("Code", ""))


class S3Store(ObjectStore):
    """Amazon S3 and S3-compatible stores, through s3fs."""

    extra = "s3"
    module = "s3fs"
    pages_listing = True
    chunk = 8 << 20  # taken from the one response of a range; another is read ahead
    env = (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    )

    @staticmethod
    def default_endpoint() -> str | None:
        """The endpoint boto's configuration names, if any."""
        return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")

    def _new_filesystem(self) -> Any:
        import s3fs

        kwargs = {"endpoint_url": self.endpoint} if self.endpoint else {}
        return s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs=kwargs)

    @staticmethod
    def _split(key: str) -> tuple[str, str]:
        bucket, _, name = key.partition("/")
        return bucket, name

    def pinned(self, info: dict[str, Any]) -> Pinned:
        version = info.get("VersionId")
        return Pinned(
            int(info.get("ContentLength", info.get("Size", info.get("size", 0)))),
            None if version in (None, "null") else str(version),
            info.get("ETag"),
        )

    def list(
        self, fs: Any, root: str, limit: int, *, versions: bool = True
    ) -> list[tuple[str, Pinned]]:
        """Lists with versions when permitted (and wanted), else the plain listing (ETags)."""
        bucket, prefix = self._split(root)
        prefix = prefix + "/" if prefix else ""

        async def pages(method: str, items: str) -> list[tuple[str, Pinned]]:
            kw: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
            out: list[tuple[str, Pinned]] = []
            while True:
                page = await fs._call_s3(method, **kw)
                for item in page.get(items, []):
                    if item.get("IsLatest", True):
                        out.append((f"{bucket}/{item['Key']}", self.pinned(item)))
                if not page.get("IsTruncated") or len(out) >= limit:
                    return out
                if method == "list_object_versions":
                    kw["KeyMarker"] = page.get("NextKeyMarker", "")
                    kw["VersionIdMarker"] = page.get("NextVersionIdMarker", "")
                else:
                    kw["ContinuationToken"] = page["NextContinuationToken"]

        if not versions:
            plain: list[tuple[str, Pinned]] = _sync(
                fs, lambda: pages("list_objects_v2", "Contents")
            )
            return plain
        try:
            listed: list[tuple[str, Pinned]] = _sync(
                fs, lambda: pages("list_object_versions", "Versions")
            )
        except PermissionError:  # ListBucketVersions not granted: ETags pin the objects
            listed = _sync(fs, lambda: pages("list_objects_v2", "Contents"))
        return listed

    def current(self, fs: Any, key: str) -> Pinned | None:
        bucket, name = self._split(key)
        if not name:
            return None
        head = _sync(fs, lambda: fs._call_s3("head_object", Bucket=bucket, Key=name))
        return self.pinned(head)

    async def _get(self, fs: Any, key: str, pinned: Pinned, start: int, stop: int) -> Any:
        """The body of a GET of ``[start, stop)`` pinned to the version (and ETag) listed."""
        bucket, name = self._split(key)
        kw: dict[str, Any] = {"Bucket": bucket, "Key": name, "Range": f"bytes={start}-{stop - 1}"}
        if pinned.etag:
            kw["IfMatch"] = pinned.etag
        if pinned.version:
            kw["VersionId"] = pinned.version
        try:
            response = await fs._call_s3("get_object", **kw)
        except FileNotFoundError:
            raise _replaced("s3://" + key, pinned) from None
        except OSError as exc:
            if _s3_code(exc) in ("PreconditionFailed", "412"):
                raise _replaced("s3://" + key, pinned) from None
            raise
        return response["Body"]

    async def read_async(self, fs: Any, key: str, pinned: Pinned, start: int, stop: int) -> bytes:
        body = await self._get(fs, key, pinned, start, stop)
        try:
            data: bytes = await body.read()
        finally:
            body.close()
        return data

    async def open_async(
        self, fs: Any, key: str, pinned: Pinned, start: int, stop: int
    ) -> RangeStream:
        """One GET for the whole range; its body is taken chunk by chunk."""
        return _S3Body(await self._get(fs, key, pinned, start, stop))


class _S3Body:
    """The body of one ranged GET, taken in order (the client checks its length at the end)."""

    __slots__ = ("body",)

    def __init__(self, body: Any) -> None:
        self.body = body

    async def take(self, size: int) -> bytes:
        pieces: list[bytes] = []
        got = 0
        while got < size:
            piece: bytes = await self.body.read(size - got)
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)

    def close(self) -> None:
        self.body.close()


class GCSStore(ObjectStore):
    """Google Cloud Storage, through gcsfs (``STORAGE_EMULATOR_HOST`` for an emulator)."""

    extra = "gcs"
    module = "gcsfs"
    env = ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")

    @staticmethod
    def default_endpoint() -> str | None:
        """The emulator's address, when one is configured."""
        return os.environ.get("STORAGE_EMULATOR_HOST")

    def _new_filesystem(self) -> Any:
        import gcsfs

        kwargs: dict[str, Any] = {"endpoint_url": self.endpoint} if self.endpoint else {}
        return gcsfs.GCSFileSystem(skip_instance_cache=True, **kwargs)

    def pinned(self, info: dict[str, Any]) -> Pinned:
        generation = info.get("generation")
        return Pinned(int(info.get("size", 0)), str(generation) if generation else None, None)

    async def read_async(self, fs: Any, key: str, pinned: Pinned, start: int, stop: int) -> bytes:
        try:
            data: bytes = await fs._cat_file_sequential(
                key, start=start, end=stop, generation=pinned.version
            )
        except FileNotFoundError:  # that generation is gone: the object was replaced
            raise _replaced("gs://" + key, pinned) from None
        return data


class AzureStore(ObjectStore):
    """Azure Blob Storage, through adlfs (account and credentials from the environment)."""

    extra = "azure"
    module = "adlfs"
    env = (
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
    )

    @staticmethod
    def default_endpoint() -> str | None:
        """Azure's endpoint is part of the account settings in the environment."""
        return None

    def _new_filesystem(self) -> Any:
        import adlfs

        return adlfs.AzureBlobFileSystem(skip_instance_cache=True)

    def pinned(self, info: dict[str, Any]) -> Pinned:
        version = info.get("version_id")
        etag = info.get("etag")
        return Pinned(int(info.get("size", 0)), str(version) if version else None, etag)

    async def read_async(self, fs: Any, key: str, pinned: Pinned, start: int, stop: int) -> bytes:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        container, _, blob = key.partition("/")
        condition: dict[str, Any] = (
            {"etag": pinned.etag, "match_condition": MatchConditions.IfNotModified}
            if pinned.etag
            else {}
        )

        try:
            async with fs.service_client.get_blob_client(container=container, blob=blob) as bc:
                stream = await bc.download_blob(
                    offset=start, length=stop - start, version_id=pinned.version, **condition
                )
                data: bytes = await stream.readall()
        except (ResourceModifiedError, ResourceNotFoundError):
            raise _replaced("az://" + key, pinned) from None
        return data


STORES: dict[str, type[ObjectStore]] = {
    "s3://": S3Store,
    "gs://": GCSStore,
    "gcs://": GCSStore,
    "az://": AzureStore,
    "abfs://": AzureStore,
}


def store_for(scheme: str, endpoint: str | None = None) -> ObjectStore:
    """The store of ``scheme``; ``endpoint`` None means the environment's (when listing)."""
    cls = STORES[scheme]
    if endpoint is None:
        endpoint = getattr(cls, "default_endpoint")()  # noqa: B009 - each store defines it
    return cls(endpoint)


def access_error(exc: BaseException, url: str, *, reading: bool = False) -> Error:
    """A failed store request as omsign's error: missing is a model error, the rest access."""
    if isinstance(exc, Error):
        return exc
    if isinstance(exc, FileNotFoundError):
        if reading:
            return ChangedWhileHashingError(f"{url}: object deleted while the model was read")
        return ModelError(f"{url}: no such object or prefix")
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, PermissionError) or type(exc).__name__ in (
        "NoCredentialsError",
        "PartialCredentialsError",
        "ClientAuthenticationError",
    ):
        return StorageAccessError(
            f"{url}: the store refused the request ({detail})",
            hint="check the store's credentials in the environment",
        )
    return StorageAccessError(f"{url}: cannot read from the store ({detail})")
