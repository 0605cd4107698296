"""Benchmark driver: time model_signing 1.1.1 hashing a model; print JSON (seconds, digest).

Run with the model_signing virtual environment's interpreter:
``python ms_hash.py MODEL --hash sha256 [--shard-size N]``. The manifest comes from
its public ``model_signing.hashing.Config`` API with default settings except the
serialization asked for; the digest printed is the root digest (SHA-256 over the
resource digests in manifest order), comparable with omsign's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time


def main() -> None:
    """Parses arguments, hashes the model once and prints the result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("--hash", default="sha256", choices=["sha256", "blake2", "blake3"])
    parser.add_argument("--shard-size", type=int, default=0, help="0 means one digest per file")
    args = parser.parse_args()

    from model_signing import hashing

    config = hashing.Config()
    if args.shard_size:
        config.use_shard_serialization(hashing_algorithm=args.hash, shard_size=args.shard_size)
    else:
        config.use_file_serialization(hashing_algorithm=args.hash)

    start = time.perf_counter()
    manifest = config.hash(args.model)
    seconds = time.perf_counter() - start

    root = hashlib.sha256()
    for resource in manifest.resource_descriptors():
        root.update(resource.digest.digest_value)
    print(json.dumps({"seconds": seconds, "digest": root.hexdigest()}))


if __name__ == "__main__":
    main()
