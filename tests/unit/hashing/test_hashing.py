"""File and shard hashing (OMS 6.3) and the root digest (OMS 6.5.1)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import blake3
import pytest

from helpers.fixtures import make_model
from omsign.hashing import enumerate_model, hash_entries
from omsign.manifest import Serialization, compute_manifest

REFERENCE = {
    "sha256": lambda d: hashlib.sha256(d).digest(),
    "blake2b": lambda d: hashlib.blake2b(d).digest(),
    "blake3": lambda d: blake3.blake3(d).digest(),
}


@pytest.mark.parametrize("algorithm", ["sha256", "blake2b", "blake3"])
def test_files_mode_digest_is_the_whole_file_hash(tmp_path: Path, algorithm: str) -> None:
    data = {"a.bin": os.urandom(3_000_001), "b.txt": b"hello", "empty": b""}
    m = make_model(tmp_path / "m", data)
    got = dict(hash_entries(enumerate_model(m), algorithm))
    assert got == {n: REFERENCE[algorithm](d) for n, d in data.items()}


def test_blake3_uses_internal_threads_on_large_files_with_the_same_digest(tmp_path: Path) -> None:
    data = os.urandom(70 << 20)
    m = make_model(tmp_path / "m", {"big": data})
    assert dict(hash_entries(enumerate_model(m), "blake3", workers=2)) == {
        "big": blake3.blake3(data).digest()
    }


def test_shards_are_named_path_start_end_and_empty_files_are_omitted(tmp_path: Path) -> None:
    data = os.urandom(2500)
    m = make_model(tmp_path / "m", {"w.bin": data, "empty": b""})
    got = hash_entries(enumerate_model(m), "sha256", 1000)
    assert got == [
        ("w.bin:0:1000", hashlib.sha256(data[:1000]).digest()),
        ("w.bin:1000:2000", hashlib.sha256(data[1000:2000]).digest()),
        ("w.bin:2000:2500", hashlib.sha256(data[2000:]).digest()),
    ]


def test_parallel_and_serial_hashing_agree_on_many_small_files(tmp_path: Path) -> None:
    m = make_model(tmp_path / "m", {f"d{i % 7}/f{i}": os.urandom(i % 97) for i in range(600)})
    entries = enumerate_model(m)
    assert hash_entries(entries, "sha256", workers=1) == hash_entries(entries, "sha256", workers=4)


def test_root_digest_is_sha256_of_concatenated_digests_in_name_order(tmp_path: Path) -> None:
    m = make_model(tmp_path / "m", {"b": b"2", "a": b"1"})
    manifest = compute_manifest(m, Serialization())
    assert [i.name for i in manifest.items] == ["a", "b"]
    expected = hashlib.sha256(hashlib.sha256(b"1").digest() + hashlib.sha256(b"2").digest())
    assert manifest.root_digest() == expected.digest()


def test_shard_resources_sort_as_strings(tmp_path: Path) -> None:
    m = make_model(tmp_path / "m", {"w": os.urandom(2500), "w.json": b"{}"})
    ser = Serialization("shards", "sha256", 1000)
    assert [i.name for i in compute_manifest(m, ser).items] == [
        "w.json:0:2",
        "w:0:1000",
        "w:1000:2000",
        "w:2000:2500",
    ]
