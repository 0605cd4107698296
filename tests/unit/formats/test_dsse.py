"""DSSE encodings: the streamed digests equal the digests of the encodings built whole."""

from __future__ import annotations

import hashlib
import random

import pytest
from cryptography.hazmat.primitives import hashes

from omsign.backends._dsse_sig import PaeDigests
from omsign.dsse import _CHUNK as CHUNK
from omsign.dsse import PAYLOAD_TYPE, legacy_pae, legacy_pae_pieces, pae

_rng = random.Random(7)
PAYLOADS = [
    b"",
    b'{"a": "b"}',
    b"it's",  # a single quote and no double quote: repr switches to double quotes
    b'it\'s "quoted"',  # both: single quotes, the single one escaped
    b"\\ \t\n\r\x00\x7f\x80\xff",
    bytes(range(256)) * 3,
    bytes(_rng.randrange(256) for _ in range(5000)),
    b"'" + b"x" * (CHUNK + 10),  # the quote decided by a byte in another chunk
    b"x" * (2 * CHUNK) + b"'",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_legacy_pieces_join_to_the_legacy_encoding(payload: bytes) -> None:
    assert b"".join(legacy_pae_pieces(PAYLOAD_TYPE, payload)) == legacy_pae(PAYLOAD_TYPE, payload)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_streamed_digests_equal_the_digests_of_the_built_encodings(payload: bytes) -> None:
    digests = PaeDigests(PAYLOAD_TYPE, payload)
    assert digests.legacy() == hashlib.sha256(legacy_pae(PAYLOAD_TYPE, payload)).digest()
    for algorithm in (hashes.SHA256(), hashes.SHA384(), hashes.SHA512()):
        expected = hashlib.new(algorithm.name, pae(PAYLOAD_TYPE, payload)).digest()
        assert digests.standard(algorithm) == expected
