"""omsign reading a model from an S3 server against a plain fsspec read of the same ranges.

Usage: ``python benchmarks/s3read.py [--files 4] [--size 64M] [--shard 32M] [--repeat 5]``.
Starts moto's standalone S3 server on 127.0.0.1 for the run, uploads ``--files`` objects
of ``--size`` random bytes, and times, on 2 workers each (``--repeat`` interleaved rounds,
medians), the same units (byte ranges) read four ways:

- ``fsspec read``: s3fs ``cat_file`` of every unit's byte range, nothing hashed (the rate
  the store and client give; the baseline of every ratio);
- ``fsspec read + sha256``: the same, each range hashed with hashlib;
- ``omsign read``: omsign's reader on the same units, making the engine's calls (open,
  the range announced, 1 MiB reads, close, the look-up of each object after the run),
  nothing hashed: omsign's reads against the plain read, like with like;
- ``omsign``: ``hash_entries`` with omsign's reader on the same shards plan, sha256.

Per reader it prints the requests sent (counted at the client, per operation, with the
mean time to the response's headers) and the CPU time the server and this process used.
Both sides send one GET per unit, for the same ranges, two at a time; omsign pins each
GET to the listed ETag (``If-Match``) and adds the look-up after reading (one listing of
the objects' prefix). What the counts show about moto: a GET costs the server CPU in
proportion to the whole object, not the range (it copies the object's value for every
request), so 32 MiB ranges of 64 MiB objects cost it about 2.5 times the CPU of the
same bytes read as whole objects; with the server on the same two cores as the client,
the hashing's CPU (about 0.2 s for 256 MiB) then competes with the server's and cannot
hide behind the responses, which is why ``omsign`` may trail ``fsspec read`` there while
``omsign read`` does not, and ``fsspec read + sha256`` trails more.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from omsign.hashing import hash_entries, plan_units
from omsign.sources import resolve_source
from omsign.sources._fsspec import ObjectReader
from services._process import start_moto
from services.s3 import s3_client, s3_environment

_SCALE = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
WORKERS = 2


def size(text: str) -> int:
    """``64M`` -> bytes (powers of 1024)."""
    unit = _SCALE.get(text[-1:].upper(), 1)
    return int(text[:-1] if unit > 1 else text) * unit


class Requests:
    """Counts the S3 requests a client sends and the time to each response's headers."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.waits: collections.defaultdict[str, float] = collections.defaultdict(float)

    def attach(self, fs: Any) -> None:
        """Hooks the counter to the s3fs filesystem's client."""
        from fsspec.asyn import sync

        sync(fs.loop, fs.set_session)
        events = fs.s3.meta.events
        events.register("before-call.s3", self._before)
        events.register("after-call.s3", self._after)

    def _before(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        self.counts[model.name] += 1
        context["bench_start"] = time.perf_counter()

    def _after(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        self.waits[model.name] += time.perf_counter() - context.get("bench_start", 0.0)

    def describe(self) -> str:
        """``GetObject 8 (12.3 ms to headers), HeadObject 8 (...)`` per operation."""
        return ", ".join(
            f"{op} {n} ({self.waits[op] / n * 1e3:.1f} ms to headers)"
            for op, n in sorted(self.counts.items())
        )

    def reset(self) -> None:
        """Forgets the counts."""
        self.counts.clear()
        self.waits.clear()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Runs the comparison and prints one line per reader."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--size", type=size, default=size("64M"))
    parser.add_argument("--shard", type=size, default=size("32M"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    proc, endpoint = start_moto(
        ["-m", "moto.server", "-H", "127.0.0.1", "-p", "{port}"], "the moto S3 server"
    )
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
        assert isinstance(reader, ObjectReader)
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True, client_kwargs={"endpoint_url": endpoint})
        plain_requests, omsign_requests = Requests(), Requests()
        plain_requests.attach(fs)
        omsign_requests.attach(reader.open(entries[0]).store.filesystem())  # type: ignore[attr-defined]
        total = sum(e.size for e in entries)

        def plain(hash_it: bool) -> Callable[[], object]:
            def read(unit: Any) -> bytes:
                data: bytes = fs.cat_file(unit.entry.key, start=unit.start, end=unit.end)
                return hashlib.sha256(data).digest() if hash_it else data[:0]

            def run() -> object:
                with ThreadPoolExecutor(WORKERS) as pool:
                    return list(pool.map(read, units))

            return run

        def omsign_read() -> object:
            def read(unit: Any) -> int:  # the engine's calls for a batch of one unit
                source = reader.open(unit.entry)
                try:
                    source.will_read(unit.start, unit.end)  # type: ignore[attr-defined]
                    got = 0
                    for offset in range(unit.start, unit.end, 1 << 20):
                        got += len(source.read(offset, min(1 << 20, unit.end - offset)))
                    source.check_unchanged()
                    return got
                finally:
                    source.close()

            with ThreadPoolExecutor(WORKERS) as pool:
                got = list(pool.map(read, units))
            reader.check_entries(entries)  # the look-up after the run, as the engine does
            return got

        def omsign_hash() -> object:
            return hash_entries(entries, "sha256", args.shard, workers=WORKERS, reader=reader)

        runs: list[tuple[str, Callable[[], object], Requests]] = [
            ("fsspec read", plain(False), plain_requests),
            ("fsspec read + sha256", plain(True), plain_requests),
            ("omsign read", omsign_read, omsign_requests),
            ("omsign", omsign_hash, omsign_requests),
        ]
        for _, run, _ in runs:
            run()  # warm the connections
        counted: list[str] = []
        gets: list[int] = []
        server: list[list[float]] = [[] for _ in runs]
        client_cpu: list[list[float]] = [[] for _ in runs]
        rounds = []
        for r in range(args.repeat):
            times = []
            for i, (_, run, requests) in enumerate(runs):
                requests.reset()
                s0, c0 = cpu_seconds(proc.pid), time.process_time()
                start = time.perf_counter()
                run()
                times.append(time.perf_counter() - start)
                server[i].append(cpu_seconds(proc.pid) - s0)
                client_cpu[i].append(time.process_time() - c0)
                if r == 0:
                    counted.append(requests.describe())
                    gets.append(requests.counts["GetObject"])
            rounds.append(times)
        # Rounds interleave the readers, so that a change of load on the machine hits all
        # of them alike; each ratio is the median of the rounds' ratios.
        medians = [statistics.median(r[i] for r in rounds) for i in range(len(runs))]
        print(
            f"S3 (moto on 127.0.0.1): {args.files} objects x {args.size >> 20} MiB, "
            f"shards of {args.shard >> 20} MiB ({len(units)} units), {WORKERS} workers, "
            f"{args.repeat} rounds, load {os.getloadavg()[0]:.2f}"
        )
        for i, (name, _, _) in enumerate(runs):
            read_ratio = statistics.median(r[i] / r[0] for r in rounds)
            server_cpu = statistics.median(server[i])
            print(
                f"{name:22} {medians[i]:7.3f} s  {total / medians[i] / 1e6:7.1f} MB/s  "
                f"{read_ratio:5.2f}x read  CPU: server {server_cpu:.2f} s "
                f"({server_cpu / max(1, gets[i]) * 1e3:.0f} ms per GET), "
                f"client {statistics.median(client_cpu[i]):.2f} s"
            )
            print(f"{'':22} requests: {counted[i]}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
