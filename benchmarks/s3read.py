"""omsign reading a model from an S3 server against a plain fsspec read of the same ranges.

Usage: ``python benchmarks/s3read.py [--files 4] [--size 64M] [--shard 16M] [--repeat 3]``.
Starts moto's standalone S3 server on 127.0.0.1 for the run, uploads ``--files`` objects
of ``--size`` random bytes, and times, on 2 workers each (median of ``--repeat``):

- ``fsspec read``: s3fs ``cat_file`` of every unit's byte range, nothing hashed (the rate
  the store and client give);
- ``fsspec read + sha256``: the same, each range hashed with hashlib;
- ``omsign``: ``hash_entries`` with omsign's pinned reader (ETag ``If-Match`` reads,
  the look-up after each object) on the same shards plan.

It prints each rate and omsign's time against the plain read. moto is a Python server:
the absolute rates are this server's, the ratios are what omsign adds to a read.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from omsign.hashing import hash_entries, plan_units
from omsign.sources import resolve_source
from services.s3 import s3_client, s3_environment, start_moto

_SCALE = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
WORKERS = 2


def size(text: str) -> int:
    """``64M`` -> bytes (powers of 1024)."""
    unit = _SCALE.get(text[-1:].upper(), 1)
    return int(text[:-1] if unit > 1 else text) * unit


def median_time(run: Callable[[], object], repeat: int) -> float:
    """The median wall time of ``run`` over ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Runs the comparison and prints one line per reader."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--size", type=size, default=size("64M"))
    parser.add_argument("--shard", type=size, default=size("16M"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    proc, endpoint = start_moto()
    try:
        os.environ.update(s3_environment(endpoint))
        client = s3_client()
        client.create_bucket(Bucket="bench")
        for i in range(args.files):
            client.put_object(Bucket="bench", Key=f"m/w{i}.bin", Body=os.urandom(args.size))
        source = resolve_source("s3://bench/m")
        entries = source.entries()
        units = plan_units(entries, args.shard)
        reader = source.reader()
        import s3fs

        fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint})
        total = sum(e.size for e in entries)

        def plain(hash_it: bool) -> Callable[[], object]:
            def read(unit: object) -> bytes:
                data: bytes = fs.cat_file(unit.entry.key, start=unit.start, end=unit.end)
                return hashlib.sha256(data).digest() if hash_it else data[:0]

            def run() -> object:
                with ThreadPoolExecutor(WORKERS) as pool:
                    return list(pool.map(read, units))

            return run

        def omsign_run() -> object:
            return hash_entries(entries, "sha256", args.shard, workers=WORKERS, reader=reader)

        omsign_run()  # warm the connections
        results = [
            ("fsspec read", median_time(plain(False), args.repeat)),
            ("fsspec read + sha256", median_time(plain(True), args.repeat)),
            ("omsign", median_time(omsign_run, args.repeat)),
        ]
        print(
            f"S3 (moto on 127.0.0.1): {args.files} objects x {args.size >> 20} MiB, "
            f"shards of {args.shard >> 20} MiB ({len(units)} units), {WORKERS} workers"
        )
        base = results[0][1]
        for name, t in results:
            print(f"{name:22} {t:7.3f} s  {total / t / 1e6:7.1f} MB/s  {t / base:5.2f}x read")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
