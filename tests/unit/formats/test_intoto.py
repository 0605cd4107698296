"""The in-toto Statement v1 layer: strict, bounded parsing and deterministic encoding."""

from __future__ import annotations

import json

import pytest

from omsign import intoto
from omsign.errors import MalformedSignatureError
from omsign.intoto import STATEMENT_TYPE, Statement, Subject

DIGEST = {"sha256": "ab" * 32}


def payload(**fields: object) -> bytes:
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "model", "digest": DIGEST}],
        "predicateType": "https://example.com/p/v1",
        "predicate": {"k": 1},
    }
    statement.update(fields)
    return json.dumps(statement).encode()


def test_a_statement_parses_into_subjects_type_and_predicate() -> None:
    parsed = intoto.parse(payload())
    assert parsed == Statement((Subject("model", DIGEST),), "https://example.com/p/v1", {"k": 1})


def test_encoding_is_deterministic_and_parses_back() -> None:
    statement = Statement(
        (Subject("b", {"sha256": "00" * 32}, {"x": "y"}), Subject("a", DIGEST)),
        "https://example.com/p/v1",
        {"z": [1, 2], "a": "ü"},
    )
    encoded = intoto.encode(statement)
    assert encoded == intoto.encode(statement)
    assert b" " not in encoded
    assert "ü".encode() in encoded  # UTF-8, not \\u escapes
    assert intoto.parse(encoded) == statement


def test_a_statement_without_predicate_has_none() -> None:
    data = json.loads(payload())
    del data["predicate"]
    assert intoto.parse(json.dumps(data).encode()).predicate is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[]", "not a JSON object"),
        (b"\xff", "not valid UTF-8 JSON"),
        (b'{"a": NaN}', "not valid UTF-8 JSON"),
        (b'{"_type": 1, "_type": 2}', "duplicate key '_type'"),
        (payload(_type="https://in-toto.io/Statement/v0.1"), "unsupported statement type"),
        (payload(subject={"name": "m"}), r"statement\.subject has the wrong type"),
        (payload(subject=[{"name": 1, "digest": DIGEST}]), r"subject\[0\]\.name"),
        (payload(subject=[{"name": "m"}]), r"subject\[0\] has no 'digest'"),
        (payload(subject=["m"]), r"subject\[0\] is not an object"),
        (payload(predicateType=None), "unsupported predicate type"),
        (payload(predicate=[1]), "predicate has the wrong type"),
    ],
)
def test_malformed_statements_are_rejected(data: bytes, message: str) -> None:
    with pytest.raises(MalformedSignatureError, match=message):
        intoto.parse(data)


def test_deep_nesting_is_rejected_before_parsing() -> None:
    deep = b'{"_type": ' + b"[" * (intoto.MAX_DEPTH + 1) + b"]" * (intoto.MAX_DEPTH + 1) + b"}"
    with pytest.raises(MalformedSignatureError, match="nested deeper"):
        intoto.parse(deep)


def test_too_many_values_are_rejected_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intoto, "MAX_VALUES", 10)
    many = payload(predicate={"list": list(range(20))})
    with pytest.raises(MalformedSignatureError, match="more than 10 JSON values"):
        intoto.parse(many)
