"""The OMS v1.0 predicate ``https://model_signing/signature/v1.0`` (OMS 5, 6.5, 6.6, 8.3).

Writing produces deterministic bytes: the same manifest always gives the same
payload. Reading checks every field's type and value before anything else uses it
and accepts the variants real signatures contain (design.md, "Accept when verifying").
"""

from __future__ import annotations

import re
from typing import Any

from omsign import intoto
from omsign._json import brief
from omsign.errors import MalformedSignatureError, ModelError, UsageError
from omsign.hashing import ALGORITHMS
from omsign.intoto import Statement, Subject, get_field, malformed
from omsign.manifest import Manifest, ManifestItem, Serialization, split_shard_name
from omsign.predicates._common import Predicate, SignedStatement, check_resource_path, hex_digest

__all__ = ["COMPAT_FORMS", "PREDICATE", "PREDICATE_TYPE", "encode", "read", "written_form"]

PREDICATE_TYPE = "https://model_signing/signature/v1.0"

_DIGEST_SIZES = {"sha256": 32, "blake2b": 64, "blake3": 32}
_SHARDED_ALGO = re.compile(r"(sha256|blake2b|blake3)-sharded-([0-9]+)")
# Forms other than the spec's that a signature can be written in, for verifiers that
# expect them: "model-signing" is what model_signing 1.1.1 writes and verifies.
COMPAT_FORMS: tuple[str, ...] = ("model-signing",)
# model_signing's library names BLAKE2b "blake2" in hash_type (and "blake2b" in resources).
_REFERENCE_HASH_TYPES = {"blake2b": "blake2"}


def _check_compat(compat: str | None) -> None:
    if compat is not None and compat not in COMPAT_FORMS:
        raise UsageError(
            f"unknown compatibility form {compat!r}; choose {', '.join(COMPAT_FORMS)}",
            option="compat",
        )


def written_form(
    manifest: Manifest, compat: str | None = None, *, single_file: bool = False
) -> Manifest:
    """The manifest as a signature records it: the OMS form, or a compatibility form.

    OMS (``compat=None``) lists resources by code point of the name (OMS 6.4), as
    computed. ``"model-signing"`` is what model_signing 1.1.1 writes and verifies: a
    single file is named ``.``, and resources are ordered by path components, then by
    shard offsets as numbers, so the root digest equals the one model_signing computes.

    Args:
        manifest: the computed manifest (OMS names and order).
        compat: ``None`` or one of :data:`COMPAT_FORMS`.
        single_file: the model is one file (its resource is renamed ``.`` in the
            model-signing form).

    Raises:
        UsageError: an unknown form, or settings model_signing 1.1.1 cannot verify
            (it never shards BLAKE3: it hashes whole files instead).
    """
    _check_compat(compat)
    if compat is None:
        return manifest
    ser = manifest.serialization
    if ser.method == "shards" and ser.hash_type == "blake3":
        raise UsageError(
            "model_signing 1.1.1 cannot verify blake3 shards (it hashes blake3 by whole "
            "files); sign blake3 without a shard size for it",
            option="shard_size",
        )
    items = manifest.items
    if single_file:
        items = tuple(
            ManifestItem("." + i.name[len(manifest.file_name(i)) :], i.digest) for i in items
        )

    def order(item: ManifestItem) -> tuple[tuple[str, ...], int, int]:
        if ser.method == "shards":
            path, start, end = split_shard_name(item.name)
            return tuple(path.split("/")), start, end
        return tuple(item.name.split("/")), 0, 0

    return Manifest(tuple(sorted(items, key=order)), ser)


