"""Hashing on any executor: a process pool gives the same digests and catches the same changes."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import pickle
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import blake3
import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from omsign.errors import IntegrityError, ModelError
from omsign.hashing import (
    ChangedWhileHashingError,
    EntryLike,
    FileEntry,
    LocalReader,
    OpenEntry,
    enumerate_model,
    hash_entries,
    plan_units,
)
from omsign.options import HashOptions, Runtime

ALGORITHMS = ("sha256", "blake2b", "blake3")
REFERENCE = {
    "sha256": lambda d: hashlib.sha256(d).digest(),
    "blake2b": lambda d: hashlib.blake2b(d).digest(),
    "blake3": lambda d: blake3.blake3(d).digest(),
}


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as executor:
        yield executor


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    files = {f"small/{i:02}.json": os.urandom(i * 101) for i in range(12)}
    files |= {"empty": b"", "w1.bin": os.urandom(700_001), "w2.bin": os.urandom(1_300_000)}
    return make_model(tmp_path_factory.mktemp("exec") / "m", files)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("shard_size", [None, 250_000])
def test_a_process_pool_gives_the_digest_of_the_built_in_engine(
    pool: ProcessPoolExecutor, model: Path, algorithm: str, shard_size: int | None
) -> None:
    options = {"hash_algorithm": algorithm, "shard_size": shard_size}
    assert omsign.digest(model, executor=pool, **options) == omsign.digest(model, **options)


def test_sign_and_verify_hash_on_the_executor_they_are_given(
    pool: ProcessPoolExecutor, tmp_path: Path, p256: KeyPair
) -> None:
    m = make_model(tmp_path / "m", {"a": os.urandom(300_000), "b/c": b"c", "d": b""})
    hashing = HashOptions(algorithm="blake2b", shard_size=100_000)
    signed = omsign.sign(m, key=p256.private, hashing=hashing, runtime=Runtime(executor=pool))
    assert signed.root_digest == omsign.digest(m, hashing=hashing)
    result = omsign.verify(m, key=p256.public, executor=pool)
    assert result.root_digest == signed.root_digest
    (m / "b" / "c").write_bytes(b"C")
    with pytest.raises(IntegrityError, match="b/c"):
        omsign.verify(m, key=p256.public, executor=pool)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_process_pool_gives_every_resource_digest_byte_for_byte(
    pool: ProcessPoolExecutor, model: Path, algorithm: str
) -> None:
    entries = enumerate_model(model)
    for shard_size in (None, 100_000):
        built_in = hash_entries(entries, algorithm, shard_size, workers=2)
        assert hash_entries(entries, algorithm, shard_size, executor=pool) == built_in


def test_a_fresh_interpreter_can_run_the_batches(model: Path) -> None:
    spawn = multiprocessing.get_context("spawn")
    entries = enumerate_model(model)
    with ProcessPoolExecutor(1, mp_context=spawn) as fresh:
        got = hash_entries(entries, "sha256", 300_000, executor=fresh)
    assert got == hash_entries(entries, "sha256", 300_000)


def test_any_executor_runs_the_plan(model: Path) -> None:
    entries = enumerate_model(model)
    with ThreadPoolExecutor(3) as threads:
        got = hash_entries(entries, "blake2b", 64_000, executor=threads)
    assert got == hash_entries(entries, "blake2b", 64_000)


def test_units_readers_and_entries_survive_pickling(model: Path) -> None:
    units = plan_units(enumerate_model(model), 100_000)
    again = pickle.loads(pickle.dumps(units))
    assert again == units
    # the shards of one file still share one entry, so a batch opens the file once
    shards = [u for u in again if u.entry.name == "w1.bin"]
    assert len(shards) == 8
    assert all(u.entry is shards[0].entry for u in shards)
    assert pickle.loads(pickle.dumps(LocalReader())) == LocalReader()


def test_progress_counts_each_batch_once_as_it_completes(
    pool: ProcessPoolExecutor, model: Path
) -> None:
    entries = enumerate_model(model)
    seen: list[tuple[int, str]] = []
    hash_entries(
        entries,
        "sha256",
        100_000,
        executor=pool,
        progress=lambda n: seen.append((n, threading.current_thread().name)),
    )
    assert sum(n for n, _ in seen) == sum(e.size for e in entries)
    assert {name for _, name in seen} == {threading.current_thread().name}


@pytest.mark.parametrize("shard_size", [None, 100_000])
def test_a_file_that_shrank_is_reported_from_a_process_pool(
    pool: ProcessPoolExecutor, tmp_path: Path, shard_size: int | None
) -> None:
    m = make_model(tmp_path / "m", {"w": os.urandom(1_000_000), "x": b"x"})
    entries = enumerate_model(m)
    os.truncate(m / "w", 500_000)
    with pytest.raises(ChangedWhileHashingError, match=r"w: file (shrank|changed)"):
        hash_entries(entries, "sha256", shard_size, executor=pool)


def test_a_replaced_or_missing_file_is_reported_from_a_process_pool(
    pool: ProcessPoolExecutor, tmp_path: Path
) -> None:
    m = make_model(tmp_path / "m", {"w": os.urandom(100), "gone": b"1"})
    entries = enumerate_model(m)
    os.replace(make_model(tmp_path / "n", {"x": os.urandom(100)}) / "x", m / "w")
    with pytest.raises(ChangedWhileHashingError, match="w: was replaced"):
        hash_entries([e for e in entries if e.name == "w"], "sha256", executor=pool)
    (m / "gone").unlink()
    with pytest.raises(ModelError, match="gone: cannot open"):
        hash_entries([e for e in entries if e.name == "gone"], "sha256", executor=pool)


@dataclass(frozen=True)
class _AppendingReader:
    """Reads local files and appends to each one right after its first read (in the worker)."""

    inner: LocalReader = field(default_factory=LocalReader)

    def open(self, entry: EntryLike) -> OpenEntry:
        opened = self.inner.open(entry)
        assert isinstance(entry, FileEntry)
        path = entry.path

        class Appending:
            def read(self, offset: int, size: int) -> bytes:
                data = opened.read(offset, size)
                with open(path, "ab") as f:
                    f.write(b"!")
                return data

            def check_unchanged(self) -> None:
                opened.check_unchanged()

            def close(self) -> None:
                opened.close()

        return Appending()


@pytest.mark.parametrize("shard_size", [None, 400_000])
def test_a_file_changed_while_a_process_hashes_it_is_reported(
    pool: ProcessPoolExecutor, tmp_path: Path, shard_size: int | None
) -> None:
    m = make_model(tmp_path / "m", {"w": os.urandom(1_000_000)})
    entries = enumerate_model(m)
    with pytest.raises(ChangedWhileHashingError, match="w: file changed while it was being hashed"):
        hash_entries(entries, "sha256", shard_size, executor=pool, reader=_AppendingReader())
    assert (m / "w").stat().st_size > 1_000_000  # the worker process did write


@dataclass(frozen=True)
class _Blob:
    name: str
    size: int


@dataclass(frozen=True)
class _MemoryReader:
    """A source that is not a local folder: it only supplies a reader."""

    blobs: dict[str, bytes]

    def open(self, entry: EntryLike) -> OpenEntry:
        data, size = self.blobs[entry.name], entry.size

        class Opened:
            def read(self, offset: int, n: int) -> bytes:
                return data[offset : offset + n]

            def check_unchanged(self) -> None:
                if len(data) != size:
                    raise ChangedWhileHashingError(f"{entry.name}: changed")

            def close(self) -> None:
                pass

        return Opened()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_another_source_only_supplies_a_reader(pool: ProcessPoolExecutor, algorithm: str) -> None:
    blobs = {"a": os.urandom(300_000), "b/c": os.urandom(5), "d": b""}
    entries = [_Blob(n, len(d)) for n, d in sorted(blobs.items())]
    reader = _MemoryReader(blobs)
    want = [(n, REFERENCE[algorithm](d)) for n, d in sorted(blobs.items())]
    assert hash_entries(entries, algorithm, reader=reader, workers=2) == want
    assert hash_entries(entries, algorithm, reader=reader, executor=pool) == want
    short = [_Blob("a", 400_000)]
    with pytest.raises(ChangedWhileHashingError, match="a: file shrank"):
        hash_entries(short, algorithm, reader=reader)


@dataclass
class _ThreadRecorder:
    threads: set[str] = field(default_factory=set)

    def open(self, entry: EntryLike) -> OpenEntry:
        self.threads.add(threading.current_thread().name)
        return LocalReader().open(entry)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_built_in_engine_never_hashes_in_the_calling_thread(model: Path, workers: int) -> None:
    recorder = _ThreadRecorder()
    hash_entries(enumerate_model(model), "sha256", workers=workers, reader=recorder)
    assert recorder.threads
    assert threading.current_thread().name not in recorder.threads


class _CountingReader:
    """The local reader, counting the reads that allocate a new buffer and those that reuse one."""

    def __init__(self) -> None:
        self.fresh = 0
        self.reused = 0

    def open(self, entry: EntryLike) -> OpenEntry:
        inner = LocalReader().open(entry)
        outer = self

        class _Counted:
            def read(self, offset: int, size: int) -> bytes:
                outer.fresh += 1
                return inner.read(offset, size)

            def readinto(self, offset: int, buffer: memoryview) -> int:
                outer.reused += 1
                return inner.readinto(offset, buffer)  # type: ignore[attr-defined]

            def check_unchanged(self) -> None:
                inner.check_unchanged()

            def close(self) -> None:
                inner.close()

        return _Counted()  # type: ignore[return-value]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_batch_on_an_executor_reads_into_one_reused_buffer(
    tmp_path: Path, algorithm: str
) -> None:
    from omsign.hashing._executor import hash_batch

    data = os.urandom(3 * (1 << 20) + 5)
    (tmp_path / "w.bin").write_bytes(data)
    entries = enumerate_model(tmp_path)
    units = plan_units(entries, 1 << 21)
    reader = _CountingReader()
    with ThreadPoolExecutor(1) as pool:  # a worker thread, as in a Dask worker
        got = pool.submit(hash_batch, tuple(units), algorithm, reader).result()
    assert reader.reused >= 4 and reader.fresh == 0
    want = [REFERENCE[algorithm](data[u.start : u.end]) for u in units]
    assert got == want


def test_a_file_that_shrinks_under_a_reused_buffer_fails(tmp_path: Path) -> None:
    from omsign.hashing._executor import hash_batch

    path = tmp_path / "w.bin"
    path.write_bytes(os.urandom(3 << 20))
    entries = enumerate_model(tmp_path)
    units = plan_units(entries, None)
    os.truncate(path, 1 << 20)
    with pytest.raises((ChangedWhileHashingError, ModelError)):
        hash_batch(tuple(units), "sha256", LocalReader())


@dataclass
class _CheckingReader:
    """The memory reader with a run-level check: records each call, fails when told to."""

    blobs: dict[str, bytes]
    checked: list[list[str]] = field(default_factory=list)
    replaced: str | None = None

    def open(self, entry: EntryLike) -> OpenEntry:
        return _MemoryReader(self.blobs).open(entry)

    def check_entries(self, entries: list[EntryLike]) -> None:
        self.checked.append([e.name for e in entries])
        if self.replaced is not None:
            raise ChangedWhileHashingError(f"{self.replaced}: replaced")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_reader_that_checks_once_per_run_is_called_once_with_each_entry(
    pool: ProcessPoolExecutor, workers: int
) -> None:
    blobs = {"a": os.urandom(300_000), "b": os.urandom(200_000), "c": b"c"}
    entries = [_Blob(n, len(d)) for n, d in sorted(blobs.items())]
    reader = _CheckingReader(blobs)
    digests = hash_entries(entries, "sha256", 64_000, reader=reader, workers=workers)
    assert len(digests) > len(entries)  # several units per entry ...
    assert [sorted(c) for c in reader.checked] == [["a", "b", "c"]]  # ... one check per run
    reader.checked.clear()
    hash_entries(entries, "sha256", 64_000, reader=reader, executor=pool)
    assert [sorted(c) for c in reader.checked] == [["a", "b", "c"]]  # in the calling process
    reader.replaced = "b"
    with pytest.raises(ChangedWhileHashingError, match="b: replaced"):
        hash_entries(entries, "sha256", reader=reader, workers=workers)
