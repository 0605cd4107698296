"""The manifest: what a model consists of, and how two manifests differ.

A :class:`Manifest` is the OMS predicate's content as frozen values: the resource
list (files or shards with their digests) and the serialization settings used to
produce it. :func:`compute_manifest` builds one from a model on disk;
:meth:`Manifest.diff` compares a signed manifest with a computed one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from omsign.errors import MalformedSignatureError
from omsign.hashing import (
    DEFAULT_IGNORES,
    FileEntry,
    LinkPolicy,
    Progress,
    check_algorithm,
    enumerate_model,
    hash_entries,
)

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from omsign.hashing import Reader

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "Difference",
    "Manifest",
    "ManifestItem",
    "Serialization",
    "compute_manifest",
    "split_shard_name",
]

DEFAULT_SHARD_SIZE = 1_000_000_000  # OMS 6.3.2
_MAX_DIGITS = 20  # byte offsets fit in 64 bits; longer numbers are not offsets
_OFFSET = re.compile(f"[0-9]{{1,{_MAX_DIGITS}}}")


def _brief(name: str) -> str:
    text = repr(name)
    return text if len(text) <= 80 else text[:77] + "..."


def split_shard_name(name: str) -> tuple[str, int, int]:
    """Splits ``path:start:end`` on the last two colons (OMS 6.3.2).

    Raises:
        MalformedSignatureError: the suffix is not two decimal offsets with start < end.
    """
    path, sep1, rest = name.rpartition(":")
    path2, sep2, start_s = path.rpartition(":")
    end_s = rest
    if not (sep1 and sep2 and _OFFSET.fullmatch(start_s) and _OFFSET.fullmatch(end_s)):
        raise MalformedSignatureError(
            f"shard resource name {_brief(name)} is not 'path:start:end' (offsets up to "
            f"{_MAX_DIGITS} decimal digits)"
        )
    start, end = int(start_s), int(end_s)
    if start >= end:
        raise MalformedSignatureError(
            f"shard resource {_brief(name)} has an empty or inverted range"
        )
    return path2, start, end


@dataclass(frozen=True, slots=True)
class ManifestItem:
    """One resource: a file (``files``) or a byte range of a file (``shards``)."""

    name: str
    digest: bytes


@dataclass(frozen=True)
class Serialization:
    """How the model was enumerated and hashed (OMS 5.2.2)."""

    method: Literal["files", "shards"] = "files"
    hash_type: str = "sha256"
    shard_size: int | None = None
    allow_symlinks: bool = False
    ignore_paths: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check_algorithm(self.hash_type)
        if (self.method == "shards") != (self.shard_size is not None):
            raise ValueError("shard_size is required for 'shards' and absent for 'files'")
        if self.shard_size is not None and self.shard_size <= 0:
            raise ValueError("shard_size must be positive")


@dataclass(frozen=True)
class Difference:
    """How a model on disk differs from a signed manifest, file by file.

    Attributes:
        missing: signed files that are absent from the model.
        extra: files in the model that are not signed (and not ignored).
        changed: files whose content differs from what was signed.
    """

    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the model matches the manifest exactly."""
        return not (self.missing or self.extra or self.changed)

    def counts(self) -> str:
        """How many files differ, by kind: ``2 changed, 1 missing, 3 unsigned``."""
        return ", ".join(
            f"{len(names):,} {label}"
            for label, names in (
                ("changed", self.changed),
                ("missing", self.missing),
                ("unsigned", self.extra),
            )
            if names
        )

    def summary(self, limit: int = 5) -> str:
        """A one-line description such as ``changed: a.bin; missing: b.json``."""
        parts = []
        for label, names in (
            ("changed", self.changed),
            ("missing", self.missing),
            ("unsigned", self.extra),
        ):
            if names:
                shown = ", ".join(names[:limit])
                more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
                parts.append(f"{label}: {shown}{more}")
        return "; ".join(parts)


@dataclass(frozen=True)
class Manifest:
    """A model's resources and the serialization that produced them."""

    items: tuple[ManifestItem, ...]
    serialization: Serialization = field(default_factory=Serialization)

    def root_digest(self) -> bytes:
        """SHA-256 over the concatenated raw digests, in listed order (OMS 6.5.1)."""
        h = hashlib.sha256()
        for item in self.items:
            h.update(item.digest)
        return h.digest()

    def file_name(self, item: ManifestItem) -> str:
        """The file path an item belongs to (the name itself in ``files`` mode)."""
        if self.serialization.method == "shards":
            return split_shard_name(item.name)[0]
        return item.name

    def by_file(self) -> dict[str, dict[str, bytes]]:
        """Groups resources by file: ``{path: {resource name: digest}}``."""
        grouped: dict[str, dict[str, bytes]] = {}
        for item in self.items:
            grouped.setdefault(self.file_name(item), {})[item.name] = item.digest
        return grouped

    def diff(self, actual: Manifest) -> Difference:
        """Compares this (signed) manifest with one computed from disk."""
        signed, seen = self.by_file(), actual.by_file()
        return Difference(
            missing=tuple(sorted(set(signed) - set(seen))),
            extra=tuple(sorted(set(seen) - set(signed))),
            changed=tuple(sorted(p for p in signed.keys() & seen.keys() if signed[p] != seen[p])),
        )


def recorded_ignores(user_ignores: Iterable[str]) -> tuple[str, ...]:
    """The ``ignore_paths`` to record: default ignores plus the user's, sorted, unique."""
    return tuple(sorted(set(DEFAULT_IGNORES) | set(user_ignores)))


def manifest_from_digests(
    pairs: Sequence[tuple[str, bytes]], serialization: Serialization
) -> Manifest:
    """Builds a manifest from ``(name, digest)`` pairs, sorted by code point (OMS 6.4)."""
    items = tuple(ManifestItem(n, d) for n, d in sorted(pairs, key=lambda p: p[0]))
    return Manifest(items, serialization)


def compute_manifest(
    model: Path,
    serialization: Serialization,
    *,
    link_policy: LinkPolicy | None = None,
    entries: Sequence[FileEntry] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
    reader: Reader | None = None,
) -> Manifest:
    """Enumerates and hashes a model with the given settings.

    Args:
        model: file or directory.
        serialization: method, hash, shard size, symlink policy and ignore paths
            (model-relative; the default ignores always apply).
        link_policy: links permitted even when symlinks are not allowed.
        entries: already enumerated files, to skip enumeration.
        workers: hashing threads.
        progress: byte-count callback.
        executor: runs the hashing instead of the built-in threads (same digests).
        reader: opens the entries for range reads (default: the local checked reader).
    """
    if entries is None:
        entries = enumerate_model(
            model,
            ignore_paths=serialization.ignore_paths or (),
            allow_symlinks=serialization.allow_symlinks,
            link_policy=link_policy,
        )
    pairs = hash_entries(
        entries,
        serialization.hash_type,
        serialization.shard_size,
        workers=workers,
        progress=progress,
        executor=executor,
        reader=reader,
    )
    return manifest_from_digests(pairs, serialization)
