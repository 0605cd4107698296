"""The reference implementation for interop tests: model_signing 1.1.1 in the clone's .venv-ms.

One rule for a missing reference, applied to every test in this folder: the test is skipped
with the reason printed, except under ``CI=true``, where it fails (nothing is skipped under CI
for a missing dependency). ``make reference`` installs it. Every test here is marked
``interop``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.fixtures import REPO, CliResult, require

REFERENCE_VENV = REPO / ".venv-ms"
REFERENCE_BIN = REFERENCE_VENV / "bin"
REFERENCE_CLI = REFERENCE_BIN / "model_signing"
REFERENCE_PYTHON = REFERENCE_BIN / "python"

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks every test of this folder ``interop``."""
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="session", autouse=True)
def reference_bin() -> Path:
    """The reference's ``bin`` folder; skips (fails under CI) when it is not installed."""
    missing = [p for p in (REFERENCE_CLI, REFERENCE_PYTHON) if not p.exists()]
    require(
        not missing,
        f"model_signing 1.1.1 is not installed: {missing[0] if missing else ''} is missing "
        "(run 'make reference')",
    )
    return REFERENCE_BIN


@pytest.fixture(scope="session")
def reference_python(reference_bin: Path) -> Path:
    """The Python interpreter of the reference's virtual environment."""
    return reference_bin / "python"


@pytest.fixture(scope="session")
def reference(reference_bin: Path) -> Callable[..., CliResult]:
    """Runs model_signing 1.1.1's CLI from its own virtual environment."""

    def run(*args: str | Path) -> CliResult:
        proc = subprocess.run(
            [str(reference_bin / "model_signing"), *map(str, args)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run
