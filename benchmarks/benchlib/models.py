"""Synthetic models for the benchmarks: generated once, reused while parameters match."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from benchlib.config import KIB, MIB

_BLOCK = 16 * MIB
_STAMP_VERSION = 1

_HF_NAMED_SMALL = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.safetensors.index.json",
    "README.md",
    "LICENSE",
    "vocab.txt",
    "merges.txt",
)


def _random_block() -> bytes:
    return os.urandom(_BLOCK)


def write_blob(path: Path, size: int, block: bytes | None = None) -> None:
    """Writes ``size`` pseudo-random bytes; each 16 MiB block gets a unique header."""
    block = block if block is not None else _random_block()
    tag = path.name.encode()[:32].ljust(32, b"\0")
    with path.open("wb") as out:
        written = 0
        index = 0
        while written < size:
            header = tag + index.to_bytes(8, "little")
            chunk = header + block[len(header) : min(len(block), size - written)]
            chunk = chunk[: size - written]
            out.write(chunk)
            written += len(chunk)
            index += 1


def _small_text(name: str, size: int) -> bytes:
    """A small JSON-like file of about ``size`` bytes, different for every name."""
    body = {"name": name, "entries": [f"{name}-{i}-" + os.urandom(8).hex() for i in range(64)]}
    text = json.dumps(body, indent=2)
    while len(text) < size:
        text += "\n" + os.urandom(min(512, size)).hex()
    return text[:size].encode()


def _build_big(root: Path, size: int) -> None:
    write_blob(root / "model.safetensors", size)


def _build_hf(root: Path, weight: int, n_small: int) -> None:
    block = _random_block()
    for i in range(1, 5):
        write_blob(root / f"model-{i:05d}-of-00004.safetensors", weight, block)
    names = list(_HF_NAMED_SMALL)
    names += [f"extra/tokenizer_part_{i:03d}.json" for i in range(n_small - len(names))]
    for i, name in enumerate(names[:n_small]):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_small_text(name, 1 * KIB + (i * 331) % (7 * KIB)))


def _build_small(root: Path, count: int, size: int) -> None:
    per_dir = 200
    for i in range(count):
        directory = root / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            directory.mkdir()
        (directory / f"f{i:06d}.bin").write_bytes(os.urandom(size))


def _build_sign(root: Path, size: int) -> None:
    write_blob(root / "model.safetensors", size)
    (root / "config.json").write_bytes(_small_text("config.json", 2 * KIB))


def _build_incremental(root: Path, size: int) -> None:
    block = _random_block()
    for i in range(1, 5):
        write_blob(root / f"model-{i:05d}-of-00004.safetensors", size // 4, block)
    for name in _HF_NAMED_SMALL:
        (root / name).write_bytes(_small_text(name, 3 * KIB))


_BUILDERS: dict[str, Callable[..., None]] = {
    "big": _build_big,
    "hf": _build_hf,
    "small": _build_small,
    "sign": _build_sign,
    "incremental": _build_incremental,
}


def ensure_model(workdir: Path, kind: str, **params: int) -> Path:
    """Returns the model directory for ``kind`` and ``params``, generating it if needed.

    A JSON stamp next to the directory records the parameters; it is written last,
    so an interrupted generation is redone on the next run.
    """
    models = workdir / "models"
    name = kind + "-" + "-".join(f"{k}{v}" for k, v in sorted(params.items()))
    root = models / name
    stamp = models / f"{name}.json"
    wanted = {"version": _STAMP_VERSION, "kind": kind, "params": params}
    if root.is_dir() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()) == wanted:
                return root
        except ValueError:
            pass
    print(f"  generating model {name} ...", flush=True)
    if root.exists():
        shutil.rmtree(root)
    stamp.unlink(missing_ok=True)
    root.mkdir(parents=True)
    _BUILDERS[kind](root, **params)
    stamp.write_text(json.dumps(wanted, indent=2) + "\n")
    return root


def model_bytes(root: Path) -> tuple[int, int]:
    """Returns (total bytes, number of files) of a model directory."""
    total = 0
    count = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            total += os.stat(os.path.join(dirpath, name)).st_size
            count += 1
    return total, count


def warm_cache(root: Path) -> None:
    """Reads every file of the model once so that the page cache holds it."""
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb", buffering=0) as f:
                while f.read(8 * MIB):
                    pass
