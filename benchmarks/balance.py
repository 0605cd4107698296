"""Benchmarks how evenly hashing spreads over the cores on models of a few files.

Usage: ``python benchmarks/balance.py [--repeat N] [--only NAME]... [--executor]``.

A model of a handful of files is where scheduling shows: in ``files`` mode with
sha256 each file is one unit of work, so the plan decides whether every core is busy
until the end. This script times ``omsign.digest()`` (in a fresh process, imports
excluded, as ``run.py`` does) with the default workers and with one worker, against
model_signing 1.1.1, on models of 10 files (100 MiB, equal and uneven sizes) and of 3
files. ``--executor`` also times omsign hashing on a ``ProcessPoolExecutor``. The
omsign under test is the one ``PYTHONPATH`` or the venv provides; ``--baseline-src``
times another source tree in the same interleaved runs (before/after comparisons).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchlib import models
from benchlib.config import MIB, usable_cores
from benchlib.measure import Invocation, Measurement, measure

REPO = Path(__file__).resolve().parent.parent
DRIVERS = REPO / "benchmarks" / "drivers"

# name -> file sizes in MiB
LAYOUTS: dict[str, tuple[int, ...]] = {
    "ten-equal": (10,) * 10,
    "ten-uneven": (19, 16, 14, 12, 10, 9, 8, 6, 4, 2),
    "three": (40, 30, 30),
}


def _model(workdir: Path, name: str) -> Path:
    """Generates (once) the model of a layout; a stamp records the sizes."""
    sizes = LAYOUTS[name]
    root = workdir / "models" / f"balance-{name}"
    stamp = root.with_suffix(".json")
    if root.is_dir() and stamp.is_file() and json.loads(stamp.read_text()) == list(sizes):
        return root
    print(f"  generating model {root.name} ...", flush=True)
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        old.unlink()
    for i, size in enumerate(sizes):
        models.write_blob(root / f"model-{i:02d}.safetensors", size * MIB)
    stamp.write_text(json.dumps(list(sizes)))
    return root


def _omsign(args: argparse.Namespace, model: Path, mode: str, *extra: str) -> list[Invocation]:
    """The driver under test and, with ``--baseline-src``, the same on another source tree."""
    python = str(args.venv / "bin" / "python")
    argv = (python, str(DRIVERS / "omsign_hash.py"), str(model), *extra)
    plan = [Invocation("omsign", mode, argv, reports_time=True)]
    if args.baseline_src:
        env = ("env", f"PYTHONPATH={args.baseline_src.resolve()}")
        plan.append(Invocation("omsign (base)", mode, (*env, *argv), reports_time=True))
    return plan


def _invocations(args: argparse.Namespace, model: Path) -> list[Invocation]:
    cores = usable_cores()
    plan = [
        *_omsign(args, model, f"files, {cores} workers"),
        *_omsign(args, model, "files, 1 worker", "--workers", "1"),
    ]
    if args.executor:
        plan.append(
            _omsign(args, model, f"files, process pool {cores}", "--executor", "process")[0]
        )
    ms = (str(args.ref_venv / "bin" / "python"), str(DRIVERS / "ms_hash.py"), str(model))
    plan.append(Invocation("model_signing", "files", ms, reports_time=True))
    return plan


def _row(name: str, size: int, m: Measurement, ref: float | None) -> str:
    if m.error or not m.seconds:
        return f"{name:<11} {m.tool:<14} {m.mode:<26} {m.error or 'no time'}"
    spread = f"  min {min(m.runs) * 1000:6.1f}" if m.runs else ""
    ratio = f"{ref / m.seconds:5.2f}x" if ref else "   n/a"
    return (
        f"{name:<11} {m.tool:<14} {m.mode:<26} {m.seconds * 1000:7.1f} ms "
        f"{size / m.seconds / 1e9:6.2f} GB/s  vs ms {ratio}{spread}"
    )


def main() -> int:
    """Runs the layouts and prints one line per tool and mode."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (median)")
    parser.add_argument("--only", action="append", choices=sorted(LAYOUTS), default=[])
    parser.add_argument("--executor", action="store_true", help="also time a process pool")
    parser.add_argument("--workdir", type=Path, default=REPO / ".bench")
    parser.add_argument("--venv", type=Path, default=REPO / ".venv")
    parser.add_argument("--ref-venv", type=Path, default=REPO / ".venv-ms")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="also time the omsign of this src/ directory (an older checkout), interleaved",
    )
    args = parser.parse_args()
    print(f"{usable_cores()} cores, median of {args.repeat}; 'vs ms' = model_signing time / time")
    for name in args.only or LAYOUTS:
        model = _model(args.workdir, name)
        size, _ = models.model_bytes(model)
        models.warm_cache(model)
        results = measure(_invocations(args, model), args.repeat)
        ref = results[-1].seconds
        digests = {m.digest for m in results if m.digest}
        for m in results:
            print(_row(name, size, m, ref), flush=True)
        if len(digests) > 1:
            print(f"{name}: ROOT DIGESTS DIFFER: {sorted(digests)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
