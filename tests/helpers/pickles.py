"""Hostile and harmless pickles for the scanner tests: generated here, never loaded.

The hostile ones reduce to ``os.system`` with a harmless command; nothing in the tests
unpickles them (the scanners only read their opcodes).
"""

from __future__ import annotations

import io
import os
import pickle
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

__all__ = [
    "clean_pickle",
    "pickle_of_size",
    "hostile_pickle",
    "hostile_torch_zip",
    "need_scanner",
    "safetensors_model",
]


class _RunsCommand:
    """Pickles as a call to ``os.system("true")``."""

    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, ("true",))


def hostile_pickle(protocol: int = 4) -> bytes:
    """A pickle whose loading would call ``os.system("true")``."""
    return pickle.dumps({"weights": [1, 2], "hook": _RunsCommand()}, protocol=protocol)


def clean_pickle() -> bytes:
    """A pickle of plain data: no global is imported."""
    return pickle.dumps({"weights": [0.5, 1.5], "step": 3}, protocol=4)


def pickle_of_size(size: int) -> bytes:
    """A harmless pickle of about ``size`` bytes (a byte string inside a dict)."""
    return pickle.dumps({"blob": b"\x00" * size, "step": 1}, protocol=4)


def hostile_torch_zip() -> bytes:
    """A PyTorch-style zip checkpoint whose ``data.pkl`` calls ``os.system``."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("checkpoint/data.pkl", hostile_pickle(2))
        archive.writestr("checkpoint/version", "3\n")
    return out.getvalue()


def safetensors_model(root: Path) -> Path:
    """A clean model: safetensors weights and a JSON config."""
    from safetensors.numpy import save_file

    root.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.arange(16, dtype=np.float32).reshape(4, 4)}, str(root / "model.safetensors"))
    (root / "config.json").write_text('{"hidden_size": 4}\n')
    return root


# A scanner that cannot be installed on this Python at all (its package says so).
_NOT_INSTALLABLE = {"modelscan": ((3, 13), "modelscan supports Python below 3.13 only")}


def need_scanner(name: str) -> None:
    """Skips without the scanner; fails under CI where it could have been installed."""
    import importlib

    try:
        importlib.import_module(name)
    except ImportError:
        floor = _NOT_INSTALLABLE.get(name)
        if floor is not None and sys.version_info[:2] >= floor[0]:
            pytest.skip(f"{name} cannot be installed here: {floor[1]}")
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{name} is not installed ('make test' installs it)")
