"""DSSE envelopes: the pre-authentication encoding that is signed, and the envelope JSON."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

__all__ = ["PAYLOAD_TYPE", "envelope", "legacy_pae", "legacy_pae_pieces", "pae", "pae_header"]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
_CHUNK = 1 << 20
# Bytes that repr() writes as they are inside b'...' or b"..." (printable ASCII but the
# backslash and the quote).
_PRINTABLE = bytes(range(0x20, 0x7F)).replace(b"\\", b"")
_VERBATIM_IN_SINGLE = _PRINTABLE.replace(b"'", b"")
_VERBATIM_IN_DOUBLE = _PRINTABLE.replace(b'"', b"")


def pae_header(payload_type: str, payload_size: int) -> bytes:
    """The bytes of the DSSE v1 PAE that come before the payload."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d " % (len(kind), kind, payload_size)


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding: the bytes a signature covers."""
    return pae_header(payload_type, len(payload)) + payload


def legacy_pae(payload_type: str, payload: bytes) -> bytes:
    """The malformed encoding that v0.2 signatures were made over.

    It spells ``DSSEV1`` and embeds the Python ``repr`` of the payload bytes. Accept it
    only for the deprecated ``Digests/v0.1`` predicate (design.md).
    """
    return f"DSSEV1 {len(payload_type)} {payload_type} {len(payload)} {payload!r}".encode()


def legacy_pae_pieces(payload_type: str, payload: bytes) -> Iterator[bytes]:
    """:func:`legacy_pae` in pieces of about a MiB, for hashing without building it.

    ``repr`` escapes each byte on its own; only the quote character depends on the
    whole payload (double quotes when it holds ``'`` and no ``"``). A chunk that
    ``repr`` would not change is given as it is; any other is prefixed with the other
    quote so that ``repr`` picks the same quotes for it as for the whole payload.
    """
    double = b"'" in payload and b'"' not in payload
    quote, other = (b'"', b"'") if double else (b"'", b'"')
    verbatim = _VERBATIM_IN_DOUBLE if double else _VERBATIM_IN_SINGLE
    yield f"DSSEV1 {len(payload_type)} {payload_type} {len(payload)} b".encode() + quote
    for start in range(0, len(payload), _CHUNK):
        chunk = payload[start : start + _CHUNK]
        yield chunk if not chunk.translate(None, verbatim) else repr(other + chunk)[3:-1].encode()
    yield quote


def envelope(payload: bytes, signature: bytes, payload_type: str = PAYLOAD_TYPE) -> dict[str, Any]:
    """A DSSE envelope with one signature and an empty ``keyid``."""
    return {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": payload_type,
        "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
    }
