"""`make bench` runs: a quick pass of every scenario against model_signing finishes and reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers.fixtures import REPO


def test_quick_benchmark_runs_every_scenario(tmp_path: Path, reference_bin: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--quick",
            "--repeat",
            "1",
            "--workdir",
            str(tmp_path),
            "--ref-venv",
            str(reference_bin.parent),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results
    assert "model_signing" in proc.stdout
