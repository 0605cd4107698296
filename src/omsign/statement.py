"""Manifest <-> in-toto Statement v1 with the OMS predicate (OMS 5, 6.5, 6.6, 8.3).

Writing produces deterministic bytes: the same manifest always gives the same
payload. Reading checks every field's type and value before anything else uses it,
accepts the variants real signatures contain (design.md, "Accept when verifying"),
and reads the deprecated ``Digests/v0.1`` layout.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from omsign._json import brief, load_json
from omsign.errors import MalformedSignatureError, ModelError
from omsign.hashing import ALGORITHMS
from omsign.manifest import Manifest, ManifestItem, Serialization, split_shard_name

__all__ = [
    "LEGACY_PREDICATE_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "SignedStatement",
    "brief",
    "encode_statement",
    "load_json",
    "parse_statement",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
LEGACY_PREDICATE_TYPE = "https://model_signing/Digests/v0.1"

_DIGEST_SIZES = {"sha256": 32, "blake2b": 64, "blake3": 32}
_HEX = re.compile(r"[0-9a-f]+")
_SHARDED_ALGO = re.compile(r"(sha256|blake2b|blake3)-sharded-([0-9]+)")


@dataclass(frozen=True)
class SignedStatement:
    """What a verified payload says.

    Attributes:
        manifest: the signed resources and serialization settings.
        subject_name: ``subject[0].name`` (informational only).
        root_digest: the subject's SHA-256 root digest (empty for the legacy format).
        legacy: true for the deprecated ``Digests/v0.1`` predicate.
    """

    manifest: Manifest
    subject_name: str
    root_digest: bytes
    legacy: bool = False


def encode_statement(manifest: Manifest, subject_name: str) -> bytes:
    """Serialises the in-toto statement for a manifest (OMS 6.5, 6.6), deterministically.

    Raises:
        ModelError: a file name that verification would reject (a backslash, say).
    """
    for item in manifest.items:
        try:
            check_resource_path(manifest.file_name(item))
        except MalformedSignatureError as exc:
            detail = str(exc).removeprefix("malformed statement: ")
            raise ModelError(f"cannot sign this model: {detail}") from None
    ser = manifest.serialization
    serialization: dict[str, Any] = {
        "method": ser.method,
        "hash_type": ser.hash_type,
        "allow_symlinks": ser.allow_symlinks,
    }
    if ser.shard_size is not None:
        serialization["shard_size"] = ser.shard_size
    if ser.ignore_paths is not None:
        serialization["ignore_paths"] = sorted(ser.ignore_paths)
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": manifest.root_digest().hex()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "resources": [
                {"name": i.name, "digest": i.digest.hex(), "algorithm": ser.hash_type}
                for i in manifest.items
            ],
            "serialization": serialization,
        },
    }
    return json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _bad(what: str) -> MalformedSignatureError:
    return MalformedSignatureError(f"malformed statement: {what}")


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict):
        raise _bad(f"{where} is not an object")
    if key not in obj:
        raise _bad(f"{where} has no {key!r}")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise _bad(f"{where}.{key} has the wrong type")
    return value


def _hex_digest(value: Any, size: int, where: str) -> bytes:
    if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) != 2 * size:
        raise _bad(f"{where} is not a {size}-byte lowercase hex digest")
    return bytes.fromhex(value)


def check_resource_path(path: str, allow_dot: bool = False) -> None:
    """Rejects names that could escape or alias the model root (design.md, "Reject")."""
    if allow_dot and path == ".":
        return
    if not path:
        raise _bad("a resource name is empty")
    if "\0" in path:
        raise _bad(f"resource name {brief(path)} contains NUL")
    if "\\" in path:
        raise _bad(f"resource name {brief(path)} contains a backslash")
    if path.startswith("/"):
        raise _bad(f"resource name {brief(path)} is absolute")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise _bad(f"resource name {brief(path)} has an empty, '.' or '..' component")


def _serialization(obj: Any) -> Serialization:
    method = _get(obj, "method", str, "serialization")
    hash_type = _get(obj, "hash_type", str, "serialization")
    if method not in ("files", "shards"):
        raise MalformedSignatureError(f"unsupported serialization method {brief(method)}")
    if hash_type not in ALGORITHMS:
        raise MalformedSignatureError(f"unsupported hash_type {brief(hash_type)}")
    allow_symlinks = _get(obj, "allow_symlinks", bool, "serialization")
    shard_size = None
    if method == "shards":
        raw = _get(obj, "shard_size", (int, float), "serialization")
        if isinstance(raw, float) and not raw.is_integer():
            raise _bad("serialization.shard_size is not an integer")
        shard_size = int(raw)
        if shard_size <= 0:
            raise _bad("serialization.shard_size must be positive")
    elif "shard_size" in obj:
        raise _bad("serialization.shard_size is present with method 'files'")
    ignore = obj.get("ignore_paths")
    if ignore is not None and (
        not isinstance(ignore, list) or not all(isinstance(p, str) and p for p in ignore)
    ):
        raise _bad("serialization.ignore_paths is not a list of non-empty strings")
    return Serialization(
        method, hash_type, shard_size, allow_symlinks, None if ignore is None else tuple(ignore)
    )


def _algorithm_ok(algorithm: Any, ser: Serialization) -> bool:
    if algorithm == ser.hash_type:
        return True
    match = _SHARDED_ALGO.fullmatch(algorithm) if isinstance(algorithm, str) else None
    return bool(
        match
        and ser.method == "shards"
        and match[1] == ser.hash_type
        and int(match[2]) == ser.shard_size
    )


def _resources(raw: Any, ser: Serialization) -> tuple[ManifestItem, ...]:
    if not isinstance(raw, list) or not raw:
        raise _bad("predicate.resources is not a non-empty list")
    items, names, files = [], set(), set()
    for i, res in enumerate(raw):
        where = f"resources[{i}]"
        name = _get(res, "name", str, where)
        if not _algorithm_ok(res.get("algorithm"), ser):
            raise _bad(f"{where}.algorithm {brief(res.get('algorithm'))} differs from hash_type")
        digest = _hex_digest(res.get("digest"), _DIGEST_SIZES[ser.hash_type], f"{where}.digest")
        path = split_shard_name(name)[0] if ser.method == "shards" else name
        check_resource_path(path, allow_dot=True)
        if name in names:
            raise _bad(f"resource name {brief(name)} appears twice")
        names.add(name)
        files.add(path)
        items.append(ManifestItem(name, digest))
    if "." in files and len(files) > 1:
        raise _bad("resource name '.' is only valid for a single-file model")
    return tuple(items)


def _subject(statement: dict[str, Any], *, single: bool) -> tuple[str, bytes]:
    subjects = _get(statement, "subject", list, "statement")
    if not subjects or (single and len(subjects) != 1):
        raise _bad("statement must have exactly one subject")
    name = _get(subjects[0], "name", str, "subject[0]")
    digest = _get(subjects[0], "digest", dict, "subject[0]")
    return name, _hex_digest(digest.get("sha256"), 32, "subject[0].digest.sha256")


def _legacy(statement: dict[str, Any]) -> SignedStatement:
    """Reads the deprecated v0.2 layout: one subject per file, SHA-256 digests."""
    subjects = _get(statement, "subject", list, "statement")
    if not subjects:
        raise _bad("statement has no subject")
    items, seen = [], set()
    for i, subj in enumerate(subjects):
        name = _get(subj, "name", str, f"subject[{i}]")
        digest = _get(subj, "digest", dict, f"subject[{i}]")
        annotations = subj.get("annotations") or {}
        if not isinstance(annotations, dict):
            raise _bad(f"subject[{i}].annotations is not an object")
        algo = annotations.get("actual_hash_algorithm", "file-sha256")
        if algo != "file-sha256":
            raise MalformedSignatureError(f"unsupported legacy hash algorithm {brief(algo)}")
        check_resource_path(name, allow_dot=True)
        if name in seen:
            raise _bad(f"resource name {brief(name)} appears twice")
        seen.add(name)
        items.append(ManifestItem(name, _hex_digest(digest.get("sha256"), 32, f"subject[{i}]")))
    items.sort(key=lambda item: item.name)
    return SignedStatement(Manifest(tuple(items), Serialization()), "", b"", legacy=True)


def predicate_type_of(payload: bytes) -> str | None:
    """The predicate type of a payload, or None when it cannot be read (no validation)."""
    try:
        statement = load_json(payload)
    except (ValueError, RecursionError):
        return None
    value = statement.get("predicateType") if isinstance(statement, dict) else None
    return value if isinstance(value, str) else None


def parse_statement(payload: bytes, source: str | None = None) -> SignedStatement:
    """Parses and validates a signed payload (OMS 8.3).

    Args:
        payload: the verified DSSE payload.
        source: the signature file's name, to begin error messages with.

    Raises:
        MalformedSignatureError: not JSON, wrong types or values, unknown predicate type,
            unsafe or duplicate names, or a root digest that does not match the resources.
    """
    try:
        return _parse_statement(payload)
    except MalformedSignatureError as exc:
        if source is None:
            raise
        raise MalformedSignatureError(f"{source}: {exc}") from None


def _parse_statement(payload: bytes) -> SignedStatement:
    try:
        statement = load_json(payload)
    except ValueError as exc:
        if str(exc).startswith("duplicate key"):
            raise _bad(f"payload has a {exc}") from None
        raise _bad("payload is not valid UTF-8 JSON") from None
    except RecursionError:
        raise _bad("payload is nested too deeply") from None
    if not isinstance(statement, dict):
        raise _bad("payload is not a JSON object")
    if statement.get("_type") != STATEMENT_TYPE:
        raise MalformedSignatureError(f"unsupported statement type {brief(statement.get('_type'))}")
    predicate_type = statement.get("predicateType")
    if predicate_type == LEGACY_PREDICATE_TYPE:
        return _legacy(statement)
    if predicate_type != PREDICATE_TYPE:
        raise MalformedSignatureError(f"unsupported predicate type {brief(predicate_type)}")
    predicate = _get(statement, "predicate", dict, "statement")
    ser = _serialization(_get(predicate, "serialization", dict, "predicate"))
    manifest = Manifest(_resources(predicate.get("resources"), ser), ser)
    name, root = _subject(statement, single=True)
    if not name:
        raise _bad("subject[0].name is empty")
    if manifest.root_digest() != root:
        raise MalformedSignatureError(
            "signed root digest does not match the signed resources (manifest was altered)"
        )
    return SignedStatement(manifest, name, root)
