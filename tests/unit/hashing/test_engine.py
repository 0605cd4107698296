"""The parallel hashing engine: scheduling, batches, mapped windows, change checks, memory."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import blake3
import pytest

from helpers.fixtures import make_model
from omsign.hashing import _executor, _plan, enumerate_model, hash_entries
from omsign.hashing._executor import hash_units
from omsign.hashing._io import ChangedWhileHashingError
from omsign.hashing._plan import Unit, plan_units

REFERENCE = {
    "sha256": lambda d: hashlib.sha256(d).digest(),
    "blake2b": lambda d: hashlib.blake2b(d).digest(),
    "blake3": lambda d: blake3.blake3(d).digest(),
}


def _shards(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.fixture
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrinks the engine's thresholds so that small test files take every code path."""
    monkeypatch.setattr(_executor, "_CHUNK", 4096)
    monkeypatch.setattr(_executor, "_PIPE_CHUNK", 96 << 10)
    monkeypatch.setattr(_executor, "_BLAKE3_THREADED", 200 << 10)
    monkeypatch.setattr(_plan, "_BATCH_BYTES", 256 << 10)
    monkeypatch.setattr(_plan, "_MIN_BATCH_BYTES", 64 << 10)
    monkeypatch.setattr(_plan, "_BATCH_UNITS", 5)
    monkeypatch.setattr(_plan, "_PARALLEL_MEAN", 0)


@pytest.mark.usefixtures("small_windows")
@pytest.mark.parametrize("algorithm", ["sha256", "blake2b", "blake3"])
@pytest.mark.parametrize("workers", [1, 2, 5])
def test_mixed_sizes_hash_the_same_in_any_schedule(
    tmp_path: Path, algorithm: str, workers: int
) -> None:
    data = {f"s{i:02}": os.urandom(i * 37) for i in range(23)}
    data |= {"big1": os.urandom(1_000_003), "big2": os.urandom(300_001), "mid": os.urandom(70_000)}
    entries = enumerate_model(make_model(tmp_path / "m", data))
    got = hash_entries(entries, algorithm, workers=workers)
    assert [n for n, _ in got] == sorted(data)
    assert dict(got) == {n: REFERENCE[algorithm](d) for n, d in data.items()}


@pytest.mark.usefixtures("small_windows")
@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_shards_at_unaligned_offsets_are_hashed_through_small_buffers(
    tmp_path: Path, algorithm: str
) -> None:
    data = os.urandom(1_234_567)
    entries = enumerate_model(make_model(tmp_path / "m", {"w.bin": data}))
    shard = 250_001  # not a multiple of the page size: windows start before the shard
    got = hash_entries(entries, algorithm, shard, workers=2)
    want = [REFERENCE[algorithm](part) for part in _shards(data, shard)]
    assert [d for _, d in got] == want


def test_real_thresholds_large_unaligned_shards(tmp_path: Path) -> None:
    data = os.urandom(21 << 20)
    entries = enumerate_model(make_model(tmp_path / "m", {"w": data}))
    shard = (5 << 20) + 12_345
    got = hash_entries(entries, "sha256", shard, workers=2)
    assert [d for _, d in got] == [hashlib.sha256(p).digest() for p in _shards(data, shard)]


@pytest.mark.usefixtures("small_windows")
def test_schedule_runs_the_biggest_batches_first_and_covers_every_unit(tmp_path: Path) -> None:
    sizes = [10, 500_000, 20, 30, 40, 50, 60, 70, 300_000, 5]
    m = make_model(tmp_path / "m", {f"f{i}": b"x" * s for i, s in enumerate(sizes)})
    units = plan_units(enumerate_model(m), None)
    order = _plan.plan_batches(units, 2)
    covered = sorted(i for b in order for i in range(b.begin, b.end))
    assert covered == list(range(len(units)))
    weights = [sum(u.end - u.start for u in units[b.begin : b.end]) for b in order]
    assert weights == sorted(weights, reverse=True)
    assert any(u.end == 500_000 for u in units[order[0].begin : order[0].end])


@pytest.mark.usefixtures("small_windows")
def test_batches_respect_unit_and_byte_limits(tmp_path: Path) -> None:
    m = make_model(tmp_path / "m", {f"f{i:02}": b"y" * 100 for i in range(12)})
    units = plan_units(enumerate_model(m), None)
    batches = _plan._batches(units, 2)
    assert [(b.begin, b.end) for b in batches] == [(0, 5), (5, 10), (10, 12)]
    assert [b.size for b in batches] == [500, 500, 200]


