"""``omsign.sign`` and ``omsign.digest``: hash a model, build the statement, sign it."""

from __future__ import annotations

import getpass
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from omsign._keywords import (
    DigestKeywords,
    SignerOptions,
    SignKeywords,
    check_keywords,
    hash_options,
    pick,
)
from omsign._keywords import runtime as _runtime
from omsign._paths import (
    as_paths,
    model_relative,
    subject_name,
    url_relative,
)
from omsign.backends import BundleSigner, PasswordSource, load_signing_key
from omsign.bundle import build_bundle
from omsign.errors import KeyLoadError, ModelError, UsageError
from omsign.manifest import (
    Manifest,
    Serialization,
    manifest_from_digests,
    recorded_ignores,
)
from omsign.options import HashOptions, PathLike, ProgressCallback, Runtime
from omsign.predicates import encode_statement, written_form
from omsign.results import SignResult
from omsign.sources import ModelSource, resolve_source
from omsign.storage import resolve_store
from omsign.storage._file import FileStore

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from omsign.sources import Entry


__all__ = [
    "ProgressCallback",
    "SignResult",
    "digest",
    "ignores_of",
    "local_path",
    "make_signer",
    "password_source",
    "sign",
]


def password_source(
    password: bytes | str | None = None, env: str = "OMSIGN_PASSWORD"
) -> PasswordSource:
    """A password source: an explicit value, else ``$OMSIGN_PASSWORD``, else a prompt.

    Without a terminal to prompt on, the source returns None and the caller reports
    which option supplies the secret.
    """

    def source(prompt: str) -> bytes | None:
        if password is not None:
            return password.encode() if isinstance(password, str) else password
        if env in os.environ:
            return os.environ[env].encode()
        if not sys.stdin.isatty():
            return None
        try:
            return getpass.getpass(prompt).encode()
        except (EOFError, OSError):
            raise KeyLoadError(
                f"{prompt.rstrip(': ')} is needed and cannot be prompted for",
                option="password",
                hint=f"give it with {{option}} or ${env}",
            ) from None

    return source


