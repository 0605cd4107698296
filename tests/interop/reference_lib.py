"""Drives model_signing 1.1.1's library; run with the reference environment's Python.

The reference CLI signs only ``files``/``sha256`` and verifies with that setting alone;
its library does every hash and serialization, and guesses them from the signature when
verifying. The interop tests run many operations in one process (imports are slow):

    python reference_lib.py JOBS.json

JOBS.json is a list of operations run in order; one JSON result per operation is printed
as a list, each ``{"ok": bool, "error": str, "digest": str}``. Operations:

- ``{"op": "sign", "model", "signature", "hash", "shard_size", "key", "cert", "chain"}``
  (or ``"identity_token"`` and ``"trust_config"`` for Sigstore)
- ``{"op": "verify", "model", "signature", "public_key" | "chain" |
  "identity", "issuer", "trust_config"}``
- ``{"op": "digest", "model", "hash", "shard_size"}`` (the root digest a signature records)
- ``{"op": "tamper", "file", "offset"}`` (flips one byte in place)

``hash`` uses the library's names: ``sha256``, ``blake2``, ``blake3``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from model_signing import hashing, signing, verifying
from model_signing._signing import signing as payloads


def _hashing(job: dict[str, Any]) -> hashing.Config:
    config = hashing.Config()
    if job.get("shard_size"):
        return config.use_shard_serialization(
            hashing_algorithm=job["hash"], shard_size=job["shard_size"]
        )
    return config.use_file_serialization(hashing_algorithm=job["hash"])


def _run(job: dict[str, Any]) -> dict[str, Any]:
    op = job["op"]
    if op == "digest":
        payload = payloads.Payload(_hashing(job).hash(job["model"]))
        return {"digest": payload.statement.pb.subject[0].digest["sha256"]}
    if op == "tamper":
        with open(job["file"], "r+b") as f:
            f.seek(job["offset"])
            byte = f.read(1)
            f.seek(job["offset"])
            f.write(bytes([byte[0] ^ 1]))
        return {}
    if op == "sign":
        config = signing.Config().set_hashing_config(_hashing(job))
        if job.get("identity_token"):
            config.use_sigstore_signer(
                identity_token=job["identity_token"], trust_config=Path(job["trust_config"])
            )
        elif job.get("cert"):
            config.use_certificate_signer(
                private_key=job["key"],
                signing_certificate=job["cert"],
                certificate_chain=job.get("chain", []),
            )
        else:
            config.use_elliptic_key_signer(private_key=job["key"])
        config.sign(job["model"], job["signature"])
        return {}
    check = verifying.Config()
    if job.get("identity"):
        check.use_sigstore_verifier(
            identity=job["identity"],
            oidc_issuer=job["issuer"],
            trust_config=Path(job["trust_config"]),
        )
    elif job.get("public_key"):
        check.use_elliptic_key_verifier(public_key=job["public_key"])
    else:
        check.use_certificate_verifier(certificate_chain=job["chain"])
    check.verify(job["model"], job["signature"])
    return {}


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as f:
        jobs = json.load(f)
    results = []
    for job in jobs:
        try:
            results.append({"ok": True, "error": "", **_run(job)})
        except Exception as exc:  # the library raises ValueError and others: report any
            results.append({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
