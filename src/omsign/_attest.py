"""``omsign.attest``: sign an in-toto statement about a model's exact content.

The statement's one subject is the model's name and its OMS root digest, computed as
``sign`` computes it (same sources, ignore rules and companion files left out). When the
model already has a signature, its recorded hashing settings are used (unless others are
given) and the root digest form (OMS or model_signing's) that matches it, so that the
attestation names the digest its verification proves. With ``reuse_digests`` the digest
cache is used as ``sign --reuse-digests`` uses it: an unchanged model that was signed
that way is not read again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omsign import intoto
from omsign._keywords import (
    HashKeywords,
    SignerOptions,
    SignKeywords,
    check_keywords,
    hash_options,
    pick,
)
from omsign._keywords import runtime as _runtime
from omsign._sign import _check_name, _hash_model, _prepare, local_path, make_signer
from omsign.attestations import resolve_type
from omsign.bundle import build_bundle, write_bundle
from omsign.errors import Error, ModelError, UsageError
from omsign.hashing import DEFAULT_IGNORES
from omsign.manifest import Manifest
from omsign.options import HashOptions, PathLike, Runtime
from omsign.predicates import written_form
from omsign.results import AttestResult
from omsign.sources import ModelSource, resolve_source
from omsign.storage import SignatureStore, resolve_store

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from omsign.backends import BundleSigner
    from omsign.loading import VerifiedModel

__all__ = [
    "MAX_PREDICATE_BYTES",
    "DigestedModel",
    "PredicateBuilder",
    "attest",
    "digest_as_signed",
    "read_file",
    "read_predicate",
]

logger = logging.getLogger("omsign")

_ALGORITHM_NAMES = {"blake2": "blake2b"}  # model_signing's name for BLAKE2b
MAX_PREDICATE_BYTES = 16 << 20
# Builds a predicate from the model once it is hashed (reads checked against the digests).
PredicateBuilder = Callable[["VerifiedModel"], Mapping[str, Any]]


def read_file(path: PathLike, what: str, limit: int = MAX_PREDICATE_BYTES) -> bytes:
    """Reads a small input file (a predicate, a model card), at most ``limit`` bytes.

    Raises:
        UsageError: missing, not a regular file, unreadable, or larger than ``limit``.
    """
    import os
    import stat

    try:
        with open(path, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise UsageError(f"{os.fspath(path)}: the {what} file is not a regular file")
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise UsageError(f"{os.fspath(path)}: the {what} file is not found") from None
    except OSError as exc:
        raise UsageError(
            f"{os.fspath(path)}: cannot read the {what} file ({exc.strerror})"
        ) from None
    if len(data) > limit:
        raise UsageError(f"{os.fspath(path)}: the {what} file is larger than {limit >> 20} MiB")
    return data


def read_predicate(path: PathLike, what: str = "predicate") -> dict[str, Any]:
    """A predicate (or another ``what``) from a JSON file: one object, strict JSON, 16 MiB.

    Raises:
        UsageError: the file is missing or unreadable, or not a JSON object.
    """
    import json
    import os

    from omsign._json import load_json

    data = read_file(path, what)
    where = f"{os.fspath(path)}: the {what} file"
    try:
        value = load_json(data)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{where} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise UsageError(f"{where} does not hold a JSON object")
    return value


def _signed_settings(
    store: SignatureStore, path: Path | None
) -> tuple[HashOptions | None, str | None]:
    """The hashing settings and root digest the model's signature claims (unverified).

    They only choose how to hash: an attestation made with settings the signature does
    not really have names a digest that its verification will not match.
    """
    from omsign.predicates import parse_statement

    try:
        signed = parse_statement(store.read().payload)
    except Error:
        return None, None
    if signed.legacy or not signed.root_digest:
        return None, None
    ser = signed.manifest.serialization
    skip = {*DEFAULT_IGNORES, *store.excluded()}
    kept = [name for name in ser.ignore_paths or () if name not in skip]
    recorded: list[str | Path] = (
        list(kept) if path is None else [path / n for n in kept if (path / n).exists()]
    )
    try:
        options = HashOptions(
            _ALGORITHM_NAMES.get(ser.hash_type, ser.hash_type),
            ser.shard_size,
            tuple(recorded),
            ser.allow_symlinks,
        )
    except UsageError:
        return None, None
    return options, signed.root_digest.hex()


def _root_digest(manifest: Manifest, source: ModelSource, claimed: str | None) -> str:
    """The root digest in the form the signature uses (OMS unless model_signing's matches)."""
    single = not source.is_dir
    oms = written_form(manifest, None, single_file=single).root_digest().hex()
    if claimed is None or claimed == oms:
        return oms
    try:
        compat = written_form(manifest, "model-signing", single_file=single)
    except UsageError:
        compat = None
    if compat is not None and claimed == compat.root_digest().hex():
        return claimed
    logger.warning(
        "%s: the model does not match its signature (root digest sha256:%s, the signature "
        "says sha256:%s); the attestation is about the model as it is now",
        source.location,
        oms,
        claimed,
    )
    return oms


@dataclass(frozen=True)
class DigestedModel:
    """A model hashed as its signature was (or as ``sign`` would hash it).

    Attributes:
        source: the model.
        store: its signature store.
        manifest: its resources (OMS names and order).
        root_digest: the hex root digest, in the form its signature uses (OMS, or
            model_signing's order when the signature has it).
        hashed: the files read (none when every digest came from the digest cache).
    """

    source: ModelSource
    store: SignatureStore
    manifest: Manifest
    root_digest: str
    hashed: tuple[str, ...]


def digest_as_signed(
    model: PathLike,
    *,
    signature: PathLike | None = None,
    hashing: HashOptions | None = None,
    runtime: Runtime | None = None,
    reuse_digests: bool = False,
    before_hashing: Callable[[ModelSource], None] | None = None,
) -> DigestedModel:
    """Hashes a model once to get the root digest its signature names (or would name).

    The hashing settings are ``hashing`` if given, else those the model's signature
    records, else ``sign``'s defaults; the root digest form (OMS or model_signing's) is
    the one the signature uses.

    Raises:
        ModelError: the model does not exist or cannot be read.
    """
    source = resolve_source(model)
    path = source.path  # None for a model elsewhere (object storage, a registry)
    if path is not None and not path.exists() and not path.is_symlink():
        raise ModelError(f"{path}: no such file or directory")
    _check_name(source)
    store = resolve_store(source, signature)
    settings, claimed = _signed_settings(store, path)
    if hashing is not None or settings is None:
        opts, claimed = hashing or HashOptions(), None  # the caller's settings
    else:
        opts = settings
    if before_hashing is not None:
        before_hashing(source)
    manifest, hashed = _hash_model(
        source, opts, store.excluded(), runtime or Runtime(), reuse_digests=reuse_digests
    )
    oms = written_form(manifest, None, single_file=not source.is_dir)
    return DigestedModel(source, store, oms, _root_digest(manifest, source, claimed), hashed)


def attest(
    model: PathLike,
    *,
    predicate_type: str,
    predicate: Mapping[str, Any] | PredicateBuilder,
    output: PathLike | None = None,
    signer: BundleSigner | None = None,
    signature: PathLike | None = None,
    hashing: HashOptions | None = None,
    runtime: Runtime | None = None,
    reuse_digests: bool = False,
    **options: Unpack[SignKeywords],
) -> AttestResult:
    """Signs an attestation about a model and stores it beside the model's signature.

    The statement is an in-toto Statement v1 whose one subject is the model's name and
    OMS root digest, and whose predicate is ``predicate``. It is signed with any method
    ``sign`` has (the same keywords: ``key``, ``certificate``, ``chain``, ``tsa_url``,
    Sigstore's ``identity_token``..., or a ready ``signer``) and appended as one line to
    the store's claims (``claims.jsonl`` beside ``model.sig``), or written to ``output``.

    Args:
        model: file, directory or ``hf://ORG/NAME[@REVISION]``.
        predicate_type: a predicate type URI, or a built-in short name
            (see :data:`omsign.attestations.ATTESTATION_TYPES`).
        predicate: the predicate, a JSON object (see :mod:`omsign.predicates` for the
            built-in builders); or a function that builds it from the model once it is
            hashed, given a :class:`~omsign.loading.VerifiedModel` whose reads are checked
            against the digests just computed, so it reads exactly the bytes the
            attestation names (:func:`omsign.scanners.scanner_predicate` scans them).
        output: write the bundle to this file instead of appending it to the claims.
        signer: a custom :class:`~omsign.backends.BundleSigner`, instead of the signing
            keywords.
        signature: the model's main signature path, when not the default (the claims
            file is beside it).
        hashing: how to hash; default: the settings the model's signature records, else
            as ``sign``. Or the keywords ``hash_algorithm``, ``shard_size``,
            ``ignore_paths``, ``allow_symlinks``.
        runtime: how to run; or the keywords ``workers``, ``progress``, ``executor``.
        reuse_digests: reuse (and update) the digest cache, as ``sign`` does.
        **options: the signing keywords of :func:`omsign.sign` and the keyword forms of
            ``hashing`` and ``runtime``.

    Returns:
        Where the attestation went, the root digest it names, the files hashed.

    Raises:
        omsign.errors.Error: on any usage, model, key or service problem.
    """
    check_keywords("attest", options, SignKeywords)
    if not isinstance(predicate, Mapping) and not callable(predicate):
        raise UsageError("the predicate must be a JSON object", option="predicate")
    type_uri = resolve_type(predicate_type)
    signing = pick(options, SignerOptions)
    if signer is not None and signing:
        raise UsageError(
            "a ready signer replaces the signing options",
            options=("signer", *sorted(signing)),
            hint="give {option0} or the signing options, not both",
        )
    given = hashing is not None or bool(pick(options, HashKeywords))
    chosen: BundleSigner | None = signer

    def ready(source: ModelSource) -> None:  # fails before the model is read, if it must
        nonlocal chosen
        if callable(predicate) and source.path is None:
            # A builder reads the hashed files (a scan, a BOM): only on this machine.
            raise UsageError(
                f"{source.location}: this predicate is built from the model's files, which "
                "must be on this machine; pull the model and attest the local copy"
            )
        if chosen is None:
            chosen = make_signer(**signing)
        _prepare(chosen)

    model_ = digest_as_signed(
        model,
        signature=signature,
        hashing=hash_options(hashing, options) if given else None,
        runtime=_runtime(runtime, options),
        reuse_digests=reuse_digests,
        before_hashing=ready,
    )
    if chosen is None:  # pragma: no cover - digest_as_signed always calls ready()
        chosen = make_signer(**signing)
    root, name = model_.root_digest, model_.source.name
    if callable(predicate):
        from omsign.loading import VerifiedModel

        hashed_view = VerifiedModel.from_hashes(
            local_path(model_.source),  # a builder reads the hashed files: on this machine
            model_.manifest,
            root_digest=root,
            link_policy=model_.source.link_policy,
        )
        body = predicate(hashed_view)
    else:
        body = predicate
    if not isinstance(body, Mapping):
        raise UsageError("the predicate must be a JSON object", option="predicate")
    statement = intoto.Statement((intoto.Subject(name, {"sha256": root}),), type_uri, dict(body))
    try:
        payload = intoto.encode(statement)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"the predicate is not JSON: {exc}", option="predicate") from None
    bundle = build_bundle(payload, *chosen.sign_statement(payload))
    if output is not None:
        write_bundle(Path(output), bundle)
        location = str(output)
    else:
        location = model_.store.append_claim(bundle)
    return AttestResult(location, root, name, type_uri, bundle, model_.hashed)
