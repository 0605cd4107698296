"""``omsign.sign`` and ``omsign.digest``: hash a model, build the statement, sign it."""

from __future__ import annotations

import getpass
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from omsign._paths import (
    as_paths,
    default_signature,
    model_relative,
    signature_ignore,
    subject_name,
)
from omsign.backends import BundleSigner, PasswordSource, load_signing_key
from omsign.bundle import build_bundle, write_bundle
from omsign.errors import KeyLoadError, UsageError
from omsign.manifest import (
    Manifest,
    Serialization,
    compute_manifest,
    manifest_from_digests,
    recorded_ignores,
)
from omsign.statement import encode_statement

__all__ = ["ProgressCallback", "SignResult", "digest", "make_signer", "password_source", "sign"]

PathLike = str | os.PathLike[str]
# Called with (bytes hashed so far, total bytes).
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class SignResult:
    """What ``sign`` wrote.

    Attributes:
        signature: the path of the bundle written.
        root_digest: hex SHA-256 root digest of the manifest.
        manifest: the signed manifest.
        bundle: the bundle written, as a JSON object.
        hashed: the files read and hashed by this run (all of them unless digests
            were reused).
    """

    signature: Path
    root_digest: str
    manifest: Manifest
    bundle: dict[str, object]
    hashed: tuple[str, ...] = ()


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
    hash_algorithm: str = "sha256",
    shard_size: int | None = None,
    ignore_paths: PathLike | Sequence[PathLike] = (),
    allow_symlinks: bool = False,
    workers: int | None = None,
    signature: PathLike | None = None,
) -> str:
    """Computes a model's root digest without signing it.

    The signature file is left out as signing leaves it out, so the digest equals the
    one a signature made with the same options records.

    Args:
        model: file or directory.
        hash_algorithm: ``sha256``, ``blake2b`` or ``blake3``.
        shard_size: hash in shards of this many bytes instead of whole files.
        ignore_paths: paths to exclude (absolute or relative to the current directory).
        allow_symlinks: follow symbolic links.
        workers: hashing threads (default: every usable CPU).
        signature: the signature path to leave out (default ``MODEL/model.sig``).

    Returns:
        The hex SHA-256 root digest, as recorded in a signature's subject.
    """
    path = Path(model)
    sig_path = Path(signature) if signature is not None else default_signature(path)
    ignores = [*model_relative(path, as_paths(ignore_paths)), *signature_ignore(path, sig_path)]
    ser = _serialization(hash_algorithm, shard_size, allow_symlinks, ignores)
    return compute_manifest(path, ser, workers=workers).root_digest().hex()


