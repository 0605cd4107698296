"""Benchmark driver: time ``omsign.digest()`` on a model; print JSON (seconds, digest).

Run with the omsign virtual environment's interpreter:
``python omsign_hash.py MODEL --hash sha256 [--shard-size N]``.
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    """Parses arguments, hashes the model once and prints the result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--hash", default="sha256")
    parser.add_argument("--shard-size", type=int, default=0, help="0 means one digest per file")
    parser.add_argument("--workers", type=int, default=0, help="0 means the library default")
    args = parser.parse_args()

    from omsign import digest  # imports before the clock, as the model_signing driver does

    start = time.perf_counter()
    root = digest(
        args.model,
        hash_algorithm=args.hash,
        shard_size=args.shard_size or None,
        workers=args.workers or None,
    )
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "digest": str(root).removeprefix("sha256:")}))


if __name__ == "__main__":
    main()
