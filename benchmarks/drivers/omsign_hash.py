"""Benchmark driver: time ``omsign.digest()`` on a model; print JSON (seconds, digest).

Run with the omsign virtual environment's interpreter:
``python omsign_hash.py MODEL --hash sha256 [--shard-size N] [--executor process]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time


def main() -> None:
    """Parses arguments, hashes the model once and prints the result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--hash", default="sha256")
    parser.add_argument("--shard-size", type=int, default=0, help="0 means one digest per file")
    parser.add_argument("--workers", type=int, default=0, help="0 means the library default")
    parser.add_argument(
        "--executor",
        choices=["threads", "process"],
        default="threads",
        help="threads: the built-in engine; process: a process pool, started before the clock",
    )
    args = parser.parse_args()

    from omsign import digest  # imports before the clock, as the model_signing driver does

    with contextlib.ExitStack() as stack:
        executor = None
        if args.executor == "process":
            from concurrent.futures import ProcessPoolExecutor

            from omsign.hashing import worker_count

            count = worker_count(args.workers or None)
            executor = stack.enter_context(ProcessPoolExecutor(count))
            list(executor.map(time.sleep, [0.05] * count))  # every worker started
        extra = {} if executor is None else {"executor": executor}  # older omsign: no keyword
        start = time.perf_counter()
        root = digest(
            args.model,
            hash_algorithm=args.hash,
            shard_size=args.shard_size or None,
            workers=args.workers or None,
            **extra,
        )
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "digest": str(root).removeprefix("sha256:")}))


if __name__ == "__main__":
    main()