def make_signer(
    *,
    key: PathLike | None = None,
    certificate: PathLike | None = None,
    chain: PathLike | Sequence[PathLike] = (),
    password: bytes | str | None = None,
    tsa_url: str | None = None,
    identity_token: str | None = None,
    staging: bool = False,
    trust_config: PathLike | None = None,
    oauth_out_of_band: bool = False,
) -> BundleSigner:
    """Builds the signer the options describe (see :func:`sign`)."""
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
        from omsign.backends._sigstore import SigstoreBundleSigner, SigstoreSettings

        settings = SigstoreSettings(
            staging=staging, trust_config=(Path(trust_config) if trust_config else None)
        )
        return SigstoreBundleSigner(settings, identity_token, oauth_out_of_band)
    signing_key = load_signing_key(os.fspath(key), password_source(password))
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
    key: PathLike | None = None,
    certificate: PathLike | None = None,
    chain: PathLike | Sequence[PathLike] = (),
    signer: BundleSigner | None = None,
    password: bytes | str | None = None,
    tsa_url: str | None = None,
    identity_token: str | None = None,
    staging: bool = False,
    trust_config: PathLike | None = None,
    signature: PathLike | None = None,
    hash_algorithm: Literal["sha256", "blake2b", "blake3"] | str = "sha256",
    shard_size: int | None = None,
    ignore_paths: PathLike | Sequence[PathLike] = (),
    allow_symlinks: bool = False,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    oauth_out_of_band: bool = False,
    reuse_digests: bool = False,
) -> SignResult:
    """Signs a model and writes the OMS bundle atomically.

    The method follows from the arguments, as on the command line: ``key`` alone is
    the key method; ``key`` with ``certificate`` (and ``chain``) the certificate
    method; no key is Sigstore keyless signing. ``key`` may be a PEM path or a
    ``pkcs11:`` URI. A ready ``signer`` overrides all of these.

    Args:
        model: file or directory to sign.
        key: private key PEM path or key URI.
        certificate: leaf certificate PEM for the key (certificate method).
        chain: PEM files with the intermediate certificates to embed.
        signer: a custom :class:`~omsign.backends.BundleSigner`.
        password: the key's password (else ``$OMSIGN_PASSWORD`` or a prompt).
        tsa_url: an RFC 3161 timestamp authority to timestamp the signature.
        identity_token: OIDC token for Sigstore keyless signing.
        staging: use the Sigstore staging instance.
        trust_config: a Sigstore ClientTrustConfig file (private instances).
        signature: where to write the bundle (default ``MODEL/model.sig`` or ``MODEL.sig``).
        hash_algorithm: ``sha256``, ``blake2b`` or ``blake3``.
        shard_size: hash in shards of this many bytes (``shards`` mode).
        ignore_paths: paths to exclude (absolute or relative to the current directory).
        allow_symlinks: follow symbolic links.
        workers: hashing threads.
        progress: called with (bytes hashed, total bytes).
        oauth_out_of_band: Sigstore browser login by pasting a code (no local redirect).
        reuse_digests: re-hash only files whose size, times or inode differ from the
            digest cache kept outside the model (see :mod:`omsign._reuse`), and update
            it. The signed payload is the same as a full run's.

    Returns:
        The signature path, root digest, manifest and bundle.

    Raises:
        omsign.errors.Error: on any usage, model, key or service problem.
    """
    path = Path(model)
    sig_path = Path(signature) if signature is not None else default_signature(path)
    if signer is None:
        signer = make_signer(
            key=key,
            certificate=certificate,
            chain=chain,
            password=password,
            tsa_url=tsa_url,
            identity_token=identity_token,
            staging=staging,
            trust_config=trust_config,
            oauth_out_of_band=oauth_out_of_band,
        )
    ignores = [*model_relative(path, as_paths(ignore_paths)), *signature_ignore(path, sig_path)]
    ser = _serialization(hash_algorithm, shard_size, allow_symlinks, ignores)
    manifest, hashed = _hash_model(
        path,
        ser,
        allow_symlinks=allow_symlinks,
        workers=workers,
        progress=progress,
        reuse_digests=reuse_digests,
    )
    payload = encode_statement(manifest, subject_name(path))
    bundle = build_bundle(payload, *signer.sign_statement(payload))
    write_bundle(sig_path, bundle)
    return SignResult(sig_path, manifest.root_digest().hex(), manifest, bundle, hashed)


def _hash_model(
    path: Path,
    ser: Serialization,
    *,
    allow_symlinks: bool,
    workers: int | None,
    progress: ProgressCallback | None,
    reuse_digests: bool,
) -> tuple[Manifest, tuple[str, ...]]:
    """Enumerates and hashes the model (reusing cached digests when asked)."""
    from omsign._hf import snapshot_link_policy
    from omsign.hashing import enumerate_model, hash_entries

    started = time.time_ns()
    advance, start = _progress_adapter(progress)
    entries = enumerate_model(
        path,
        ignore_paths=ser.ignore_paths or (),
        allow_symlinks=allow_symlinks,
        link_policy=snapshot_link_policy(path),
    )
    if not reuse_digests:
        start(sum(e.size for e in entries))
        manifest = compute_manifest(path, ser, entries=entries, workers=workers, progress=advance)
        return manifest, tuple(e.name for e in entries)
    from omsign._reuse import DigestCache

    cache = DigestCache.load(path, ser.hash_type, ser.shard_size)
    reused, todo = cache.split(entries)
    start(sum(e.size for e in todo))
    pairs = [
        *reused,
        *hash_entries(todo, ser.hash_type, ser.shard_size, workers=workers, progress=advance),
    ]
    cache.record(entries, pairs, started)
    cache.save()
    return manifest_from_digests(pairs, ser), tuple(e.name for e in todo)
