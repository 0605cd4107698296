"""Validly signed hostile bundles: statements written by hand, signed with a test key.

A verifier must reject a malicious manifest even when the trusted key signed it, so
these helpers sign whatever statement a test builds, exactly as omsign would sign a
real one (DSSE PAE, ECDSA, the key method's bundle layout).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from omsign.backends._key import KeyBundleSigner
from omsign.backends._pem import PemSigningKey
from omsign.bundle import build_bundle

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
LEGACY_PREDICATE_TYPE = "https://model_signing/Digests/v0.1"


def load_signer(private_pem: Path) -> KeyBundleSigner:
    """A key-method signer for an unencrypted PEM private key."""
    key = serialization.load_pem_private_key(private_pem.read_bytes(), None)
    return KeyBundleSigner(PemSigningKey(key))  # type: ignore[arg-type]


def sign_payload(private_pem: Path, payload: bytes) -> dict[str, Any]:
    """A key-method bundle over arbitrary payload bytes."""
    return build_bundle(payload, *load_signer(private_pem).sign_statement(payload))


def statement(
    resources: list[dict[str, Any]],
    *,
    serialization: dict[str, Any] | None = None,
    subject_name: str = "model",
    root: str | None = None,
) -> dict[str, Any]:
    """An OMS v1.0 statement; the root digest is computed from the resources unless given."""
    if root is None:
        h = hashlib.sha256()
        for res in resources:
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                h.update(bytes.fromhex(res["digest"]))
        root = h.hexdigest()
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject_name, "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "resources": resources,
            "serialization": serialization
            or {"method": "files", "hash_type": "sha256", "allow_symlinks": False},
        },
    }


def resource(name: str, data: bytes = b"x", algorithm: str = "sha256") -> dict[str, Any]:
    """One ``files`` resource whose digest is SHA-256 of ``data``."""
    return {"name": name, "digest": hashlib.sha256(data).hexdigest(), "algorithm": algorithm}


def write_signed(path: Path, private_pem: Path, content: dict[str, Any] | bytes) -> dict[str, Any]:
    """Signs a statement (object or raw bytes) and writes the bundle to ``path``."""
    payload = content if isinstance(content, bytes) else json.dumps(content).encode()
    bundle = sign_payload(private_pem, payload)
    path.write_text(json.dumps(bundle))
    return bundle


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fails the block with TimeoutError if it runs longer (a blocked open, say)."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s: something blocked")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
