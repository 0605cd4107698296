"""Options as values: how to hash, what verification must cover, how to run.

Three frozen dataclasses that ``sign``, ``verify``, ``digest`` and ``open_verified``
take (``hashing=``, ``scope=``, ``runtime=``). The keyword forms (``hash_algorithm=``,
``workers=``...) keep working and build these values; a call never mutates them.
:class:`AttestationRequirement` says which attestations a verified model must also
have (``require_attestations=``); :func:`parse_duration` reads ``30d``, ``12h``...
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from omsign.errors import UsageError

if TYPE_CHECKING:
    from omsign.hashing import LinkPolicy

__all__ = [
    "AttestationRequirement",
    "HashOptions",
    "PathLike",
    "ProgressCallback",
    "Runtime",
    "VerifyScope",
    "parse_duration",
]

PathLike = str | os.PathLike[str]
# Called with (bytes hashed so far, total bytes).
ProgressCallback = Callable[[int, int], None]

_ALGORITHMS = ("sha256", "blake2b", "blake3")


@dataclass(frozen=True)
class HashOptions:
    """How a model is hashed when it is signed or digested.

    Attributes:
        algorithm: ``sha256``, ``blake2b`` or ``blake3``.
        shard_size: ``None`` for ``files`` mode, else the shard size in bytes (``shards``).
        ignore_paths: paths to leave out (absolute or relative to the current directory).
        allow_symlinks: follow symbolic links (and record that the signature allows them).
    """

    algorithm: str = "sha256"
    shard_size: int | None = None
    ignore_paths: tuple[PathLike, ...] = ()
    allow_symlinks: bool = False

    def __post_init__(self) -> None:
        if self.algorithm not in _ALGORITHMS:
            raise UsageError(
                f"unknown hash algorithm {self.algorithm!r}; "
                f"choose one of {', '.join(_ALGORITHMS)}",
                option="hash_algorithm",
            )
        if self.shard_size is not None and (
            isinstance(self.shard_size, bool)
            or not isinstance(self.shard_size, int)
            or self.shard_size <= 0
        ):
            raise UsageError(
                f"shard size must be a positive number of bytes, not {self.shard_size!r}",
                option="shard_size",
            )
        if isinstance(self.ignore_paths, (str, os.PathLike)):
            object.__setattr__(self, "ignore_paths", (self.ignore_paths,))
        else:
            object.__setattr__(self, "ignore_paths", tuple(self.ignore_paths))

    @property
    def method(self) -> str:
        """``files`` or ``shards``."""
        return "files" if self.shard_size is None else "shards"


@dataclass(frozen=True)
class VerifyScope:
    """What a verification must cover beyond the signature (OMS 8.4, 8.5).

    Attributes:
        ignore_unsigned_files: do not fail on files the signature does not list.
        allow_missing: verify the signed files present; report the absent ones.
        files: verify only these signed files (globs allowed); ``None`` is all.
        ignore_paths: extra paths to leave out (absolute or relative to the current
            directory).
        link_policy: symbolic links to follow although the signature does not allow them.
    """

    ignore_unsigned_files: bool = False
    allow_missing: bool = False
    files: tuple[str, ...] | None = None
    ignore_paths: tuple[PathLike, ...] = ()
    link_policy: LinkPolicy | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.files, str):
            object.__setattr__(self, "files", (self.files,))
        elif self.files is not None:
            object.__setattr__(self, "files", tuple(self.files))
        if isinstance(self.ignore_paths, (str, os.PathLike)):
            object.__setattr__(self, "ignore_paths", (self.ignore_paths,))
        else:
            object.__setattr__(self, "ignore_paths", tuple(self.ignore_paths))


@dataclass(frozen=True)
class Runtime:
    """How the work runs: nothing here changes a digest or a verdict.

    Attributes:
        workers: hashing threads for the built-in engine (default: every usable CPU).
        progress: called with (bytes hashed so far, total bytes).
        executor: a :class:`concurrent.futures.Executor` to hash on instead of the
            built-in threads (a process pool, a Dask or Ray executor); digests are
            byte-identical whichever runs them.
    """

    workers: int | None = None
    progress: ProgressCallback | None = field(default=None, compare=False)
    executor: Executor | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.workers is not None and (
            isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1
        ):
            raise UsageError(
                f"workers must be a positive count, not {self.workers!r}", option="workers"
            )


_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d{1,6})([wdhms]))+")
_PART = re.compile(r"(\d{1,6})([wdhms])")


def parse_duration(text: str, *, option: str | None = None) -> dt.timedelta:
    """A duration written as numbers with units: ``30d``, ``12h``, ``1d12h``, ``90m``, ``2w``.

    Units: ``w`` weeks, ``d`` days, ``h`` hours, ``m`` minutes, ``s`` seconds.

    Raises:
        UsageError: not such a duration, or zero.
    """
    value = text.strip().lower()
    if not _DURATION.fullmatch(value):
        raise UsageError(
            f"{text!r} is not a duration (a number and a unit: w, d, h, m or s, as in 30d)",
            option=option,
        )
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(value))
    if seconds <= 0:
        raise UsageError(f"duration {text!r} must be longer than zero", option=option)
    return dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class AttestationRequirement:
    """An attestation a model must have to be accepted, once its signature verifies.

    Attributes:
        predicate_type: a short name (``scan``, ``provenance``, ``model-card``, ``bom``)
            or a predicate type URI.
        max_age: when set, the attestation's proven time (a trusted timestamp or log
            entry, not a time the signer merely claims) must be at most this old.
    """

    predicate_type: str
    max_age: dt.timedelta | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.predicate_type, str) or not self.predicate_type.strip():
            raise UsageError("a required attestation needs a type", option="require_attestations")
        if self.max_age is not None and self.max_age <= dt.timedelta(0):
            raise UsageError(
                "a required attestation's max-age must be longer than zero",
                option="require_attestations",
            )

    @classmethod
    def parse(cls, text: str) -> AttestationRequirement:
        """Reads ``TYPE`` or ``TYPE:max-age=DURATION`` (``scan:max-age=7d``).

        A type URI keeps its own colons: only a trailing ``:max-age=...`` is an option.

        Raises:
            UsageError: an empty type, or another option than ``max-age``.
        """
        head, sep, tail = text.rpartition(":")
        if sep and "=" in tail:
            key, _, value = tail.partition("=")
            if key.strip() != "max-age":
                raise UsageError(
                    f"{text!r}: unknown attestation option {key!r} (only max-age=DURATION)",
                    option="require_attestations",
                )
            return cls(head, parse_duration(value, option="require_attestations"))
        return cls(text)

    def describe(self) -> str:
        """How the requirement is written (``scan:max-age=7d``)."""
        if self.max_age is None:
            return self.predicate_type
        return f"{self.predicate_type}:max-age={_format_duration(self.max_age)}"


def _format_duration(value: dt.timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in _UNITS.items():
        if unit == "w":
            continue
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
