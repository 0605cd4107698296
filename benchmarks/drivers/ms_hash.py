"""Benchmark driver: time model_signing 1.1.1 hashing a model; print JSON (seconds, digest).

Run with the model_signing virtual environment's interpreter:
``python ms_hash.py MODEL --hash sha256 [--shard-size N]``. The manifest comes from
its public ``model_signing.hashing.Config`` API with default settings except the
serialization asked for. ``digest`` is the root digest in the OMS v1.0 order
(SHA-256 over the resource digests sorted by name), comparable with omsign's;
``digest_native`` is the same over model_signing's own order.
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

    resources = list(manifest.resource_descriptors())
    native = hashlib.sha256(b"".join(r.digest.digest_value for r in resources))
    # OMS v1.0 orders resources by the code points of their names; model_signing
    # orders shards by offset, so its own root differs once offsets change width.
    ordered = sorted(resources, key=lambda r: r.identifier)
    spec = hashlib.sha256(b"".join(r.digest.digest_value for r in ordered))
    print(
        json.dumps(
            {"seconds": seconds, "digest": spec.hexdigest(), "digest_native": native.hexdigest()}
        )
    )


if __name__ == "__main__":
    main()
