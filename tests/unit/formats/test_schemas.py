"""Every bundle omsign writes validates against the four OMS v1.0 schemas; spec vectors parse
or fail as their folder names say."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

import omsign
from helpers.fixtures import SPEC, KeyPair, make_model
from omsign.bundle import read_bundle
from omsign.errors import MalformedSignatureError
from omsign.statement import parse_statement

SCHEMAS = {p.name: json.loads(p.read_text()) for p in (SPEC / "schemas" / "v1.0").glob("*.json")}
REGISTRY = Registry().with_resources(
    (s["$id"], Resource.from_contents(s)) for s in SCHEMAS.values()
)
VECTORS = SPEC / "test-vectors" / "v1.0"


def validate(name: str, instance: Any) -> None:
    Draft202012Validator(SCHEMAS[name], registry=REGISTRY).validate(instance)


def validate_all(bundle: dict[str, Any]) -> None:
    validate("bundle.schema.json", bundle)
    validate("envelope.schema.json", bundle["dsseEnvelope"])
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    validate("statement.schema.json", statement)
    validate("predicate.schema.json", statement["predicate"])


@pytest.mark.parametrize(
    ("hash_algorithm", "shard_size"),
    [("sha256", None), ("blake2b", None), ("blake3", 100_000), ("sha256", 4096)],
)
def test_key_bundles_validate(
    tmp_path: Path, p256: KeyPair, hash_algorithm: str, shard_size: int | None
) -> None:
    model = make_model(tmp_path / "m")
    result = omsign.sign(
        model, key=p256.private, hash_algorithm=hash_algorithm, shard_size=shard_size
    )
    validate_all(json.loads(result.signature.read_text()))


def test_certificate_bundle_validates(tmp_path: Path) -> None:
    from helpers.pki import issue_leaf, make_ca, make_ec_key

    root = make_ca("root").write(tmp_path, "root")
    key = make_ec_key("P-384")
    leaf = issue_leaf(root, key, name="signer").write(tmp_path, "leaf")
    model = make_model(tmp_path / "m")
    result = omsign.sign(model, key=leaf.key_path, certificate=leaf.cert_path)
    validate_all(json.loads(result.signature.read_text()))


@pytest.mark.parametrize("path", sorted((VECTORS / "valid").glob("*.json")), ids=lambda p: p.name)
def test_valid_vectors_parse_and_validate(path: Path) -> None:
    validate_all(json.loads(path.read_text()))
    bundle = read_bundle(path)
    assert parse_statement(bundle.payload).manifest.items


@pytest.mark.parametrize("path", sorted((VECTORS / "invalid").glob("*.json")), ids=lambda p: p.name)
def test_invalid_vectors_are_rejected_as_malformed(path: Path) -> None:
    with pytest.raises(MalformedSignatureError):
        read_bundle(path)


@pytest.mark.parametrize(
    "path", sorted((VECTORS / "invalid-payload").glob("*.json")), ids=lambda p: p.name
)
def test_invalid_payload_vectors_are_rejected(path: Path) -> None:
    bundle = read_bundle(path)
    with pytest.raises(MalformedSignatureError, match="predicate type"):
        parse_statement(bundle.payload)


def test_the_spec_vectors_are_all_present() -> None:
    """The parametrized tests above would silently collect nothing without the vectors."""
    counts = {
        d: len(list((VECTORS / d).glob("*.json"))) for d in ("valid", "invalid", "invalid-payload")
    }
    assert counts == {"valid": 3, "invalid": 4, "invalid-payload": 1}
    assert len(SCHEMAS) == 4
