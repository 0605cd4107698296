"""The hashing plan: batches cover every unit once and the workers finish together."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from omsign.hashing._plan import Batch, Unit, batch_limit, plan_batches, plan_units

MIB = 1 << 20


@dataclass(frozen=True)
class _Entry:
    name: str
    size: int


def _units(sizes: list[int], shard_size: int | None = None) -> list[Unit]:
    return plan_units([_Entry(f"f{i:03}", s) for i, s in enumerate(sizes)], shard_size)


def _finish_times(batches: list[Batch], workers: int) -> list[int]:
    """When each worker finishes if every free worker takes the next batch in plan order."""
    free = [0] * workers
    for batch in batches:
        heapq.heappush(free, heapq.heappop(free) + batch.size)
    return sorted(free)


def _optimum(sizes: list[int], workers: int) -> int:
    """The best possible finish time over every assignment of whole units to workers."""
    best = sum(sizes)
    for assignment in itertools.product(range(workers), repeat=len(sizes)):
        loads = [0] * workers
        for size, worker in zip(sizes, assignment, strict=True):
            loads[worker] += size
        best = min(best, max(loads))
    return best


def test_ten_equal_files_keep_both_cores_busy_to_the_end() -> None:
    # 10 files of 10 MiB: batches of up to 32 MiB made 40 + 40 + 20 MiB, and one core
    # hashed the last 20 MiB alone.
    batches = plan_batches(_units([10 * MIB] * 10), 2)
    assert [b.end - b.begin for b in batches] == [1] * 10
    assert _finish_times(batches, 2) == [50 * MIB, 50 * MIB]


def test_uneven_files_finish_together() -> None:
    sizes = [19, 16, 14, 12, 10, 9, 8, 6, 4, 2]
    batches = plan_batches(_units([s * MIB for s in sizes]), 2)
    assert _finish_times(batches, 2) == [50 * MIB, 50 * MIB]


def test_many_small_files_are_grouped_but_into_enough_batches_to_share() -> None:
    units = _units([64 << 10] * 1000)  # 62.5 MiB of 64 KiB files
    batches = plan_batches(units, 2)
    assert len(batches) >= 8
    assert max(b.size for b in batches) <= batch_limit(1000 * (64 << 10), 2)
    finish = _finish_times(batches, 2)
    assert finish[-1] - finish[0] <= batch_limit(1000 * (64 << 10), 2)


def test_batches_shrink_towards_the_end_so_the_last_ones_even_out_the_finish() -> None:
    # 100 files of 1 MiB: batches of a fixed 12 MiB left one core 4 MiB behind
    units = _units([1 * MIB] * 100)
    batches = plan_batches(units, 2)
    in_model_order = [b.size for b in sorted(batches, key=lambda b: b.begin)]
    assert in_model_order == sorted(in_model_order, reverse=True)
    assert in_model_order[-1] == 1 * MIB
    assert _finish_times(batches, 2) == [50 * MIB, 50 * MIB]


def test_tiny_files_are_grouped_into_batches_of_a_mebibyte_or_256_units() -> None:
    batches = plan_batches(_units([4096] * 20_000), 2)
    assert {b.end - b.begin for b in batches[:-1]} == {256}
    assert len(batches) == 79


def test_a_big_file_starts_first_and_small_ones_fill_the_gaps() -> None:
    sizes = [1 * MIB] * 30 + [40 * MIB]
    batches = plan_batches(_units(sizes), 2)
    assert (batches[0].begin, batches[0].end) == (30, 31)
    assert _finish_times(batches, 2) == [30 * MIB, 40 * MIB]  # no plan ends before the big file


def test_shards_of_one_file_spread_over_every_worker() -> None:
    batches = plan_batches(_units([1 << 30], 64 * MIB), 3)
    assert len(batches) == 16
    finish = _finish_times(batches, 3)
    assert finish[-1] - finish[0] <= 64 * MIB


@settings(max_examples=150, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 48 * MIB), min_size=1, max_size=6),
    workers=st.integers(1, 3),
)
def test_the_plan_is_within_a_third_of_the_best_schedule(sizes: list[int], workers: int) -> None:
    units = _units(sizes)
    batches = plan_batches(units, workers)
    # every unit once, in contiguous batches, largest first
    assert [i for b in sorted(batches, key=lambda b: b.begin) for i in range(b.begin, b.end)] == (
        list(range(len(units)))
    )
    assert all(b.size == sum(sizes[b.begin : b.end]) for b in batches)
    assert [b.size for b in batches] == sorted((b.size for b in batches), reverse=True)
    # longest-processing-time first is within 4/3 of the optimum; grouping small units
    # adds at most one batch limit
    limit = batch_limit(sum(sizes), workers)
    assert all(b.size <= limit for b in batches if b.end - b.begin > 1)
    makespan = _finish_times(batches, workers)[-1]
    assert makespan <= _optimum(sizes, workers) * 4 / 3 + limit


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 8 * MIB), min_size=1, max_size=400),
    workers=st.integers(1, 8),
)
def test_no_worker_idles_longer_than_one_batch(sizes: list[int], workers: int) -> None:
    batches = plan_batches(_units(sizes), workers)
    finish = _finish_times(batches, workers)
    largest = max(b.size for b in batches)
    assert finish[-1] - finish[0] <= largest
