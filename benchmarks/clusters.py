"""Threads against a local Dask cluster and a local Ray cluster on the same shards plan.

Usage: ``python benchmarks/clusters.py [--size 1G] [--shard 64M] [--repeat 3]``.
Writes one file of ``--size`` random bytes in ``.bench/``, warms the page cache, then
hashes it (sha256, shards) with the built-in threads, a local Dask cluster and a local
Ray instance (2 workers each, started before timing) and prints, per executor, the
median wall time, the rate and the overhead per unit against threads. Overhead per unit
is ``(executor time - threads time) / units``: what a cluster adds to each unit on the
same machine. Tiny units (``--shard 1M``) measure it best; large units show whether it
matters at GB sizes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from omsign.executors import make_executor
from omsign.hashing import enumerate_model, hash_entries, plan_units

_SCALE = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def size(text: str) -> int:
    """``64M`` -> bytes (powers of 1024)."""
    unit = _SCALE.get(text[-1:].upper(), 1)
    return int(text[:-1] if unit > 1 else text) * unit


def main() -> None:
    """Runs the comparison and prints one line per executor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=size, default=size("1G"))
    parser.add_argument("--shard", type=size, default=size("64M"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = Path(".bench/clusters")
    root.mkdir(parents=True, exist_ok=True)
    data = root / "weights.bin"
    if not data.exists() or data.stat().st_size != args.size:
        with data.open("wb") as f:
            left = args.size
            while left:
                n = min(left, 64 << 20)
                f.write(os.urandom(n))
                left -= n
    entries = enumerate_model(root)
    units = len(plan_units(entries, args.shard))
    hash_entries(entries, "sha256", args.shard)  # warm the page cache
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    baseline = None
    expected = None
    print(f"{args.size / 1e9:.2f} GB, shards of {args.shard / 1e6:.0f} MB: {units} units")
    for spec in ("threads", "dask", "ray"):
        with make_executor(spec, 2) as executor:
            times = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                got = hash_entries(entries, "sha256", args.shard, workers=2, executor=executor)
                times.append(time.perf_counter() - start)
                assert expected is None or got == expected, f"{spec}: digests differ"
                expected = got
        t = statistics.median(times)
        baseline = t if baseline is None else baseline
        overhead = (t - baseline) / units * 1e3
        print(
            f"{spec:8} {t:7.3f} s  {args.size / t / 1e9:5.2f} GB/s  "
            f"{t / baseline:5.2f}x threads  overhead {overhead:+7.2f} ms/unit"
        )


if __name__ == "__main__":
    main()