def encode(manifest: Manifest, subject_name: str, *, compat: str | None = None) -> bytes:
    """The statement for a manifest (OMS 6.5, 6.6), deterministically.

    Args:
        manifest: the resources in the order to write (see :func:`written_form`).
        subject_name: the model's name.
        compat: ``None`` for the OMS form; ``"model-signing"`` names algorithms as
            model_signing 1.1.1 does (``blake2`` as hash_type, ``<hash>-sharded-<N>``
            for shards) and accepts a single file named ``.``.

    Raises:
        ModelError: a file name that verification would reject (a backslash, say).
        UsageError: an unknown compatibility form.
    """
    _check_compat(compat)
    for item in manifest.items:
        try:
            check_resource_path(manifest.file_name(item), allow_dot=compat is not None)
        except MalformedSignatureError as exc:
            detail = str(exc).removeprefix("malformed statement: ")
            raise ModelError(f"cannot sign this model: {detail}") from None
    ser = manifest.serialization
    algorithm = hash_type = ser.hash_type
    if compat is not None:
        hash_type = _REFERENCE_HASH_TYPES.get(hash_type, hash_type)
        if ser.method == "shards":
            algorithm = f"{ser.hash_type}-sharded-{ser.shard_size}"
    serialization: dict[str, Any] = {
        "method": ser.method,
        "hash_type": hash_type,
        "allow_symlinks": ser.allow_symlinks,
    }
    if ser.shard_size is not None:
        serialization["shard_size"] = ser.shard_size
    if ser.ignore_paths is not None:
        serialization["ignore_paths"] = sorted(ser.ignore_paths)
    resources = [
        {"name": i.name, "digest": i.digest.hex(), "algorithm": algorithm} for i in manifest.items
    ]
    subject = Subject(subject_name, {"sha256": manifest.root_digest().hex()})
    predicate = {"resources": resources, "serialization": serialization}
    return intoto.encode(Statement((subject,), PREDICATE_TYPE, predicate))


def _serialization(obj: Any) -> Serialization:
    method = get_field(obj, "method", str, "serialization")
    hash_type = get_field(obj, "hash_type", str, "serialization")
    # model_signing's library writes "blake2" for BLAKE2b.
    hash_type = {v: k for k, v in _REFERENCE_HASH_TYPES.items()}.get(hash_type, hash_type)
    if method not in ("files", "shards"):
        raise MalformedSignatureError(f"unsupported serialization method {brief(method)}")
    if hash_type not in ALGORITHMS:
        raise MalformedSignatureError(f"unsupported hash_type {brief(hash_type)}")
    allow_symlinks = get_field(obj, "allow_symlinks", bool, "serialization")
    shard_size = None
    if method == "shards":
        raw = get_field(obj, "shard_size", (int, float), "serialization")
        if isinstance(raw, float) and not raw.is_integer():
            raise malformed("serialization.shard_size is not an integer")
        shard_size = int(raw)
        if shard_size <= 0:
            raise malformed("serialization.shard_size must be positive")
    elif "shard_size" in obj:
        raise malformed("serialization.shard_size is present with method 'files'")
    ignore = obj.get("ignore_paths")
    if ignore is not None and (
        not isinstance(ignore, list) or not all(isinstance(p, str) and p for p in ignore)
    ):
        raise malformed("serialization.ignore_paths is not a list of non-empty strings")
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
        raise malformed("predicate.resources is not a non-empty list")
    items, names, files = [], set(), set()
    for i, res in enumerate(raw):
        where = f"resources[{i}]"
        name = get_field(res, "name", str, where)
        if not _algorithm_ok(res.get("algorithm"), ser):
            raise malformed(
                f"{where}.algorithm {brief(res.get('algorithm'))} differs from hash_type"
            )
        digest = hex_digest(res.get("digest"), _DIGEST_SIZES[ser.hash_type], f"{where}.digest")
        path = split_shard_name(name)[0] if ser.method == "shards" else name
        check_resource_path(path, allow_dot=True)
        if name in names:
            raise malformed(f"resource name {brief(name)} appears twice")
        names.add(name)
        files.add(path)
        items.append(ManifestItem(name, digest))
    if "." in files and len(files) > 1:
        raise malformed("resource name '.' is only valid for a single-file model")
    return tuple(items)


def read(statement: Statement) -> SignedStatement:
    """Validates an OMS v1.0 statement (OMS 8.3) and returns its manifest.

    Raises:
        MalformedSignatureError: wrong types or values, unsafe or duplicate names, or a
            root digest that does not match the resources.
    """
    if statement.predicate is None:
        raise malformed("statement has no 'predicate'")
    ser = _serialization(get_field(statement.predicate, "serialization", dict, "predicate"))
    manifest = Manifest(_resources(statement.predicate.get("resources"), ser), ser)
    if len(statement.subjects) != 1:
        raise malformed("statement must have exactly one subject")
    subject = statement.subjects[0]
    root = hex_digest(subject.digest.get("sha256"), 32, "subject[0].digest.sha256")
    if not subject.name:
        raise malformed("subject[0].name is empty")
    if manifest.root_digest() != root:
        raise MalformedSignatureError(
            "signed root digest does not match the signed resources (manifest was altered)"
        )
    return SignedStatement(manifest, subject.name, root)


PREDICATE = Predicate(PREDICATE_TYPE, "OMS v1.0", read)
