"""The fuzz harness: a signed model, the verification oracle and the mutation engine.

The oracle calls the library directly (no subprocess): ``parse_bundle``, then
``verify_signature`` under a key policy, then ``parse_statement`` and a comparison
with the model. Every outcome is one of:

* rejected: an ``omsign.errors.Error`` was raised (the project's own errors);
* accepted: verification succeeded, which is only correct when the signed payload
  and signature are the original ones (unsigned fields may change freely);
* a crash (any other exception) or a false acceptance, which fail the test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from helpers.pki import make_ec_key
from omsign.backends._key import KeyBundleSigner
from omsign.backends._pem import PemSigningKey
from omsign.bundle import build_bundle, parse_bundle
from omsign.errors import Error
from omsign.manifest import Manifest, Serialization, compute_manifest
from omsign.policy import KeyPolicy, verify_signature
from omsign.statement import parse_statement

SLOW = os.environ.get("OMSIGN_SLOW") == "1"

# Mutations per volume test: regular run / slow mode (make fuzz). Slow mode totals >= 100,000.
VOLUME = {
    "bundle": 70_000 if SLOW else 3_000,
    "signed_statement": 15_000 if SLOW else 600,
    "model": 15_000 if SLOW else 600,
}
EXAMPLES = 1_000 if SLOW else 60  # hypothesis examples per property test

MODEL_FILES: dict[str, bytes] = {
    "config.json": b'{"hidden_size": 8}\n',
    "weights.bin": bytes(range(256)) * 20,
    "sub/tokenizer.json": b'{"vocab": {}}\n',
    "sub/deep/x:1:2": b"colon name",
    "caf\u00e9.txt": b"unicode name",
}


class FuzzFailure(AssertionError):
    """A crash (non-omsign exception) or a false acceptance, with the input that caused it."""


@dataclass
class Target:
    """A signed model and everything the oracle compares against."""

    model: Path
    key: ec.EllipticCurvePrivateKey
    signer: KeyBundleSigner
    policy: KeyPolicy
    bundle: dict[str, Any]
    text: bytes
    payload: bytes
    signature: bytes
    local: Manifest
    found: Path
    _locals: dict[tuple[Any, ...], Manifest] = field(default_factory=dict)

    def oracle(self, data: bytes, what: str) -> str:
        """Verifies a candidate bundle; returns ``accepted`` or ``rejected``.

        Raises:
            FuzzFailure: a crash, or acceptance of a changed payload or signature.
        """
        try:
            bundle = parse_bundle(data, "fuzz.sig")
            proven = verify_signature(bundle, self.policy)
            signed = parse_statement(proven.payload)
            if not signed.manifest.diff(self.local).empty:
                return "rejected"
        except Error:
            return "rejected"
        except Exception as exc:
            raise self.failure(data, what, f"crash {type(exc).__name__}: {exc}") from exc
        if bundle.payload != self.payload or bundle.signature != self.signature:
            raise self.failure(data, what, "false acceptance of a changed payload or signature")
        return "accepted"

    def signed_oracle(self, payload: bytes, what: str) -> str:
        """Signs ``payload`` with the trusted key and verifies it against the model.

        A signed statement may be accepted only if it describes the model truly: safe,
        unique names, and the digests an independent computation gives.
        """
        data = json.dumps(build_bundle(payload, *self.signer.sign_statement(payload))).encode()
        try:
            bundle = parse_bundle(data, "fuzz.sig")
            proven = verify_signature(bundle, self.policy)
            signed = parse_statement(proven.payload, legacy_encoding=proven.legacy_encoding)
            local = self.local_for(signed.manifest.serialization)
            if not signed.manifest.diff(local).empty:
                return "rejected"
        except Error:
            return "rejected"
        except Exception as exc:
            raise self.failure(data, what, f"crash {type(exc).__name__}: {exc}") from exc
        problem = independent_problem(signed.manifest)
        if problem:
            raise self.failure(data, what, f"false acceptance: {problem}")
        return "accepted"

    def local_for(self, ser: Serialization) -> Manifest:
        """The model hashed with a signed serialization (cached)."""
        ignores = tuple(sorted({*(ser.ignore_paths or ()), "model.sig"}))
        key = (ser.method, ser.hash_type, ser.shard_size, ser.allow_symlinks, ignores)
        if key not in self._locals:
            self._locals[key] = compute_manifest(
                self.model,
                Serialization(
                    ser.method, ser.hash_type, ser.shard_size, ser.allow_symlinks, ignores
                ),
                workers=1,
            )
        return self._locals[key]

    def failure(self, data: bytes, what: str, problem: str) -> FuzzFailure:
        self.found.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(data).hexdigest()[:16]
        path = self.found / f"{what}-{digest}.sig"
        path.write_bytes(data)
        return FuzzFailure(f"{what}: {problem}; input kept in {path} ({data[:120]!r}...)")


def _ignored(name: str, ignores: tuple[str, ...] | None) -> bool:
    return any(name == p or name.startswith(p + "/") for p in ignores or ())


def independent_problem(manifest: Manifest) -> str | None:
    """What is wrong with an accepted manifest, checked without omsign's own code."""
    ser = manifest.serialization
    names = [item.name for item in manifest.items]
    if len(set(names)) != len(names):
        return "duplicate names"
    files = set()
    for name in names:
        path = name.rsplit(":", 2)[0] if ser.method == "shards" else name
        parts = path.split("/")
        if path.startswith("/") or "\\" in path or "\0" in path or {"", ".", ".."} & set(parts):
            return f"unsafe name {name!r}"
        files.add(path)
    expected = {n: d for n, d in MODEL_FILES.items() if not _ignored(n, ser.ignore_paths)}
    if files != set(expected):
        return f"signed files {sorted(files)} are not the model's {sorted(expected)}"
    if ser.method == "files" and ser.hash_type == "sha256":
        for item in manifest.items:
            if item.digest != hashlib.sha256(expected[item.name]).digest():
                return f"wrong digest accepted for {item.name}"
    return None


