"""The file-hashing algorithms of the OMS algorithm registry: sha256, blake2b, blake3."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol

from omsign.errors import UsageError

__all__ = ["ALGORITHMS", "Hasher", "check_algorithm", "hasher_factory", "new_hasher"]

ALGORITHMS: tuple[str, ...] = ("sha256", "blake2b", "blake3")


class Hasher(Protocol):
    """The part of a hashlib-style object the engine uses."""

    def update(self, data: bytes | bytearray | memoryview, /) -> object:
        """Feeds bytes."""
        ...

    def digest(self) -> bytes:
        """Returns the digest of everything fed so far."""
        ...


def check_algorithm(name: str) -> str:
    """Returns ``name`` if it is a registry identifier, else raises UsageError."""
    if name not in ALGORITHMS:
        raise UsageError(f"unknown hash algorithm {name!r}; choose one of {', '.join(ALGORITHMS)}")
    return name


def _blake3(threads: int) -> Callable[[], Hasher]:
    import blake3

    if threads > 1:
        return lambda: blake3.blake3(max_threads=threads)
    single: Callable[[], Hasher] = blake3.blake3
    return single


def hasher_factory(name: str, threads: int = 1) -> Callable[[], Hasher]:
    """Returns a callable that creates hashers for a registry algorithm, for repeated use.

    Args:
        name: ``sha256``, ``blake2b`` (512-bit) or ``blake3`` (256-bit).
        threads: for blake3 only, how many threads it may use internally on large inputs.
    """
    if check_algorithm(name) == "blake3":
        return _blake3(threads)
    return hashlib.sha256 if name == "sha256" else hashlib.blake2b


def new_hasher(name: str, threads: int = 1) -> Hasher:
    """Creates a hasher for a registry algorithm.

    Args:
        name: ``sha256``, ``blake2b`` (512-bit) or ``blake3`` (256-bit).
        threads: for blake3 only, how many threads it may use internally on large inputs.
    """
    return hasher_factory(name, threads)()
