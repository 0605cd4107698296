"""The hashing plan: what to hash, in which batches, in which order. Pure and picklable.

Work is cut into units (a whole file in ``files`` mode, one shard in ``shards`` mode,
OMS 6.3). Consecutive small units are grouped into batches so that per-task overhead
stays negligible, but never into batches so large that the cores could not share the
work evenly: a batch holds at most a fraction of each worker's share of the bytes left,
so batches shrink towards the end of the plan. Batches run the largest first
(longest-processing-time first): the big units start at once and the small ones fill the
gaps at the end, so no core idles while another finishes a big file. Units and batches are
frozen values that pickle, so any executor can run them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from omsign.hashing._io import EntryLike

__all__ = ["Batch", "Unit", "parallel", "plan_batches", "plan_units", "unit_bytes"]

_BATCH_BYTES = 32 << 20  # a batch of small units holds at most this much
_BATCH_UNITS = 256  # ... and at most this many units
_MIN_BATCH_BYTES = 1 << 20  # small units are grouped up to at least this much
_BATCHES_PER_WORKER = 4  # a batch holds at most 1/(workers x this) of the model's bytes
_PARALLEL_MEAN = 16 << 10  # below this mean unit size, one thread beats several (GIL-bound)


@dataclass(frozen=True, slots=True)
class Unit:
    """One piece of work: bytes ``[start, end)`` of ``entry``, recorded as ``name``."""

    entry: EntryLike
    start: int
    end: int
    name: str


@dataclass(frozen=True, slots=True)
class Batch:
    """Units ``[begin, end)`` of a plan, run by one worker; ``size`` is their byte count."""

    begin: int
    end: int
    size: int


def plan_units(entries: Sequence[EntryLike], shard_size: int | None) -> list[Unit]:
    """Cuts files into units: one per file, or one per shard (OMS 6.3.2).

    In shards mode, empty files produce no unit and each name is ``path:start:end``.
    """
    if shard_size is None:
        return [Unit(e, 0, e.size, e.name) for e in entries]
    units = []
    for e in entries:
        for start in range(0, e.size, shard_size):
            end = min(start + shard_size, e.size)
            units.append(Unit(e, start, end, f"{e.name}:{start}:{end}"))
    return units


def unit_bytes(units: Sequence[Unit]) -> int:
    """The number of bytes the units cover."""
    return sum(u.end - u.start for u in units)


def batch_limit(total: int, workers: int) -> int:
    """The most bytes a batch of several units may hold while ``workers`` share ``total``."""
    share = total // (max(1, workers) * _BATCHES_PER_WORKER)
    return max(_MIN_BATCH_BYTES, min(_BATCH_BYTES, share))


def _batches(units: Sequence[Unit], workers: int) -> list[Batch]:
    """Groups consecutive units into batches that shrink as the work left shrinks.

    Each batch holds at most :func:`batch_limit` of the bytes not yet batched (and at most
    ``_BATCH_UNITS`` units), so the smallest batches come last and even out the finish
    (guided self-scheduling). A unit larger than the limit is a batch of its own.
    """
    out: list[Batch] = []
    begin, size = 0, 0
    remaining = unit_bytes(units)
    limit = batch_limit(remaining, workers)
    for i, unit in enumerate(units):
        n = unit.end - unit.start
        if i > begin and (size + n > limit or i - begin >= _BATCH_UNITS):
            out.append(Batch(begin, i, size))
            remaining -= size
            limit = batch_limit(remaining, workers)
            begin, size = i, 0
        size += n
    if begin < len(units):
        out.append(Batch(begin, len(units), size))
    return out


def plan_batches(units: Sequence[Unit], workers: int) -> list[Batch]:
    """Batches in the order to run them: most bytes first, ties in model order.

    Longest-processing-time first with batches small enough to share: whichever worker
    is free takes the next batch, and the last ones to run are the smallest.
    """
    batches = _batches(units, workers)
    return sorted(batches, key=lambda b: (-b.size, b.begin))


def parallel(units: Sequence[Unit], batches: int, workers: int) -> bool:
    """Whether spreading the batches over several threads pays off.

    Per-file work (open, stat, close, creating a hasher) holds the GIL; only reading
    and hashing run in parallel. When the files are tiny, threads mostly wait for each
    other, and one thread is faster (measured: 20,000 files of 4 KiB).
    """
    if workers == 1 or batches == 1:
        return False
    return unit_bytes(units) >= _PARALLEL_MEAN * len(units)
