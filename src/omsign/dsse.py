"""DSSE envelopes: the pre-authentication encoding that is signed, and the envelope JSON."""

from __future__ import annotations

import base64
from typing import Any

__all__ = ["PAYLOAD_TYPE", "envelope", "legacy_pae", "pae"]

PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding: the bytes a signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def legacy_pae(payload_type: str, payload: bytes) -> bytes:
    """The malformed encoding that v0.2 signatures were made over.

    It spells ``DSSEV1`` and embeds the Python ``repr`` of the payload bytes. Accept it
    only for the deprecated ``Digests/v0.1`` predicate (design.md).
    """
    return f"DSSEV1 {len(payload_type)} {payload_type} {len(payload)} {payload!r}".encode()


def envelope(payload: bytes, signature: bytes, payload_type: str = PAYLOAD_TYPE) -> dict[str, Any]:
    """A DSSE envelope with one signature and an empty ``keyid``."""
    return {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
    }
