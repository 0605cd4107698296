"""Statements: deterministic output, and the variants real signatures contain (design.md)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from omsign.errors import MalformedSignatureError
from omsign.manifest import Manifest, ManifestItem, Serialization
from omsign.statement import LEGACY_PREDICATE_TYPE, encode_statement, parse_statement

A, B = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()


def statement(
    resources: list[dict[str, Any]], serialization: dict[str, Any], root: bytes | None = None
) -> bytes:
    if root is None:
        root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).digest()
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "model", "digest": {"sha256": root.hex()}}],
            "predicateType": "https://model_signing/signature/v1.0",
            "predicate": {"resources": resources, "serialization": serialization},
        }
    ).encode()


FILES = {"method": "files", "hash_type": "sha256", "allow_symlinks": False}


def test_encoding_is_deterministic_and_round_trips() -> None:
    manifest = Manifest(
        (ManifestItem("a", A), ManifestItem("b", B)),
        Serialization(ignore_paths=(".git", "model.sig")),
    )
    payload = encode_statement(manifest, "m")
    assert payload == encode_statement(manifest, "m")
    parsed = parse_statement(payload)
    assert parsed.manifest == manifest
    assert parsed.root_digest == manifest.root_digest()


def test_single_file_resource_named_dot_is_accepted() -> None:
    parsed = parse_statement(
        statement([{"name": ".", "digest": A.hex(), "algorithm": "sha256"}], FILES)
    )
    assert parsed.manifest.items == (ManifestItem(".", A),)


def test_sharded_algorithm_name_and_float_shard_size_are_accepted() -> None:
    ser = {"method": "shards", "hash_type": "sha256", "shard_size": 1000.0, "allow_symlinks": False}
    res = [{"name": "w:0:1000", "digest": A.hex(), "algorithm": "sha256-sharded-1000"}]
    assert parse_statement(statement(res, ser)).manifest.serialization.shard_size == 1000


def test_resources_in_any_order_use_the_listed_order_for_the_root_digest() -> None:
    res = [
        {"name": "b", "digest": B.hex(), "algorithm": "sha256"},
        {"name": "a", "digest": A.hex(), "algorithm": "sha256"},
    ]
    assert {i.name for i in parse_statement(statement(res, FILES)).manifest.items} == {"a", "b"}


def test_file_names_with_colons_split_on_the_last_two() -> None:
    ser = {"method": "shards", "hash_type": "sha256", "shard_size": 10, "allow_symlinks": False}
    res = [{"name": "a:b:c:0:10", "digest": A.hex(), "algorithm": "sha256"}]
    manifest = parse_statement(statement(res, ser)).manifest
    assert list(manifest.by_file()) == ["a:b:c"]


def test_root_digest_mismatch_is_rejected() -> None:
    res = [{"name": "a", "digest": A.hex(), "algorithm": "sha256"}]
    with pytest.raises(MalformedSignatureError, match="root digest"):
        parse_statement(statement(res, FILES, root=B))


@pytest.mark.parametrize("name", ["/abs", "a/../b", "..", "a//b", "a/./b", "a\\b", "a\0b", ""])
def test_unsafe_resource_names_are_rejected(name: str) -> None:
    res = [{"name": name, "digest": A.hex(), "algorithm": "sha256"}]
    with pytest.raises(MalformedSignatureError):
        parse_statement(statement(res, FILES))


def test_duplicate_resource_names_are_rejected() -> None:
    res = [{"name": "a", "digest": A.hex(), "algorithm": "sha256"}] * 2
    with pytest.raises(MalformedSignatureError, match="twice"):
        parse_statement(statement(res, FILES))


def test_unknown_predicate_type_is_rejected() -> None:
    data = json.loads(statement([{"name": "a", "digest": A.hex(), "algorithm": "sha256"}], FILES))
    data["predicateType"] = "https://example.com/other"
    with pytest.raises(MalformedSignatureError, match="predicate type"):
        parse_statement(json.dumps(data).encode())


def test_legacy_digests_v01_lists_files_as_subjects() -> None:
    payload = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [
                {"name": "b", "digest": {"sha256": B.hex()}},
                {"name": "a", "digest": {"sha256": A.hex()}},
            ],
            "predicateType": LEGACY_PREDICATE_TYPE,
            "predicate": {"unused": "x"},
        }
    ).encode()
    parsed = parse_statement(payload)
    assert parsed.legacy
    assert parsed.manifest.items == (ManifestItem("a", A), ManifestItem("b", B))
