"""The predicate registry, and the rule that the legacy encoding is for the v0.2 predicate."""

from __future__ import annotations

import hashlib
import json

import pytest

from omsign.errors import MalformedSignatureError, SignatureError
from omsign.manifest import Manifest, ManifestItem, Serialization
from omsign.predicates import (
    LEGACY_PREDICATE_TYPE,
    PREDICATE_TYPE,
    encode_statement,
    find_predicate,
    parse_statement,
)

A = hashlib.sha256(b"a").digest()
OMS = encode_statement(Manifest((ManifestItem("a", A),), Serialization()), "model")
LEGACY = json.dumps(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "a", "digest": {"sha256": A.hex()}}],
        "predicateType": LEGACY_PREDICATE_TYPE,
        "predicate": {},
    }
).encode()


def test_the_registry_holds_oms_v1_and_the_legacy_predicate() -> None:
    oms, legacy = find_predicate(PREDICATE_TYPE), find_predicate(LEGACY_PREDICATE_TYPE)
    assert oms is not None
    assert legacy is not None
    assert (oms.description, oms.legacy_encoding) == ("OMS v1.0", False)
    assert legacy.legacy_encoding
    assert find_predicate("https://slsa.dev/provenance/v1") is None


def test_a_standard_signature_is_accepted_for_both_predicates() -> None:
    assert not parse_statement(OMS).legacy
    assert parse_statement(LEGACY).legacy


def test_a_legacy_encoded_signature_is_accepted_for_the_v0_2_predicate() -> None:
    signed = parse_statement(LEGACY, legacy_encoding=True)
    assert signed.legacy
    assert signed.predicate_type == LEGACY_PREDICATE_TYPE
    assert signed.manifest.items == (ManifestItem("a", A),)


def test_a_legacy_encoded_signature_over_an_oms_v1_predicate_is_rejected() -> None:
    with pytest.raises(SignatureError, match=r"^model\.sig: .*legacy v0\.2 encoding.*OMS v1\.0"):
        parse_statement(OMS, "model.sig", legacy_encoding=True)


def test_an_unregistered_predicate_is_rejected_naming_the_file() -> None:
    other = OMS.replace(PREDICATE_TYPE.encode(), b"https://example.com/p")
    with pytest.raises(MalformedSignatureError, match=r"^m\.sig: unsupported predicate type"):
        parse_statement(other, "m.sig")
