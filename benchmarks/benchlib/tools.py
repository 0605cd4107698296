"""Command lines for the tools under test: omsign, model_signing 1.1.1 and b3sum."""

from __future__ import annotations

from pathlib import Path

from benchlib.config import Config
from benchlib.measure import Invocation


def hash_invocation(
    cfg: Config,
    tool: str,
    model: Path,
    *,
    hash_algorithm: str = "sha256",
    shard_size: int = 0,
    workers: int = 0,
    mode: str = "",
) -> Invocation | None:
    """How ``tool`` hashes ``model`` under the chosen ``--method``.

    ``api``: a driver script calls each library's hashing entry point in a fresh
    process and reports the time of that call alone. ``sign``: each CLI signs the
    model with a P-256 key (hashing included), timed as a whole process.
    Returns None when the tool cannot do it that way (model_signing's CLI has no
    shard or BLAKE3 option).
    """
    mode = mode or (f"shards {shard_size >> 20} MiB" if shard_size else "files")
    if cfg.method == "api":
        return _api_invocation(cfg, tool, model, hash_algorithm, shard_size, workers, mode)
    return _sign_invocation(cfg, tool, model, hash_algorithm, shard_size, mode)


def _api_invocation(
    cfg: Config,
    tool: str,
    model: Path,
    hash_algorithm: str,
    shard_size: int,
    workers: int,
    mode: str,
) -> Invocation:
    shard = ["--shard-size", str(shard_size)] if shard_size else []
    if tool == "omsign":
        argv = [str(cfg.omsign_python), str(cfg.drivers / "omsign_hash.py"), str(model)]
        argv += ["--hash", hash_algorithm, *shard]
        if workers:
            argv += ["--workers", str(workers)]
    else:
        ms_hash = "blake2" if hash_algorithm == "blake2b" else hash_algorithm
        argv = [str(cfg.ms_python), str(cfg.drivers / "ms_hash.py"), str(model)]
        argv += ["--hash", ms_hash, *shard]
    return Invocation(tool=tool, mode=f"{mode} (api)", argv=tuple(argv), reports_time=True)


def _sign_invocation(
    cfg: Config,
    tool: str,
    model: Path,
    hash_algorithm: str,
    shard_size: int,
    mode: str,
) -> Invocation | None:
    if tool == "omsign":
        if hash_algorithm == "blake3" and not shard_size:
            argv = [str(cfg.omsign_cli), "digest", str(model), "--hash", "blake3"]
            return Invocation(tool=tool, mode=f"{mode} (cli digest)", argv=tuple(argv))
        signature = signature_path(cfg, tool, model)
        argv = omsign_sign_argv(cfg, model, signature)
        argv += ["--hash", hash_algorithm]
        if shard_size:
            argv += ["--shard-size", str(shard_size)]
        return Invocation(tool, f"{mode} (cli sign)", tuple(argv), creates=signature)
    if shard_size or hash_algorithm != "sha256":
        return None
    signature = signature_path(cfg, tool, model)
    argv = ms_sign_argv(cfg, model, signature)
    return Invocation(tool, f"{mode} (cli sign)", tuple(argv), creates=signature)


def b3sum_invocation(cfg: Config, path: Path, threads: int) -> Invocation:
    """``b3sum`` on one file with a fixed thread count."""
    argv = (cfg.b3sum, "--num-threads", str(threads), "--no-names", str(path))
    return Invocation(tool="b3sum", mode=f"{threads} threads", argv=argv)


def keys(cfg: Config) -> tuple[Path, Path]:
    """A P-256 key pair (PEM) for signing, created once per work dir."""
    directory = cfg.workdir / "keys"
    private, public = directory / "p256.key.pem", directory / "p256.pub.pem"
    if private.is_file() and public.is_file():
        return private, public
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def signature_path(cfg: Config, tool: str, model: Path) -> Path:
    """Where a tool's signature of a model goes: outside the model, so it is not hashed."""
    directory = cfg.workdir / "signatures"
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{model.name}.{tool}.sig"


def _with_key(cli: Path, *command: str, key_flag: str, key: Path, signature: Path) -> list[str]:
    return [str(cli), *command, key_flag, str(key), "--signature", str(signature)]


def omsign_sign_argv(cfg: Config, model: Path, signature: Path) -> list[str]:
    """``omsign sign`` with the benchmark key."""
    key = keys(cfg)[0]
    return _with_key(
        cfg.omsign_cli, "sign", str(model), key_flag="--key", key=key, signature=signature
    )


def omsign_verify_argv(cfg: Config, model: Path, signature: Path) -> list[str]:
    """``omsign verify`` with the benchmark key."""
    key = keys(cfg)[1]
    return _with_key(
        cfg.omsign_cli, "verify", str(model), key_flag="--key", key=key, signature=signature
    )


def ms_sign_argv(cfg: Config, model: Path, signature: Path) -> list[str]:
    """``model_signing sign key`` with the benchmark key."""
    key = keys(cfg)[0]
    return _with_key(
        cfg.ms_cli,
        "sign",
        "key",
        str(model),
        key_flag="--private_key",
        key=key,
        signature=signature,
    )


def ms_verify_argv(cfg: Config, model: Path, signature: Path) -> list[str]:
    """``model_signing verify key`` with the benchmark key."""
    key = keys(cfg)[1]
    return _with_key(
        cfg.ms_cli,
        "verify",
        "key",
        str(model),
        key_flag="--public_key",
        key=key,
        signature=signature,
    )
