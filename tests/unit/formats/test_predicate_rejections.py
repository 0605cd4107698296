"""Statements the predicates refuse, each named by the attack or mistake it stops.

The OMS v1.0 reader and the legacy v0.2 reader both take unauthenticated-looking input
apart after the signature verified: a trusted but careless (or compromised) signer must
still not get an unsafe manifest accepted.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from omsign.errors import MalformedSignatureError
from omsign.predicates import LEGACY_PREDICATE_TYPE, parse_statement

A, B = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
FILES = {"method": "files", "hash_type": "sha256", "allow_symlinks": False}


def oms(
    resources: list[dict[str, Any]], serialization: dict[str, Any], *, name: str = "model"
) -> bytes:
    root = hashlib.sha256(b"".join(bytes.fromhex(r["digest"]) for r in resources)).digest()
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": name, "digest": {"sha256": root.hex()}}],
            "predicateType": "https://model_signing/signature/v1.0",
            "predicate": {"resources": resources, "serialization": serialization},
        }
    ).encode()


def legacy(subjects: list[dict[str, Any]]) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": subjects,
            "predicateType": LEGACY_PREDICATE_TYPE,
            "predicate": {},
        }
    ).encode()


def subject(name: str, digest: bytes, **annotations: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "digest": {"sha256": digest.hex()}}
    if annotations:
        entry["annotations"] = annotations
    return entry


def test_legacy_statement_signs_the_files_it_names() -> None:
    parsed = parse_statement(legacy([subject("b", B), subject("a", A)]), legacy_encoding=True)
    assert [item.name for item in parsed.manifest.items] == ["a", "b"]


def test_legacy_statement_without_subjects_is_refused() -> None:
    with pytest.raises(MalformedSignatureError, match="no subject"):
        parse_statement(legacy([]), legacy_encoding=True)


def test_legacy_statement_naming_a_file_twice_is_refused() -> None:
    # Two digests for one file: which one a verifier checks must never be a question.
    with pytest.raises(MalformedSignatureError, match="appears twice"):
        parse_statement(legacy([subject("a", A), subject("a", B)]), legacy_encoding=True)


def test_legacy_statement_with_another_hash_algorithm_is_refused() -> None:
    entry = subject("a", A, actual_hash_algorithm="file-md5")
    with pytest.raises(MalformedSignatureError, match="unsupported legacy hash algorithm"):
        parse_statement(legacy([entry]), legacy_encoding=True)


@pytest.mark.parametrize("size", [0, -1024])
def test_shards_of_no_or_negative_size_are_refused(size: int) -> None:
    serialization = {"method": "shards", "hash_type": "sha256", "shard_size": size}
    serialization |= {"allow_symlinks": False}
    resources = [{"name": "w:0:10", "digest": A.hex(), "algorithm": "sha256"}]
    with pytest.raises(MalformedSignatureError, match="shard_size must be positive"):
        parse_statement(oms(resources, serialization))


def test_dot_beside_other_files_is_refused() -> None:
    # "." is the single-file model itself: next to other names it would sign the folder twice.
    resources = [
        {"name": ".", "digest": A.hex(), "algorithm": "sha256"},
        {"name": "b", "digest": B.hex(), "algorithm": "sha256"},
    ]
    with pytest.raises(MalformedSignatureError, match="only valid for a single-file model"):
        parse_statement(oms(resources, FILES))


def test_a_subject_without_a_name_is_refused() -> None:
    resources = [{"name": "a", "digest": A.hex(), "algorithm": "sha256"}]
    with pytest.raises(MalformedSignatureError, match=r"subject\[0\]\.name is empty"):
        parse_statement(oms(resources, FILES, name=""))
