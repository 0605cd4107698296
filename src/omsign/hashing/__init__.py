"""Enumerating and hashing a model: OMS sections 6.1 to 6.3, at the speed of the hardware."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from omsign.hashing._algorithms import ALGORITHMS, check_algorithm, new_hasher
from omsign.hashing._executor import Progress, hash_batch, hash_units, worker_count
from omsign.hashing._io import (
    ChangedWhileHashingError,
    EntryLike,
    LocalReader,
    OpenEntry,
    Reader,
    open_checked,
)
from omsign.hashing._plan import Batch, Unit, plan_batches, plan_units
from omsign.hashing._walk import (
    DEFAULT_IGNORES,
    FileEntry,
    LinkPolicy,
    entries_for,
    enumerate_model,
    normalize_ignore,
)

if TYPE_CHECKING:
    from concurrent.futures import Executor

__all__ = [
    "ALGORITHMS",
    "DEFAULT_IGNORES",
    "Batch",
    "ChangedWhileHashingError",
    "EntryLike",
    "FileEntry",
    "LinkPolicy",
    "LocalReader",
    "OpenEntry",
    "Progress",
    "Reader",
    "Unit",
    "check_algorithm",
    "entries_for",
    "enumerate_model",
    "hash_batch",
    "hash_entries",
    "hash_units",
    "new_hasher",
    "normalize_ignore",
    "open_checked",
    "plan_batches",
    "plan_units",
    "worker_count",
]


def hash_entries(
    entries: Sequence[EntryLike],
    algorithm: str,
    shard_size: int | None = None,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
    executor: Executor | None = None,
    reader: Reader | None = None,
) -> list[tuple[str, bytes]]:
    """Hashes enumerated files; returns ``(resource name, raw digest)`` pairs.

    Args:
        entries: files from :func:`enumerate_model` (or entries ``reader`` opens).
        algorithm: ``sha256``, ``blake2b`` or ``blake3``.
        shard_size: ``None`` for ``files`` mode, else the shard size in bytes.
        workers: hashing threads (default: every usable CPU); with ``executor``, how
            many batches it runs at once.
        progress: called with byte counts as data is hashed (with ``executor``, as
            batches complete).
        executor: a :class:`concurrent.futures.Executor` to run the batches on instead
            of the built-in threads; the digests are the same.
        reader: opens the entries for range reads (default: the local checked reader).
    """
    check_algorithm(algorithm)
    units = plan_units(entries, shard_size)
    digests = hash_units(
        units, algorithm, workers=workers, progress=progress, executor=executor, reader=reader
    )
    return [(u.name, d) for u, d in zip(units, digests, strict=True)]
