"""A Rekor v1-compatible transparency log kept in memory.

Accepts ``dsse`` v0.0.1 entries (what Sigstore clients submit for DSSE
envelopes), checks the envelope signature against the submitted certificate,
stores the canonical entry body, and answers with what Rekor v1 returns: log
index, integrated time, signed entry timestamp, and an RFC 6962 inclusion proof
with a signed checkpoint.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ._pki import RequestRejected, key_id


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _subtree_hash(leaves: list[bytes]) -> bytes:
    """RFC 6962 2.1 MTH over leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = _largest_power_of_two_below(len(leaves))
    return _node_hash(_subtree_hash(leaves[:k]), _subtree_hash(leaves[k:]))


def _audit_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 2.1.1 PATH(m, D[n]), lowest level first."""
    if len(leaves) <= 1:
        return []
    k = _largest_power_of_two_below(len(leaves))
    if index < k:
        return [*_audit_path(index, leaves[:k]), _subtree_hash(leaves[k:])]
    return [*_audit_path(index - k, leaves[k:]), _subtree_hash(leaves[:k])]


def _pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def _canonical(obj: object) -> bytes:
    # RFC 8785 for the values used here (ASCII strings, integers, no floats).
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class TransparencyLog:
    """An append-only Merkle log signed with one ECDSA P-256 key."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, origin: str) -> None:
        self._key = key
        self._origin = origin
        self._log_id = key_id(key.public_key())
        self._leaves: list[bytes] = []
        self._entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def log_id(self) -> bytes:
        """SHA-256 of the log's public key."""
        return self._log_id

    def _sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def _checkpoint(self, size: int, root: bytes) -> str:
        note = f"{self._origin}\n{size}\n{base64.b64encode(root).decode()}\n"
        signature = base64.b64encode(self._log_id[:4] + self._sign(note.encode())).decode()
        return f"{note}\n\u2014 rekor.local {signature}\n"

    def add(self, proposed: dict[str, Any]) -> dict[str, Any]:
        """Validates and integrates a proposed entry; returns Rekor's response.

        Raises:
            RequestRejected: unsupported kind, malformed content, bad signature.
        """
        body = _canonical_dsse_body(proposed)
        uuid = hashlib.sha256(body).hexdigest()
        with self._lock:
            if uuid in self._entries:
                raise RequestRejected("an equivalent entry already exists in the log")
            index = len(self._leaves)
            self._leaves.append(_leaf_hash(body))
            leaves = list(self._leaves)
            integrated_time = int(time.time())
            body_b64 = base64.b64encode(body).decode()
            promise = {
                "body": body_b64,
                "integratedTime": integrated_time,
                "logID": self._log_id.hex(),
                "logIndex": index,
            }
            root = _subtree_hash(leaves)
            entry = {
                **promise,
                "verification": {
                    "signedEntryTimestamp": base64.b64encode(
                        self._sign(_canonical(promise))
                    ).decode(),
                    "inclusionProof": {
                        "logIndex": index,
                        "treeSize": len(leaves),
                        "rootHash": root.hex(),
                        "hashes": [h.hex() for h in _audit_path(index, leaves)],
                        "checkpoint": self._checkpoint(len(leaves), root),
                    },
                },
            }
            self._entries[uuid] = entry
        return {uuid: entry}

    def get(self, uuid: str) -> dict[str, Any] | None:
        """Returns a stored entry by UUID, in Rekor's response form."""
        entry = self._entries.get(uuid)
        return None if entry is None else {uuid: entry}

    def info(self) -> dict[str, Any]:
        """Returns the log's current size, root hash and signed tree head."""
        with self._lock:
            leaves = list(self._leaves)
        root = _subtree_hash(leaves) if leaves else hashlib.sha256(b"").digest()
        return {
            "rootHash": root.hex(),
            "treeSize": len(leaves),
            "signedTreeHead": self._checkpoint(len(leaves), root),
            "treeID": self._origin.rsplit(" ", 1)[-1],
        }


def _canonical_dsse_body(proposed: dict[str, Any]) -> bytes:
    """Checks a ``dsse`` v0.0.1 proposal and returns its canonical stored body."""
    if proposed.get("kind") != "dsse" or proposed.get("apiVersion") != "0.0.1":
        raise RequestRejected(
            f"unsupported entry kind {proposed.get('kind')}/{proposed.get('apiVersion')}"
        )
    try:
        content = proposed["spec"]["proposedContent"]
        envelope_text: str = content["envelope"]
        verifiers: list[str] = content["verifiers"]
        envelope = json.loads(envelope_text)
        payload = base64.b64decode(envelope["payload"], validate=True)
        payload_type: str = envelope["payloadType"]
        certs = [x509.load_pem_x509_certificate(base64.b64decode(v)) for v in verifiers]
        signatures = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise RequestRejected(f"malformed dsse proposal: {exc}") from exc
    if not signatures or not certs:
        raise RequestRejected("dsse proposal has no signature or no verifier")
    stored = []
    for signature in signatures:
        for cert, verifier in zip(certs, verifiers, strict=True):
            key = cert.public_key()
            if not isinstance(key, ec.EllipticCurvePublicKey):
                continue
            try:
                key.verify(signature, _pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                continue
            stored.append({"signature": base64.b64encode(signature).decode(), "verifier": verifier})
            break
        else:
            raise RequestRejected("dsse envelope signature does not verify with any verifier")
    body = {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {
                "algorithm": "sha256",
                "value": hashlib.sha256(envelope_text.encode()).hexdigest(),
            },
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": stored,
        },
    }
    return _canonical(body)
