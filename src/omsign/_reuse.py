"""Incremental re-signing: a digest cache kept beside the user's data, never in the model.

``omsign sign --reuse-digests`` re-hashes only the files whose size, modification time,
inode, device or change time differ from what this cache recorded for them. The cache
lives in ``$OMSIGN_CACHE_DIR``, else ``$XDG_CACHE_HOME/omsign``, else ``~/.cache/omsign``,
one JSON file per (absolute model path, hash type, shard size); it is never written into
the model or the signature, and verification never reads it.

A file changed within the timestamp resolution of its last hashing could keep the same
metadata, so a file whose modification or change time lies less than
:data:`RACY_WINDOW_NS` before the hashing started is not recorded (as git does for
"racily clean" entries). A corrupt or foreign cache file is ignored with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omsign._atomic import write_atomic
from omsign.hashing import FileEntry, plan_units

__all__ = ["RACY_WINDOW_NS", "DigestCache", "cache_dir"]

logger = logging.getLogger("omsign")

_VERSION = 1
# Files modified this close to the start of hashing are not recorded (coarse timestamps).
RACY_WINDOW_NS = 2_000_000_000


def cache_dir() -> Path:
    """Where digest caches live (``$OMSIGN_CACHE_DIR``, XDG cache, ``~/.cache/omsign``)."""
    if os.environ.get("OMSIGN_CACHE_DIR"):
        return Path(os.environ["OMSIGN_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "omsign"


def _stamp(entry: FileEntry) -> list[int]:
    return list(entry.stamp)


class DigestCache:
    """The digests recorded for one model and one hashing setting."""

    def __init__(self, model: str | Path, hash_type: str, shard_size: int | None) -> None:
        self.model = os.path.abspath(model) if isinstance(model, Path) else model
        self.hash_type = hash_type
        self.shard_size = shard_size
        key = json.dumps([_VERSION, self.model, hash_type, shard_size])
        self.path = cache_dir() / (hashlib.sha256(key.encode()).hexdigest() + ".json")
        self._files: dict[str, Any] = {}

    @classmethod
    def load(cls, model: str | Path, hash_type: str, shard_size: int | None) -> DigestCache:
        """Reads the cache for these settings; an absent or corrupt one is empty.

        Args:
            model: the model source's key (an absolute path or a URL), or its local path.
            hash_type: the hash algorithm.
            shard_size: the shard size, or None for files mode.
        """
        cache = cls(model, hash_type, shard_size)
        try:
            with open(cache.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return cache
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable digest cache %s (%s)", cache.path, exc)
            return cache
        header = [_VERSION, cache.model, hash_type, shard_size]
        if (
            not isinstance(data, dict)
            or data.get("key") != header
            or not isinstance(data.get("files"), dict)
        ):
            logger.warning("ignoring digest cache %s: not a cache for this model", cache.path)
            return cache
        cache._files = data["files"]
        return cache

    def lookup(self, entry: FileEntry) -> list[tuple[str, bytes]] | None:
        """The recorded ``(resource name, digest)`` pairs if the file is unchanged."""
        record = self._files.get(entry.name)
        if not isinstance(record, dict) or record.get("stat") != _stamp(entry):
            return None
        digests = record.get("digests")
        names = [u.name for u in plan_units([entry], self.shard_size)]
        if not isinstance(digests, dict) or sorted(digests) != sorted(names):
            return None
        try:
            return [(n, bytes.fromhex(digests[n])) for n in names]
        except (TypeError, ValueError):
            return None

    def split(
        self, entries: Sequence[FileEntry]
    ) -> tuple[list[tuple[str, bytes]], list[FileEntry]]:
        """Splits files into reused digests and the files that must be hashed."""
        reused: list[tuple[str, bytes]] = []
        todo: list[FileEntry] = []
        for entry in entries:
            found = self.lookup(entry)
            if found is None:
                todo.append(entry)
            else:
                reused.extend(found)
        return reused, todo

    def record(
        self, entries: Sequence[FileEntry], pairs: Sequence[tuple[str, bytes]], started_ns: int
    ) -> None:
        """Replaces the records with these files' digests (racily recent files left out)."""
        by_name: dict[str, dict[str, str]] = {}
        for entry in entries:
            by_name[entry.name] = {}
        owner = {u.name: u.entry.name for u in plan_units(entries, self.shard_size)}
        for name, digest in pairs:
            by_name[owner[name]][name] = digest.hex()
        limit = started_ns - RACY_WINDOW_NS
        self._files = {
            e.name: {"stat": _stamp(e), "digests": by_name[e.name]}
            for e in entries
            if max(e.mtime_ns, e.ctime_ns) < limit
        }

    def save(self) -> None:
        """Writes the cache atomically (private file mode); failures only warn."""
        data = {
            "key": [_VERSION, self.model, self.hash_type, self.shard_size],
            "files": self._files,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomic(self.path, json.dumps(data, separators=(",", ":")).encode(), 0o600)
        except OSError as exc:
            logger.warning("could not write the digest cache %s (%s)", self.path, exc)
