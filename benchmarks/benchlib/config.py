"""Benchmark parameters: sizes per scenario, presets (default, --full, --quick), paths."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": KIB, "m": MIB, "g": GIB, "t": 1 << 40}

SCENARIOS = ("big", "hf", "small", "blake3", "memory", "startup", "incremental")
"""Scenario names, in the issue's order (1 to 7)."""


def parse_size(text: str) -> int:
    """Parses a byte count such as ``4096``, ``256M``, ``1GiB`` (binary units)."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 4096, 64K, 256M, 1G)")
    number, unit, _ = match.groups()
    return int(float(number) * _UNITS[unit.lower()])


def format_size(size: int) -> str:
    """Formats a byte count with the largest binary unit that divides it evenly."""
    for unit, factor in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Model sizes for every scenario."""

    big_file: int
    hf_weight: int
    hf_small_files: int
    small_count: int
    small_size: int
    sign_model: int
    incremental_model: int
    shard_size: int
    version_runs: int


PRESETS: dict[str, Sizes] = {
    "default": Sizes(
        big_file=1 * GIB,
        hf_weight=256 * MIB,
        hf_small_files=50,
        small_count=20_000,
        small_size=4 * KIB,
        sign_model=10 * MIB,
        incremental_model=512 * MIB,
        shard_size=64 * MIB,
        version_runs=10,
    ),
    "full": Sizes(
        big_file=4 * GIB,
        hf_weight=1 * GIB,
        hf_small_files=50,
        small_count=20_000,
        small_size=4 * KIB,
        sign_model=10 * MIB,
        incremental_model=2 * GIB,
        shard_size=64 * MIB,
        version_runs=20,
    ),
    "quick": Sizes(
        big_file=32 * MIB,
        hf_weight=8 * MIB,
        hf_small_files=50,
        small_count=500,
        small_size=4 * KIB,
        sign_model=1 * MIB,
        incremental_model=16 * MIB,
        shard_size=4 * MIB,
        version_runs=3,
    ),
}


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything one benchmark run needs to know."""

    repo: Path
    workdir: Path
    venv: Path
    ref_venv: Path
    b3sum: str
    sizes: Sizes
    preset: str
    repeat: int
    only: tuple[str, ...]
    method: str
    cores: int

    @property
    def omsign_python(self) -> Path:
        """Interpreter of the omsign virtual environment."""
        return self.venv / "bin" / "python"

    @property
    def omsign_cli(self) -> Path:
        """The ``omsign`` console script."""
        return self.venv / "bin" / "omsign"

    @property
    def ms_python(self) -> Path:
        """Interpreter of the model_signing 1.1.1 virtual environment."""
        return self.ref_venv / "bin" / "python"

    @property
    def ms_cli(self) -> Path:
        """The ``model_signing`` console script."""
        return self.ref_venv / "bin" / "model_signing"

    @property
    def drivers(self) -> Path:
        """Directory of the per-tool driver scripts."""
        return Path(__file__).resolve().parent.parent / "drivers"

    def wants(self, scenario: str) -> bool:
        """Tells whether a scenario is selected (all are, without ``--only``)."""
        return not self.only or scenario in self.only


def usable_cores() -> int:
    """Number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
