"""A model in an OCI registry: ``oci://REGISTRY/REPO[:TAG|@sha256:DIGEST]``.

The manifest is fetched by digest (a tag is resolved once, and the source then names
the model by its digest, :attr:`OciSource.resolved`) and checked against it. Its layers
map to files as :mod:`omsign.sources._oci_layers` says; the config blob is not a model
file, and annotations that claim content digests are ignored.

Hashing reads as little as it can. A file layer's sha256 is its layer digest, so a
``sha256`` signature in ``files`` mode (or a shard that covers a whole file) reads no
blob at all: the manifest, checked against its digest, names the content. Tar layers
are streamed once when the model is listed (the layer checked against its digest at its
end) and each member hashed with sha256 then. Other hash settings read the bytes: a
file layer or a member of an uncompressed tar by range requests, a member of a
compressed tar by decompressing its layer up to it. A file read whole is checked
against the sha256 it was listed with.

The subject name is the repository's last component (``llama`` for
``oci://ghcr.io/org/llama:v1``), as ``oras pull`` into a folder of that name gives; a
verifier does not compare it, so the pulled folder verifies under any name.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, cast

from omsign.errors import ModelError
from omsign.hashing import DEFAULT_IGNORES, ChangedWhileHashingError, EntryLike, OpenEntry
from omsign.oci import Reference, Registry, RegistryContentError, check_descriptor
from omsign.oci._blob import read_exactly
from omsign.sources._oci_layers import (
    MAX_LAYERS,
    classify,
    decompressed,
    same_name_check,
    stream_members,
)

__all__ = ["OciEntry", "OciReader", "OciSource", "open_source"]

logger = logging.getLogger("omsign")

_CHUNK = 1 << 20
_registries: dict[tuple[str, bool], Registry] = {}
_lock = threading.Lock()
# A forked worker must not share its parent's open connections: it makes its own.
os.register_at_fork(after_in_child=_registries.clear)


def _registry(reference: Reference, insecure: bool) -> Registry:
    """One client per repository and process (the reader runs in threads and processes)."""
    key = (f"{reference.registry}/{reference.repository}", insecure)
    with _lock:
        if key not in _registries:
            _registries[key] = Registry(reference, insecure=insecure)
        return _registries[key]


@dataclass(frozen=True, slots=True)
class OciEntry:
    """One file of a registry model.

    Attributes:
        name: model-relative name.
        size: size in bytes.
        layer: the digest of the layer that holds it.
        packing: ``raw`` (the layer is the file), ``tar``, ``gzip`` or ``zstd``.
        offset: where its bytes start in the (decompressed) layer.
        sha256: its sha256 (the layer digest for a file layer; hashed when listed for a
            tar member).
    """

    name: str
    size: int
    layer: str
    packing: str
    offset: int
    sha256: bytes

    @property
    def stamp(self) -> tuple[str, int, int]:
        """Content-addressed: the layer digest, offset and size."""
        return (self.layer, self.offset, self.size)

    def known_digest(self, algorithm: str) -> bytes | None:
        """The sha256 known from the listing; other digests must be computed."""
        return self.sha256 if algorithm == "sha256" else None


class _OpenOci:
    """An entry opened for reads: one stream per run of sequential reads.

    A file layer or a member of an uncompressed tar is read by range from the offset
    asked; a member of a compressed tar by decompressing its layer up to it. Bytes read
    in order from the start are hashed, and a file read whole must match the sha256 it
    was listed with.
    """

    def __init__(self, registry: Registry, entry: OciEntry) -> None:
        self.registry = registry
        self.entry = entry
        self.stream: IO[bytes] | None = None
        self.position = 0
        self.hasher: Any = hashlib.sha256()
        self.hashed = 0

    def _reopen(self, offset: int) -> IO[bytes]:
        self.close()
        e = self.entry
        stream: IO[bytes]
        if e.packing in ("raw", "tar"):
            section = self.registry.blob_section(e.layer, e.offset + offset, e.offset + e.size)
            stream = cast("IO[bytes]", section)
        else:
            blob = cast("IO[bytes]", self.registry.blob(e.layer))
            stream = decompressed(blob, e.packing, e.name)
            skip = e.offset + offset
            while skip > 0:
                got = stream.read(min(_CHUNK, skip))
                if not got:
                    raise ChangedWhileHashingError(f"{e.name}: the layer ends before the file")
                skip -= len(got)
        self.stream, self.position = stream, offset
        return stream

    def read(self, offset: int, size: int) -> bytes:
        size = min(size, self.entry.size - offset)
        if size <= 0:
            return b""
        stream = self.stream
        if stream is None or offset != self.position:
            stream = self._reopen(offset)
        data = read_exactly(stream, size)
        if offset == self.hashed:
            self.hasher.update(data)
            self.hashed += len(data)
        self.position = offset + len(data)
        return data

    def check_unchanged(self) -> None:
        if self.hashed == self.entry.size and self.hasher.digest() != self.entry.sha256:
            raise RegistryContentError(
                f"{self.entry.name}: the registry served other bytes than when it was listed"
            )

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None


@dataclass(frozen=True, slots=True)
class OciReader:
    """Reads registry entries (picklable: each process makes its own client)."""

    reference: Reference
    insecure: bool = False

    def open(self, entry: EntryLike) -> OpenEntry:
        """Opens an :class:`OciEntry`."""
        if not isinstance(entry, OciEntry):
            raise TypeError(f"the registry reader reads registry entries, not {type(entry)}")
        return _OpenOci(_registry(self.reference, self.insecure), entry)


def _ignored(name: str, ignores: set[str], keep: set[str]) -> bool:
    if name in keep:
        return False
    parts = name.split("/")
    return any("/".join(parts[:i]) in ignores for i in range(1, len(parts) + 1))


class OciSource:
    """A model in an OCI registry (see the module docstring and ``ModelSource``).

    Attributes:
        reference: the reference as given.
        resolved: the reference pinned to the manifest's digest.
        manifest: the manifest's bytes (checked against ``resolved.digest``).
        digest: the manifest's digest; ``manifest_size`` its size; ``media_type`` its type.
        registry: the client for the model's repository.
    """

    def __init__(self, reference: Reference, *, insecure: bool = False) -> None:
        self.reference = reference
        self.insecure = insecure
        self.registry = _registry(reference, insecure)
        data, digest, media_type = self.registry.manifest(reference)
        self.manifest = data
        self.media_type = media_type
        self.resolved = reference.with_digest(digest)
        if reference.digest is None:
            logger.info("%s: tag %s resolved to %s", reference.url(), reference.reference, digest)
        self.digest = digest
        self.manifest_size = len(data)
        self.name = reference.name
        self.location = self.resolved.url()
        self.key = self.resolved.url()
        self.path = None
        self.is_dir = True
        self.link_policy = None
        self._layers = self._parse_layers()
        self._listing: list[OciEntry] | None = None

    def _parse_layers(self) -> list[dict[str, Any]]:
        where = self.location
        try:
            manifest = json.loads(self.manifest)
        except ValueError:
            raise RegistryContentError(f"{where}: the manifest is not JSON") from None
        if not isinstance(manifest, dict) or "manifests" in manifest:
            raise ModelError(
                f"{where}: an image index, not a manifest",
                hint="name one of its manifests by digest",
            )
        layers = manifest.get("layers")
        if not isinstance(layers, list):
            raise RegistryContentError(f"{where}: the manifest has no layers list")
        if len(layers) > MAX_LAYERS:
            raise RegistryContentError(f"{where}: more than {MAX_LAYERS} layers")
        return [check_descriptor(d, where) for d in layers]

    def _list(self) -> list[OciEntry]:
        if self._listing is not None:
            return self._listing
        seen = same_name_check(self.location)
        out: list[OciEntry] = []
        for descriptor in self._layers:
            digest, size = descriptor["digest"], descriptor["size"]
            where = f"{self.location} layer {digest}"
            kind = classify(descriptor, where)
            if kind.kind == "file":
                seen(kind.path)
                sha = bytes.fromhex(digest.split(":", 1)[1])
                out.append(OciEntry(kind.path, size, digest, "raw", 0, sha))
                continue
            blob = self.registry.blob(digest, size=size)
            with blob:
                tar = decompressed(cast("IO[bytes]", blob), kind.packing, where)
                for m in stream_members(tar, kind, where, seen):
                    out.append(OciEntry(m.name, m.size, digest, kind.packing, m.offset, m.sha256))
                for _ in iter(lambda: tar.read(_CHUNK), b""):  # noqa: B023
                    pass  # to the end of the archive: trailing blocks
                for _ in iter(lambda: blob.read(_CHUNK), b""):  # noqa: B023
                    pass  # the blob's end checks its digest and size
        out.sort(key=lambda e: e.name)
        self._listing = out
        return out

    def entries(
        self,
        *,
        ignore_paths: Sequence[str] = (),
        allow_symlinks: bool = False,
        names: Sequence[str] | None = None,
        keep: Sequence[str] = (),
    ) -> list[OciEntry]:
        """The model's files, sorted by name (tar layers are streamed once, here)."""
        listing = self._list()
        if names is not None:
            wanted = set(names)
            return [e for e in listing if e.name in wanted]
        ignores = {*DEFAULT_IGNORES, *ignore_paths}
        kept = set(keep)
        return [e for e in listing if not _ignored(e.name, ignores, kept)]

    def reader(self) -> OciReader:
        """Reads this model's entries from the registry."""
        return OciReader(self.resolved, self.insecure)


def open_source(name: str, link_policy: object = None) -> OciSource:
    """The model source of ``oci://REGISTRY/REPO[:TAG|@sha256:DIGEST]``.

    Raises:
        UsageError: the reference is malformed.
        RegistryError: the registry cannot be used.
        RegistryContentError: the manifest does not match its digest.
    """
    return OciSource(Reference.parse(name))
