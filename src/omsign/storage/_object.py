"""Signatures in object storage, next to a model there: ``s3://BUCKET/PREFIX/model.sig``.

The main signature of a folder model ``s3://BUCKET/PREFIX`` is the object
``PREFIX/model.sig`` (``PREFIX.sig`` for a single object), or the URL given as
``signature``; further bundles are objects under ``model.sig.d/``, named by the SHA-256
of their content, as in a file store; attestations are read from ``claims.jsonl`` beside
the main signature (``PREFIX.claims.jsonl`` for a single object), with the bounds of a
local claims file, and are appended to a local file (an object store has no atomic
append). A signature is written with one put of the whole
object, which the store makes visible at once and whole (never a partial object), so
writes are atomic as a local rename is. Reads are bounded by the bundle size limit before
anything is parsed. All lie inside the model's prefix and are left out of its files.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omsign.bundle import MAX_BUNDLE_BYTES, Bundle, encode_bundle, parse_bundle
from omsign.errors import (
    Error,
    MalformedSignatureError,
    SignatureNotFoundError,
    UsageError,
)
from omsign.sources._fsspec import ObjectSource
from omsign.sources._stores import access_error
from omsign.storage._claims import MAX_FILE_BYTES, parse_lines
from omsign.storage._file import FileStore

if TYPE_CHECKING:
    from omsign.sources import ModelSource

__all__ = ["ObjectSignatureStore", "open_store"]

_COMPANION = ".d"
_MAX_BUNDLES = 64  # companion bundles read at most


class ObjectSignatureStore:
    """A model's signature objects (see the module docstring)."""

    def __init__(self, source: ObjectSource, signature: str | None = None) -> None:
        self.source = source
        if signature is None:
            key = f"{source.root}/model.sig" if source.is_dir else f"{source.root}.sig"
        else:
            if not signature.startswith(source.scheme):
                raise UsageError(
                    f"{signature}: a signature in object storage must be in the model's store "
                    f"({source.scheme})",
                    option="signature",
                    hint="give {option} a URL of the model's store or a local path",
                )
            key = signature[len(source.scheme) :].strip("/")
        self.key = key
        self.companion = key + _COMPANION
        stem = key.removesuffix("model.sig") if key.endswith("/model.sig") else None
        self.claims_key = (
            stem + "claims.jsonl"
            if stem is not None
            else key.removesuffix(".sig") + ".claims.jsonl"
        )
        self.location = source.url(key)
        self._fs = source.store.filesystem()

    def _exists(self, key: str) -> bool:
        try:
            return self.source.store.current(self._fs, key) is not None
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise access_error(exc, self.source.url(key)) from None

    def _companions(self) -> list[str]:
        try:
            listed = self.source.store.list(self._fs, self.companion, _MAX_BUNDLES + 1)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise access_error(exc, self.source.url(self.companion)) from None
        return sorted(k for k, _ in listed if k.endswith(".sig"))[:_MAX_BUNDLES]

    def locations(self) -> list[str]:
        """The main signature (when present), then the companion bundles."""
        main = [self.location] if self._exists(self.key) else []
        return main + [self.source.url(k) for k in self._companions()]

    def _missing(self) -> SignatureNotFoundError:
        return SignatureNotFoundError(
            f"{self.source.location}: no signature found (looked for {self.location})",
            option="signature",
            hint="sign the model first, or give the signature's path with {option}",
        )

    def _read(self, key: str) -> Bundle:
        url = self.source.url(key)
        try:
            found = self.source.store.current(self._fs, key)
        except FileNotFoundError:
            found = None
        except Exception as exc:
            raise access_error(exc, url) from None
        if found is None:
            raise (
                self._missing()
                if key == self.key
                else SignatureNotFoundError(f"{url}: no such signature")
            )
        if found.size > MAX_BUNDLE_BYTES:
            raise MalformedSignatureError(f"{url}: larger than {MAX_BUNDLE_BYTES >> 20} MiB")
        try:
            data = (
                self.source.store.read(self._fs, key, found, 0, found.size) if found.size else b""
            )
        except Exception as exc:
            raise access_error(exc, url) from None
        return parse_bundle(data, url)

    def read(self, location: str | None = None) -> Bundle:
        """Reads the main signature, or the bundle at ``location`` (a URL)."""
        if location is None:
            return self._read(self.key)
        return self._read(location[len(self.source.scheme) :])

    def read_all(self) -> list[Bundle]:
        """Every bundle present, the main signature first."""
        found = self.locations()
        if not found:
            raise self._missing()
        return [self.read(u) for u in found]

    def _put(self, key: str, bundle: Mapping[str, Any]) -> str:
        url = self.source.url(key)
        try:
            self._fs.pipe_file(key, encode_bundle(bundle))
        except Exception as exc:
            raise access_error(exc, url) from None
        return url

    def write(self, bundle: Mapping[str, Any]) -> str:
        """Writes the main signature with one put (atomic)."""
        return self._put(self.key, bundle)

    def add(self, bundle: Mapping[str, Any]) -> str:
        """Writes one more bundle under the companion prefix, named by its content."""
        data = encode_bundle(bundle)
        return self._put(f"{self.companion}/{hashlib.sha256(data).hexdigest()[:32]}.sig", bundle)

    def claims(self) -> list[tuple[str, bytes | Error]]:
        """Each line of the claims object, raw and located (``URL:N``); bounded."""
        url = self.source.url(self.claims_key)
        store = self.source.store
        try:
            found = store.current(self._fs, self.claims_key)
            if found is None or found.size == 0:
                return []
            data = store.read(self._fs, self.claims_key, found, 0, min(found.size, MAX_FILE_BYTES))
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise access_error(exc, url) from None
        return parse_lines(io.BytesIO(data), url)

    def append_claim(self, bundle: Mapping[str, Any]) -> str:
        """Refused: an object store cannot append a line atomically."""
        del bundle
        raise UsageError(
            f"{self.source.url(self.claims_key)}: attestations are not appended in object "
            "storage (no atomic append)",
            option="output",
            hint="write the attestation to a file with {option}",
        )

    def excluded(self) -> list[str]:
        """The signature's, companion prefix's and claims' model-relative names."""
        if not self.source.is_dir:
            return []
        prefix = self.source.root + "/"
        keys = (self.key, self.companion, self.claims_key)
        return sorted(k[len(prefix) :] for k in keys if k.startswith(prefix))


def open_store(
    source: ModelSource, signature: str | os.PathLike[str] | None
) -> ObjectSignatureStore | FileStore:
    """The store of a model in object storage: objects next to it, or the URL given as
    ``signature``; a local ``signature`` path is a file store of that one file.

    Raises:
        UsageError: the source is not a model in object storage.
    """
    if signature is not None and "://" not in os.fspath(signature):
        return FileStore(None, signature)  # a local signature of a remote model
    if not isinstance(source, ObjectSource):
        raise UsageError(f"{source.location}: not a model in object storage")
    return ObjectSignatureStore(source, None if signature is None else os.fspath(signature))
