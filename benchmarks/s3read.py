"""omsign reading a model from an S3 server against a plain fsspec read of the same ranges.

Usage: ``python benchmarks/s3read.py [--files 4] [--size 64M] [--shard 32M] [--repeat 5]``.
Starts moto's standalone S3 server on 127.0.0.1 for the run, uploads ``--files`` objects
of ``--size`` random bytes, and times, on 2 workers each (``--repeat`` interleaved rounds, medians):

- ``fsspec read``: s3fs ``cat_file`` of every unit's byte range, nothing hashed (the rate
  the store and client give);
- ``fsspec read + sha256``: the same, each range hashed with hashlib;
- ``omsign``: ``hash_entries`` with omsign's pinned reader (ETag ``If-Match`` reads,
  the look-up after each object) on the same shards plan.

It prints each rate and omsign's time against the plain read. moto is a Python server:
the absolute rates are this server's. moto copies a whole object for every range
request, so there a request costs the object's size, not the range's: omsign sends one
request per unit (its body taken in chunks while the previous chunk is hashed), as many
as fsspec's one request per unit.
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


def timed(run: Callable[[], object]) -> float:
    """The wall time of one run."""
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    """Runs the comparison and prints one line per reader."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--size", type=size, default=size("64M"))
    parser.add_argument("--shard", type=size, default=size("32M"))
    parser.add_argument("--repeat", type=int, default=5)
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
        runs = [
            ("fsspec read", plain(False)),
            ("fsspec read + sha256", plain(True)),
            ("omsign", omsign_run),
        ]
        # Rounds interleave the readers, so that a change of load on the machine hits all
        # of them alike; each ratio is the median of the rounds' ratios.
        rounds = [[timed(run) for _, run in runs] for _ in range(args.repeat)]
        times = [statistics.median(r[i] for r in rounds) for i in range(len(runs))]
        ratios = [statistics.median(r[i] / r[0] for r in rounds) for i in range(len(runs))]
        print(
            f"S3 (moto on 127.0.0.1): {args.files} objects x {args.size >> 20} MiB, "
            f"shards of {args.shard >> 20} MiB ({len(units)} units), {WORKERS} workers"
        )
        for (name, _), t, ratio in zip(runs, times, ratios, strict=True):
            print(f"{name:22} {t:7.3f} s  {total / t / 1e6:7.1f} MB/s  {ratio:5.2f}x read")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