def test_tiny_files_are_hashed_in_one_thread_bigger_ones_in_parallel(tmp_path: Path) -> None:
    tiny = plan_units(enumerate_model(make_model(tmp_path / "t", {"a": b"1", "b": b"2"})), None)
    big = make_model(tmp_path / "b", {"a": b"1", "b": os.urandom(_plan._PARALLEL_MEAN * 2)})
    mixed = plan_units(enumerate_model(big), None)
    assert not _plan.parallel(tiny, 2, 4)
    assert _plan.parallel(mixed, 2, 4)
    assert not _plan.parallel(mixed, 1, 4)
    assert not _plan.parallel(mixed, 2, 1)


def test_no_units_no_digests() -> None:
    assert hash_units([], "sha256", workers=2) == []


@pytest.mark.usefixtures("small_windows")
@pytest.mark.parametrize("size", [10_000, 700_000])
def test_progress_counts_every_byte_once(tmp_path: Path, size: int) -> None:
    data = {"a": os.urandom(size), "b": os.urandom(size // 3), "c": b""}
    entries = enumerate_model(make_model(tmp_path / "m", data))
    seen: list[int] = []
    hash_entries(entries, "sha256", 100_000, workers=2, progress=seen.append)
    assert sum(seen) == sum(len(d) for d in data.values())


@pytest.mark.usefixtures("small_windows")
@pytest.mark.parametrize("shard_size", [None, 100_000])
def test_a_file_that_shrinks_is_reported_not_read_past_its_end(
    tmp_path: Path, shard_size: int | None
) -> None:
    m = make_model(tmp_path / "m", {"w": os.urandom(1_000_000)})
    entries = enumerate_model(m)
    os.truncate(m / "w", 500_000)
    with pytest.raises(ChangedWhileHashingError, match=r"shrank|changed"):
        hash_entries(entries, "sha256", shard_size, workers=2)


@pytest.mark.usefixtures("small_windows")
@pytest.mark.parametrize("size", [1000, 1_000_000])
def test_a_file_that_grows_is_reported(tmp_path: Path, size: int) -> None:
    m = make_model(tmp_path / "m", {"w": os.urandom(size)})
    entries = enumerate_model(m)
    with (m / "w").open("ab") as f:
        f.write(b"more")
    with pytest.raises(ChangedWhileHashingError, match="changed"):
        hash_entries(entries, "sha256", workers=2)


def test_a_replaced_file_is_reported(tmp_path: Path) -> None:
    m = make_model(tmp_path / "m", {"w": os.urandom(100)})
    entries = enumerate_model(m)
    os.replace(make_model(tmp_path / "n", {"x": os.urandom(100)}) / "x", m / "w")
    units = [Unit(entries[0], 0, 100, "w")]
    with pytest.raises(ChangedWhileHashingError, match="replaced"):
        hash_units(units, "sha256", workers=1)


# VmHWM is this process's own peak; ru_maxrss would include the pytest worker's, since
# Linux carries it across fork and exec.
_MEMORY_PROBE = """
import re, sys
from pathlib import Path
from omsign.hashing import enumerate_model, hash_entries
model, algorithm, shard = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]) or None
got = hash_entries(enumerate_model(model), algorithm, shard, workers=2)
peak_kb = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
print(len(got), peak_kb // 1024)
"""


@pytest.mark.parametrize(("algorithm", "shard"), [("sha256", 64 << 20), ("blake3", 0)])
def test_peak_memory_stays_bounded_on_a_big_file(
    tmp_path: Path, algorithm: str, shard: int
) -> None:
    model = tmp_path / "m"
    model.mkdir()
    for name in ("a", "b"):  # sparse: costs no disk, reads as zeros; hashed side by side
        with (model / name).open("wb") as f:
            f.truncate(384 << 20)
    probe = textwrap.dedent(_MEMORY_PROBE)
    out = subprocess.run(
        [sys.executable, "-c", probe, str(model), algorithm, str(shard)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    units, peak_mb = map(int, out.stdout.split())
    assert units == (12 if shard else 2)
    assert peak_mb < 150, f"peak resident memory {peak_mb} MB"