def make_target(root: Path) -> Target:
    """Writes the model, signs it with a fresh P-256 key, and hashes it once."""
    model = root / "model"
    for name, data in MODEL_FILES.items():
        (model / name).parent.mkdir(parents=True, exist_ok=True)
        (model / name).write_bytes(data)
    key = make_ec_key("P-256")
    signer = KeyBundleSigner(PemSigningKey(key))  # type: ignore[arg-type]
    import omsign

    result = omsign.sign(model, signer=signer, workers=1)
    text = (model / "model.sig").read_bytes()
    bundle = json.loads(text)
    env = bundle["dsseEnvelope"]
    ser = result.manifest.serialization
    local = compute_manifest(
        model,
        Serialization(ser.method, ser.hash_type, ser.shard_size, False, ser.ignore_paths),
        workers=1,
    )
    return Target(
        model=model,
        key=key,
        signer=signer,
        policy=KeyPolicy((key.public_key(),)),  # type: ignore[arg-type]
        bundle=bundle,
        text=text,
        payload=base64.b64decode(env["payload"]),
        signature=base64.b64decode(env["signatures"][0]["sig"]),
        local=local,
        found=Path(os.environ.get("OMSIGN_FUZZ_FOUND", tempfile.gettempdir())) / "omsign-fuzz",
    )


# --- mutations ------------------------------------------------------------------------------

INTERESTING_BYTES = [
    b'"',
    b"\\",
    b"[",
    b"]",
    b"{",
    b"}",
    b",",
    b":",
    b"0",
    b"-",
    b"e",
    b"null",
    b"true",
    b"\x00",
    b"\xff",
    b"\xc3\xa9",
    b"=",
    b"+",
    b"/",
    b"_",
    b"\\u0000",
    b"\\ud800",
    b"1e999",
]
INTERESTING_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    2**64,
    1e308,
    "",
    "x",
    "=",
    "AAAA",
    "....",
    "../x",
    "/etc",
    "a\\b",
    "\u0000",
    "x" * 5000,
    [],
    {},
    [None],
    [[[]]],
    {"a": {"b": {}}},
    [{}],
    ["AAAA"],
    {"rawBytes": "AAAA"},
    {"hint": ""},
    "application/vnd.in-toto+json",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
]


def mutate_bytes(rng: random.Random, data: bytes) -> bytes:
    """One random byte-level edit: flip, set, delete, insert, duplicate or truncate."""
    if not data:
        return rng.choice(INTERESTING_BYTES)
    i = rng.randrange(len(data))
    op = rng.randrange(6)
    if op == 0:
        return data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1 :]
    if op == 1:
        return data[:i] + bytes([rng.randrange(256)]) + data[i + 1 :]
    if op == 2:
        return data[:i] + data[i + rng.randint(1, 8) :]
    if op == 3:
        return data[:i] + rng.choice(INTERESTING_BYTES) + data[i:]
    if op == 4:
        j = min(len(data), i + rng.randint(1, 32))
        return data[:j] + data[i:j] + data[j:]
    return data[:i]


def _nodes(obj: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _nodes(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _nodes(v, (*path, i))
    return out


def _parent(obj: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        obj = obj[part]
    return obj


def mutate_structure(rng: random.Random, obj: Any) -> Any:
    """One random edit of a JSON value: replace, delete or add a member (a deep copy)."""
    obj = json.loads(json.dumps(obj))
    path = rng.choice(_nodes(obj))
    if not path:
        return rng.choice(INTERESTING_VALUES)
    parent, last = _parent(obj, path), path[-1]
    op = rng.randrange(4)
    if op == 0:
        parent[last] = rng.choice(INTERESTING_VALUES)
    elif op == 1:
        del parent[last]
    elif op == 2 and isinstance(parent, dict):
        parent[rng.choice(["x", "payload", "sig", "hint", "keyid", "name", "digest"])] = rng.choice(
            INTERESTING_VALUES
        )
    elif isinstance(parent[last], str):
        parent[last] = mutate_bytes(rng, parent[last].encode()).decode("utf-8", "replace")
    else:
        parent[last] = rng.choice(INTERESTING_VALUES)
    return obj


def encode_b64(rng: random.Random, raw: bytes) -> str:
    """Base64 in a random accepted spelling: standard or URL-safe, padded or not."""
    text = (base64.urlsafe_b64encode if rng.random() < 0.3 else base64.b64encode)(raw).decode()
    return text.rstrip("=") if rng.random() < 0.3 else text


def mutate_b64_text(rng: random.Random, text: str) -> str:
    """Edits base64 text itself: a character, the padding, or the slack bits."""
    op = rng.randrange(4)
    if op == 0 and text:
        i = rng.randrange(len(text))
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_= \n!"
        return text[:i] + rng.choice(alphabet) + text[i + 1 :]
    if op == 1:
        return text + "=" * rng.randint(1, 3)
    if op == 2:
        return text.rstrip("=")
    body = text.rstrip("=")
    if not body:
        return "A"
    return body[:-1] + chr(ord(body[-1]) ^ 1) + text[len(body) :]
