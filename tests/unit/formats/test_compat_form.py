"""The model_signing 1.1.1 form of a statement (``compat="model-signing"``) and reading it back.

OMS v1.0 is the default; the compatibility form differs only where model_signing 1.1.1
does: a single file named ``.``, ``blake2`` as BLAKE2b's ``hash_type``, shard algorithms
``<hash>-sharded-<N>``, resources ordered by path components and numeric shard offsets.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from omsign.errors import UsageError
from omsign.manifest import Manifest, ManifestItem, Serialization
from omsign.statement import encode_statement, parse_statement, written_form


def digest(name: str, size: int = 32) -> bytes:
    return hashlib.blake2b(name.encode(), digest_size=size).digest()


def manifest(names: list[str], ser: Serialization, size: int = 32) -> Manifest:
    return Manifest(tuple(ManifestItem(n, digest(n, size)) for n in sorted(names)), ser)


SHARDS = Serialization("shards", "sha256", 1000, False, (".git",))
SHARD_NAMES = [f"w.bin:{i * 1000}:{(i + 1) * 1000}" for i in range(12)]


def test_oms_form_is_the_computed_manifest() -> None:
    m = manifest(SHARD_NAMES, SHARDS)
    assert written_form(m) is m
    predicate = json.loads(encode_statement(m, "model"))["predicate"]
    assert [r["name"] for r in predicate["resources"]] == sorted(SHARD_NAMES)
    assert {r["algorithm"] for r in predicate["resources"]} == {"sha256"}


def test_shards_are_ordered_by_offset_and_named_with_the_shard_size() -> None:
    m = written_form(manifest(SHARD_NAMES, SHARDS), "model-signing")
    assert [i.name for i in m.items] == SHARD_NAMES  # 10000 after 9000, not after 1000
    statement = json.loads(encode_statement(m, "model", compat="model-signing"))
    resources = statement["predicate"]["resources"]
    assert {r["algorithm"] for r in resources} == {"sha256-sharded-1000"}
    root = hashlib.sha256(b"".join(digest(n) for n in SHARD_NAMES)).hexdigest()
    assert statement["subject"][0]["digest"]["sha256"] == root


def test_files_are_ordered_by_path_components() -> None:
    names = ["a-b/y", "a/x", "a.b", "b"]
    m = written_form(manifest(names, Serialization()), "model-signing")
    assert [i.name for i in m.items] == ["a/x", "a-b/y", "a.b", "b"]
    assert [i.name for i in manifest(names, Serialization()).items] == ["a-b/y", "a.b", "a/x", "b"]


def test_blake2b_is_written_blake2_and_read_back() -> None:
    ser = Serialization("files", "blake2b", None, False, None)
    m = written_form(manifest(["a", "b"], ser, 64), "model-signing")
    payload = encode_statement(m, "model", compat="model-signing")
    predicate = json.loads(payload)["predicate"]
    assert predicate["serialization"]["hash_type"] == "blake2"
    assert {r["algorithm"] for r in predicate["resources"]} == {"blake2b"}
    signed = parse_statement(payload)
    assert signed.manifest.serialization.hash_type == "blake2b"
    assert signed.manifest.items == m.items


def test_a_single_file_is_named_dot() -> None:
    shards = written_form(
        manifest(["w.bin:0:1000", "w.bin:1000:1500"], SHARDS), "model-signing", single_file=True
    )
    assert [i.name for i in shards.items] == [".:0:1000", ".:1000:1500"]
    files = written_form(manifest(["w.bin"], Serialization()), "model-signing", single_file=True)
    assert [i.name for i in files.items] == ["."]
    signed = parse_statement(encode_statement(files, "w.bin", compat="model-signing"))
    assert [i.name for i in signed.manifest.items] == ["."]


def test_blake3_shards_and_unknown_forms_are_refused() -> None:
    blake3 = Serialization("shards", "blake3", 1000, False, None)
    with pytest.raises(UsageError, match="cannot verify blake3 shards"):
        written_form(manifest(["w.bin:0:10"], blake3), "model-signing")
    with pytest.raises(UsageError, match="unknown compatibility form"):
        written_form(manifest(["a"], Serialization()), "model-signing-2")
    with pytest.raises(UsageError, match="unknown compatibility form"):
        encode_statement(manifest(["a"], Serialization()), "m", compat="other")
