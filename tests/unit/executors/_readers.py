"""Readers that misbehave on a cluster worker, importable by the workers (pickled by name)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from omsign.hashing import EntryLike, LocalReader, OpenEntry


@dataclass(frozen=True)
class DyingOnceReader:
    """Kills the worker process the first time any worker opens an entry.

    ``marker`` is a file the first worker creates before dying; later attempts (on a
    restarted or another worker) find it and read normally.
    """

    marker: str
    inner: LocalReader = field(default_factory=LocalReader)

    def open(self, entry: EntryLike) -> OpenEntry:
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return self.inner.open(entry)
        os.close(fd)
        os._exit(17)  # the worker dies mid-run, as a lost machine would


@dataclass(frozen=True)
class FailingReader:
    """Fails on every attempt, as a unit whose storage keeps refusing it would."""

    def open(self, entry: EntryLike) -> OpenEntry:
        raise RuntimeError("storage refused the read")
