"""``omsign.verify``: OMS section 8 step by step, with a structured result.

8.1 parse the bundle; 8.2 check the signature and signer under the policy; 8.3
validate the statement (only once the signature holds); 8.4 re-hash the model with
the signed settings and compare; 8.5 unsigned files. Partial verification
(``allow_missing``, ``files``) narrows 8.4 and says exactly what was not checked.
A model may be a ``hf://ORG/NAME[@REVISION]`` name (a Hugging Face cache snapshot);
in a snapshot folder, links that stay inside the repository's cache folder are
followed (see :mod:`omsign.sources._hf`). The model is reached through its source
(:func:`omsign.sources.resolve_source`), on this machine or in object storage.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omsign._paths import signature_ignore
from omsign._sign import _progress_adapter, as_location, ignores_of
from omsign.bundle import Bundle
from omsign.errors import IntegrityError, ModelError, VerificationError
from omsign.hashing import FileEntry, LinkPolicy, hash_entries
from omsign.manifest import (
    Difference,
    Manifest,
    Serialization,
    manifest_from_digests,
    split_shard_name,
)
from omsign.options import PathLike, Runtime, VerifyScope
from omsign.policy import Policy, VerifiedSignature, verify_signature
from omsign.predicates import SignedStatement, parse_statement
from omsign.results import VerificationResult, VerifiedSigner
from omsign.sources import Entry, ModelSource, resolve_source
from omsign.storage import resolve_store

__all__ = [
    "VerificationResult",
    "as_integrity",
    "resolve_model",
    "verify_signature_only",
    "verify_with_policy",
]

logger = logging.getLogger("omsign")


def as_integrity(exc: ModelError) -> IntegrityError:
    """A model problem met while verifying: the model does not match its signature."""
    return IntegrityError(exc.message, hint=exc.hint, options=exc.options)


def _select(signed: set[str], patterns: Sequence[str]) -> set[str]:
    chosen: set[str] = set()
    for pattern in patterns:
        pat = pattern.replace(os.sep, "/").removeprefix("./")
        hits = {n for n in signed if n == pat or fnmatch.fnmatchcase(n, pat)}
        if not hits:
            raise IntegrityError(f"{pattern}: no signed file matches")
        chosen |= hits
    return chosen


def _local_manifest(
    source: ModelSource,
    signed: SignedStatement,
    *,
    ignores: Sequence[str],
    listed: Sequence[str],
    wanted: set[str] | None,
    run: Runtime,
) -> tuple[Manifest, tuple[str, ...], list[Entry], tuple[str, ...]]:
    """Hashes the model with the signed settings.

    Returns:
        The local manifest, the unsigned files, the entries hashed, and the files whose
        size differs from what the signed shards cover (changed, and never read).
    """
    ser = signed.manifest.serialization
    local_ser = Serialization(
        ser.method, ser.hash_type, ser.shard_size, ser.allow_symlinks, tuple(ignores)
    )
    signed_files = set(signed.manifest.by_file())
    try:
        # With ``wanted``, only those names are looked up: nothing else is listed or opened.
        entries: Sequence[Entry] = source.entries(
            ignore_paths=ignores,
            allow_symlinks=ser.allow_symlinks,
            names=None if wanted is None else sorted(wanted),
            keep=listed,
        )
    except ModelError as exc:
        raise as_integrity(exc) from None
    if not source.is_dir and signed_files == {"."}:  # single file named "." (model_signing)
        entries = [dataclasses.replace(e, name=".") for e in entries]  # type: ignore[type-var]
    unsigned = tuple(e.name for e in entries if e.name not in signed_files)
    resized: tuple[str, ...] = ()
    if ser.method == "shards":
        # OMS 6.3.2 leaves empty files out of the shards: such a file is not unsigned, but
        # nothing proves it was signed either (it may have been added since).
        empty = {e.name for e in entries if e.size == 0}
        uncovered = sorted(n for n in unsigned if n in empty)
        unsigned = tuple(n for n in unsigned if n not in empty)
        _warn_uncovered_empty(uncovered)
        # The signed ranges give each file's size: a file of another size has changed, and
        # is not read (it may be a huge sparse file grown to stall the verifier).
        sizes = _signed_sizes(signed.manifest)
        resized = tuple(e.name for e in entries if e.name in sizes and e.size != sizes[e.name])
    keep = (signed_files if wanted is None else wanted) - set(resized)
    chosen = [e for e in entries if e.name in keep]
    advance, start = _progress_adapter(run.progress)
    start(sum(e.size for e in chosen))
    try:
        pairs = hash_entries(
            chosen,
            local_ser.hash_type,
            local_ser.shard_size,
            workers=run.workers,
            progress=advance,
            executor=run.executor,
            reader=source.reader(),
        )
    except ModelError as exc:
        raise as_integrity(exc) from None
    return manifest_from_digests(pairs, local_ser), unsigned, chosen, resized


def _named(diff: Difference, name: str) -> Difference:
    """The difference with a single file's resource ``.`` (model_signing) called ``name``."""

    def rename(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(name if n == "." else n for n in names)

    return Difference(rename(diff.missing), rename(diff.extra), rename(diff.changed))


def _warn_uncovered_empty(names: Sequence[str]) -> None:
    """Reports empty files that a shards signature cannot say anything about."""
    if not names:
        return
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    logger.warning(
        "%d empty file(s) not covered by the signature: %s; shards signatures leave empty "
        "files out (OMS 6.3.2), so whether they were signed cannot be told",
        len(names),
        shown,
    )


def _covered(name: str, ignores: Sequence[str]) -> bool:
    """True when an ignore path is the name or one of its folders."""
    return any(name == i or name.startswith(i + "/") for i in ignores)


def _signed_sizes(manifest: Manifest) -> dict[str, int]:
    """Each file's size as its signed shards cover it (the largest end offset)."""
    sizes: dict[str, int] = {}
    for item in manifest.items:
        path, _, end = split_shard_name(item.name)
        sizes[path] = max(sizes.get(path, 0), end)
    return sizes


@dataclass(frozen=True)
class _Checked:
    """A model whose signature and signer were proven (8.1 to 8.3), content not yet."""

    source: ModelSource
    path: Path | str
    signature: Path | str
    proven: VerifiedSignature
    signed: SignedStatement
    excluded: tuple[str, ...]
    every: tuple[VerifiedSignature, ...]


def resolve_model(model: PathLike, link_policy: LinkPolicy | None = None) -> ModelSource:
    """The model's source: a ``hf://`` name is looked up in the local Hugging Face cache.

    Raises:
        ModelError: the path or the cached snapshot does not exist.
    """
    source = resolve_source(model, link_policy=link_policy)
    path = source.path
    if path is not None and not path.exists() and not path.is_symlink():
        raise ModelError(f"{path}: no such file or directory")
    return source


def _root_digest(payload: bytes) -> object:
    """What an authenticated payload signs: its root digest, or the payload if unreadable."""
    from omsign.errors import VerificationError

    try:
        return parse_statement(payload, legacy_encoding=True).root_digest
    except VerificationError:
        return payload


def _any_verified(
    bundles: Sequence[tuple[str, Bundle]], policy: Policy
) -> tuple[str, VerifiedSignature]:
    """The first of several signatures (newest first) that verifies under ``policy``,
    with where it was read.

    Raises:
        VerificationError: none does (the error of the first, the main signature).
    """
    first: VerificationError | None = None
    for where, bundle in bundles:
        try:
            return where, verify_signature(bundle, policy)
        except VerificationError as exc:
            first = first or exc
    assert first is not None  # read_all returns at least one bundle or raises
    raise first


def _check_signature(
    model: PathLike,
    policy: Policy,
    signature: PathLike | None,
    link_policy: LinkPolicy | None,
) -> _Checked:
    source = resolve_model(model, link_policy)
    path = source.path if source.path is not None else source.location
    store = resolve_store(source, signature)
    sig_path = as_location(store.location)
    from omsign.policy import Threshold, verify_bundles

    if isinstance(policy, Threshold):  # several signers: every bundle of the store counts
        # Signatures add up when they sign the same root digest (the same content), even
        # if their payloads differ (settings recorded, a companion folder ignored).
        every = verify_bundles(store.read_all(), policy, subject=_root_digest).check()
    elif getattr(store, "any_signature", False):  # a registry: any trusted referrer will do
        from omsign.storage._oci import OciStore

        assert isinstance(store, OciStore)
        # The result names the referrer that verified, not the model it refers to.
        where, proven = _any_verified(store.read_located(), policy)  # 8.1, 8.2
        every, sig_path = (proven,), where
    else:
        every = (verify_signature(store.read(), policy),)  # 8.1, 8.2
    proven = every[0]
    signed = parse_statement(  # 8.3
        proven.payload, str(sig_path), legacy_encoding=proven.legacy_encoding
    )
    return _Checked(source, path, sig_path, proven, signed, tuple(store.excluded()), every)


def _result(checked: _Checked, **content: Any) -> VerificationResult:
    proven, signed = checked.proven, checked.signed
    where = str(checked.signature)
    signers = tuple(
        VerifiedSigner(
            p.method,
            p.signer,
            p.issuer,
            p.signed_at,
            where,
            signed.legacy,
            p.claimed_at,
            p.trusted_as,
        )
        for p in checked.every
    )
    return VerificationResult(
        model=checked.path,
        signature=checked.signature,
        method=proven.method,
        signer=proven.signer,
        issuer=proven.issuer,
        signed_at=proven.signed_at,
        root_digest=signed.root_digest.hex(),
        subject_name=signed.subject_name,
        serialization=signed.manifest.serialization,
        legacy=signed.legacy,
        manifest=signed.manifest,
        link_policy=checked.source.link_policy,
        signers=signers,
        **content,
    )


def verify_signature_only(
    model: PathLike,
    policy: Policy,
    *,
    signature: PathLike | None = None,
    link_policy: LinkPolicy | None = None,
) -> VerificationResult:
    """Checks the signature and signer (OMS 8.1 to 8.3) but reads no model file.

    Every signed file is reported as ``unchecked``: the caller must check content
    itself, as :class:`omsign.loading.VerifiedModel` does on every read.
    """
    checked = _check_signature(model, policy, signature, link_policy)
    return _result(checked, verified=(), unchecked=tuple(sorted(checked.signed.manifest.by_file())))


def _store_ignores(checked: _Checked, signed_files: set[str]) -> list[str]:
    """The store's paths in the model to leave out: the signature, its companion folder and
    claims file, except a companion path the signature lists as a file of the model (a
    model signed elsewhere may hold a data file named ``claims.jsonl``)."""
    local = isinstance(checked.path, Path) and isinstance(checked.signature, Path)
    main = set(signature_ignore(Path(checked.path), Path(checked.signature))) if local else set()
    return [
        e
        for e in checked.excluded
        if e in main or not any(n == e or n.startswith(e + "/") for n in signed_files)
    ]


def verify_with_policy(
    model: PathLike,
    policy: Policy,
    *,
    signature: PathLike | None = None,
    scope: VerifyScope | None = None,
    runtime: Runtime | None = None,
) -> VerificationResult:
    """Verifies a model under an explicit policy; see :func:`omsign.verify`."""
    scope = scope or VerifyScope()
    run = runtime or Runtime()
    files, allow_missing = scope.files, scope.allow_missing
    checked = _check_signature(model, policy, signature, scope.link_policy)
    path, signed = checked.path, checked.signed
    ser = signed.manifest.serialization
    signed_files = set(signed.manifest.by_file())
    given = [
        *ignores_of(checked.source, scope.ignore_paths, report_unmatched=True),
        *_store_ignores(checked, signed_files),
    ]
    ignores = sorted({*(ser.ignore_paths or ()), *given})
    # A file the signature lists is part of the model even where the default or the
    # signature's own ignores would leave it out (a signed .gitattributes); only the
    # verifier's own ignores and the signature file still exclude it.
    listed = sorted(n for n in signed_files if not _covered(n, given))
    wanted = _select(signed_files, files) if files else None
    local, unsigned, entries, resized = _local_manifest(  # 8.4
        checked.source,
        signed,
        ignores=ignores,
        listed=listed,
        wanted=wanted,
        run=run,
    )
    diff = signed.manifest.diff(local)
    # Unsigned files are not hashed, only listed: they are the difference's extras; files
    # whose size differs from the signed shards were not hashed either: they changed.
    diff = Difference(
        tuple(m for m in diff.missing if m not in resized),
        tuple(sorted({*diff.extra, *unsigned})),
        tuple(sorted({*diff.changed, *resized})),
    )
    absent: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()
    if wanted is not None:
        unchecked = tuple(sorted(signed_files - wanted))
        diff = Difference(tuple(m for m in diff.missing if m in wanted), (), diff.changed)
    if allow_missing:  # with --files too: absent matches are reported, not failed
        absent, diff = diff.missing, Difference((), diff.extra, diff.changed)
    if scope.ignore_unsigned_files or wanted is not None:  # 8.5
        diff = Difference(diff.missing, (), diff.changed)
    if not diff.empty:
        if not checked.source.is_dir:  # a single file is named by its name, even as "."
            diff = _named(diff, checked.source.name)
        raise IntegrityError(f"{path}: model does not match its signature: {diff.summary()}", diff)
    if signed_files and not local.by_file():  # partial verification that checked nothing
        raise IntegrityError(
            f"{path}: none of the signed files {'selected ' if wanted else ''}is present; "
            "nothing was verified",
            Difference(absent, (), ()),
        )
    return _result(
        checked,
        verified=tuple(sorted(local.by_file())),
        absent=absent,
        unchecked=unchecked,
        unsigned=unsigned if scope.ignore_unsigned_files else (),
        identities={e.name: (e.device, e.inode) for e in entries if isinstance(e, FileEntry)},
        sizes={e.name: e.size for e in entries},
    )