def _serialization(
    hash_algorithm: str,
    shard_size: int | None,
    allow_symlinks: bool,
    ignores: Sequence[str] | None,
) -> Serialization:
    try:
        return Serialization(
            "shards" if shard_size is not None else "files",
            hash_algorithm,
            shard_size,
            allow_symlinks,
            None if ignores is None else recorded_ignores(ignores),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _progress_adapter(
    progress: ProgressCallback | None,
) -> tuple[Callable[[int], None] | None, Callable[[int], None]]:
    if progress is None:
        return None, lambda _total: None
    lock, state = threading.Lock(), [0, 0]

    def advance(n: int) -> None:
        with lock:
            state[0] += n
            progress(state[0], state[1])

    def start(total: int) -> None:
        state[1] = total
        progress(0, total)

    return advance, start


def digest(
    model: PathLike,
    *,
    signature: PathLike | None = None,
    hashing: HashOptions | None = None,
    runtime: Runtime | None = None,
    compat: Literal["model-signing"] | None = None,
    **options: Unpack[DigestKeywords],
) -> str:
    """Computes a model's root digest without signing it.

    The signature file is left out as signing leaves it out, so the digest equals the
    one a signature made with the same options records.

    Args:
        model: file or directory.
        signature: the signature path to leave out (default ``MODEL/model.sig``).
        hashing: how to hash; or the keywords ``hash_algorithm`` (``sha256``, ``blake2b``
            or ``blake3``), ``shard_size``, ``ignore_paths``, ``allow_symlinks``.
        runtime: how to run; or the keywords ``workers``, ``progress``, ``executor``.
        compat: ``"model-signing"`` for the root digest model_signing 1.1.1 computes
            (its resource order; see :func:`sign`).
        **options: the keyword forms of ``hashing`` and ``runtime``.

    Returns:
        The hex SHA-256 root digest, as recorded in a signature's subject.
    """
    check_keywords("digest", options, DigestKeywords)
    opts = hash_options(hashing, options)
    run = _runtime(runtime, options)
    source = resolve_source(model)
    store = resolve_store(source, signature)
    manifest, _ = _hash_model(source, opts, store.excluded(), run, reuse_digests=False)
    return written_form(manifest, compat, single_file=not source.is_dir).root_digest().hex()


def make_signer(**options: Unpack[SignerOptions]) -> BundleSigner:
    """Builds the signer the options describe (see :func:`sign`).

    Args:
        **options: see :class:`~omsign._keywords.SignerOptions`.
    """
    check_keywords("make_signer", options, SignerOptions)
    key, certificate = options.get("key"), options.get("certificate")
    chain, tsa_url = options.get("chain", ()), options.get("tsa_url")
    trust_config = options.get("trust_config")
    if key is None:
        if certificate is not None or chain:
            raise UsageError(
                "a signing certificate needs its private key",
                options=("certificate", "key"),
                hint="give {option1} (a PEM file or a pkcs11: URI) with {option0}",
            )
        if tsa_url:
            raise UsageError(
                "an RFC 3161 timestamp authority is for key and certificate signing; "
                "Sigstore timestamps come from the trust config",
                option="tsa_url",
                hint="leave out {option}",
            )
        from omsign.backends.sigstore import SigstoreBundleSigner, SigstoreSettings

        settings = SigstoreSettings(
            staging=options.get("staging", False),
            trust_config=(Path(trust_config) if trust_config else None),
        )
        return SigstoreBundleSigner(
            settings, options.get("identity_token"), options.get("oauth_out_of_band", False)
        )
    signing_key = load_signing_key(os.fspath(key), password_source(options.get("password")))
    if certificate is None:
        if chain:
            raise UsageError(
                "intermediate certificates need the signing certificate they lead to",
                options=("chain", "certificate"),
                hint="{option0} needs {option1} when signing",
            )
        from omsign.backends._key import KeyBundleSigner

        return KeyBundleSigner(signing_key, tsa_url)
    from omsign.backends._certificate import CertificateBundleSigner
    from omsign.backends._pem import load_certificates

    leaf, *rest = load_certificates(certificate)
    intermediates = [*rest, *(c for p in as_paths(chain) for c in load_certificates(p))]
    return CertificateBundleSigner(signing_key, leaf, intermediates, tsa_url)


def sign(
    model: PathLike,
    *,
    signer: BundleSigner | None = None,
    signature: PathLike | None = None,
    hashing: HashOptions | None = None,
    runtime: Runtime | None = None,
    reuse_digests: bool = False,
    compat: Literal["model-signing"] | None = None,
    add: bool = False,
    **options: Unpack[SignKeywords],
) -> SignResult:
    """Signs a model and writes the OMS bundle atomically.

    The method follows from the arguments, as on the command line: ``key`` alone is
    the key method; ``key`` with ``certificate`` (and ``chain``) the certificate
    method; no key is Sigstore keyless signing. ``key`` may be a PEM path or a
    ``pkcs11:`` URI. A ready ``signer`` replaces all of these.

    Args:
        model: file or directory to sign.
        signer: a custom :class:`~omsign.backends.BundleSigner`, instead of the signing
            keywords.
        signature: where to write the bundle (default ``MODEL/model.sig`` or ``MODEL.sig``).
        hashing: how to hash (:class:`~omsign.options.HashOptions`); or the keywords
            ``hash_algorithm`` (``sha256``, ``blake2b``, ``blake3``), ``shard_size``,
            ``ignore_paths`` (absolute or relative to the current directory) and
            ``allow_symlinks``.
        runtime: how to run (:class:`~omsign.options.Runtime`); or the keywords
            ``workers``, ``progress`` (called with bytes hashed, total bytes) and
            ``executor``.
        reuse_digests: re-hash only files whose size, times or inode differ from the
            digest cache kept outside the model (see :mod:`omsign._reuse`), and update
            it. The signed payload is the same as a full run's.
        compat: ``None`` writes the OMS v1.0 form; ``"model-signing"`` writes what
            model_signing 1.1.1 verifies (a single file named ``.``, ``blake2`` and
            ``<hash>-sharded-<N>`` algorithm names, resources in its order). It cannot
            verify blake3 shards, so that combination is refused before hashing.
        add: keep the existing signature and store this one beside it (for a file
            store, in the companion folder ``model.sig.d/``), for a policy that needs
            several signers; without an existing signature it becomes the main one.
        **options: the signing keywords ``key``, ``certificate``, ``chain``,
            ``password``, ``tsa_url``, ``identity_token``, ``staging``, ``trust_config``,
            ``oauth_out_of_band`` (see :class:`~omsign._keywords.SignerOptions`), and the
            keyword forms of ``hashing`` and ``runtime``.

    Returns:
        The signature path, root digest, manifest and bundle.

    Raises:
        omsign.errors.Error: on any usage, model, key or service problem.
    """
    check_keywords("sign", options, SignKeywords)
    opts = hash_options(hashing, options)
    run = _runtime(runtime, options)
    signing = pick(options, SignerOptions)
    if signer is not None and signing:
        raise UsageError(
            "a ready signer replaces the signing options",
            options=("signer", *sorted(signing)),
            hint="give {option0} or "
            + ", ".join(f"{{option{i}}}" for i in range(1, len(signing) + 1))
            + ", not both",
        )
    source = resolve_source(model)
    store = resolve_store(source, signature)
    _check_name(source)
    refuse_writes = getattr(store, "refuse_writes", None)  # a store that cannot be written
    if callable(refuse_writes):
        refuse_writes()
    if isinstance(store, FileStore):
        store.check_writable(ignores_of(source, opts.ignore_paths), explicit=signature is not None)
        store.warn_foreign_claims()
    if signer is None:
        signer = make_signer(**signing)
    planned = _serialization(opts.algorithm, opts.shard_size, opts.allow_symlinks, None)
    written_form(Manifest((), planned), compat)  # refused before hashing, if it must be
    _prepare(signer)
    manifest, hashed = _hash_model(source, opts, store.excluded(), run, reuse_digests=reuse_digests)
    manifest = written_form(manifest, compat, single_file=not source.is_dir)
    payload = encode_statement(manifest, source.name, compat=compat)
    bundle = build_bundle(payload, *signer.sign_statement(payload))
    keep = add and bool(store.locations())  # the existing signature stays the main one
    written = as_location(store.add(bundle) if keep else store.write(bundle))
    return SignResult(written, manifest.root_digest().hex(), manifest, bundle, hashed)


def _prepare(signer: BundleSigner) -> None:
    """Lets a signer get what it needs (token, certificate, service) before hashing.

    A signer with a ``prepare()`` method (Sigstore keyless) fails there, at once, rather
    than after the whole model was read.
    """
    prepare = getattr(signer, "prepare", None)
    if callable(prepare):
        prepare()


def as_location(where: str) -> Path | str:
    """A store's location as a result gives it: a local path, or a URL as is."""
    return where if "://" in where else Path(where)


def ignores_of(
    source: ModelSource, paths: Sequence[PathLike], *, report_unmatched: bool = False
) -> list[str]:
    """The caller's ignore paths, model-relative (URLs or names for a remote model)."""
    if source.path is None:
        return url_relative(source.location, paths)
    return model_relative(source.path, paths, report_unmatched=report_unmatched)


def local_path(source: ModelSource) -> Path:
    """The source's local path, for what needs the model on this machine."""
    if source.path is None:
        raise UsageError(f"{source.location}: the model must be on this machine")
    return source.path


def _check_name(source: ModelSource) -> None:
    """The subject name must be UTF-8 (OMS 6.1.2): refused before anything is hashed."""
    name = source.name if source.path is None else subject_name(source.path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ModelError(
            f"{source.location}: the model's name is not valid UTF-8 and cannot be its "
            "signed subject name (OMS 6.1.2)"
        ) from None


def _refuse_nothing_to_sign(where: str, entries: Sequence[Entry], ser: Serialization) -> None:
    """Refuses a model whose manifest would have no resource (OMS 6.3.2).

    Shards cover bytes, so a model whose every file is empty has no shard: its
    statement would list nothing and no verifier (omsign included) accepts it.
    """
    if ser.method == "shards" and all(e.size == 0 for e in entries):
        raise ModelError(
            f"{where}: nothing to sign: every file of the model is empty, and shards "
            "cover only bytes (OMS 6.3.2)",
            option="shard_size",
            hint="sign without {option} to sign the empty files by name",
        )


def _hash_model(
    source: ModelSource,
    opts: HashOptions,
    excluded: Sequence[str],
    run: Runtime,
    *,
    reuse_digests: bool,
) -> tuple[Manifest, tuple[str, ...]]:
    """Lists and hashes the model (reusing cached digests when asked)."""
    from omsign.hashing import FileEntry, hash_entries

    ignores = [*ignores_of(source, opts.ignore_paths, report_unmatched=True), *excluded]
    ser = _serialization(opts.algorithm, opts.shard_size, opts.allow_symlinks, ignores)
    started = time.time_ns()
    advance, start = _progress_adapter(run.progress)
    entries = source.entries(
        ignore_paths=ser.ignore_paths or (), allow_symlinks=opts.allow_symlinks
    )
    _refuse_nothing_to_sign(source.location, entries, ser)
    warn = getattr(source, "warn_unsplittable", None)
    if callable(warn):
        warn(entries, ser.shard_size)
    if reuse_digests:
        if source.path is None:
            raise UsageError(
                f"{source.location}: reusing digests is for models on this machine",
                option="reuse_digests",
                hint="leave out {option}",
            )
        from omsign._reuse import DigestCache

        local = [e for e in entries if isinstance(e, FileEntry)]
        cache = DigestCache.load(source.key, ser.hash_type, ser.shard_size)
        reused, split = cache.split(local)
        todo: Sequence[Entry] = split
    else:
        reused, todo = [], entries
    start(sum(e.size for e in todo))
    pairs = [
        *reused,
        *hash_entries(
            todo,
            ser.hash_type,
            ser.shard_size,
            workers=run.workers,
            progress=advance,
            executor=run.executor,
            reader=source.reader(),
        ),
    ]
    if reuse_digests:
        cache.record(local, pairs, started)
        cache.save()
    return manifest_from_digests(pairs, ser), tuple(e.name for e in todo)
