"""Enumerating and hashing a model: OMS sections 6.1 to 6.3, at the speed of the hardware."""

from __future__ import annotations

from collections.abc import Sequence

from omsign.hashing._algorithms import ALGORITHMS, check_algorithm, new_hasher
from omsign.hashing._engine import (
    ChangedWhileHashingError,
    Progress,
    Unit,
    hash_units,
    open_checked,
    plan_units,
    worker_count,
)
from omsign.hashing._walk import (
    DEFAULT_IGNORES,
    FileEntry,
    LinkPolicy,
    entries_for,
    enumerate_model,
    normalize_ignore,
)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_IGNORES",
    "ChangedWhileHashingError",
    "FileEntry",
    "LinkPolicy",
    "Progress",
    "Unit",
    "check_algorithm",
    "entries_for",
    "enumerate_model",
    "hash_entries",
    "hash_units",
    "new_hasher",
    "normalize_ignore",
    "open_checked",
    "plan_units",
    "worker_count",
]


def hash_entries(
    entries: Sequence[FileEntry],
    algorithm: str,
    shard_size: int | None = None,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[tuple[str, bytes]]:
    """Hashes enumerated files; returns ``(resource name, raw digest)`` pairs.

    Args:
        entries: files from :func:`enumerate_model`.
        algorithm: ``sha256``, ``blake2b`` or ``blake3``.
        shard_size: ``None`` for ``files`` mode, else the shard size in bytes.
        workers: hashing threads (default: every usable CPU).
        progress: called with byte counts as data is hashed.
    """
    check_algorithm(algorithm)
    units = plan_units(entries, shard_size)
    digests = hash_units(units, algorithm, workers=workers, progress=progress)
    return [(u.name, d) for u, d in zip(units, digests, strict=True)]
