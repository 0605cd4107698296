"""in-toto Statement v1: the envelope every predicate travels in, whatever it says.

:func:`parse` reads an authenticated payload: strict JSON within bounds, the
statement type, subjects (a name and a digest map each), the predicate type and
the predicate object. What the predicate means is for :mod:`omsign.predicates`.
:func:`encode` writes deterministic bytes: sorted keys, no whitespace, UTF-8.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omsign._json import DuplicateKeyError, ShapeError, brief, check_shape, load_json
from omsign.errors import MalformedSignatureError

__all__ = [
    "MAX_DEPTH",
    "MAX_VALUES",
    "STATEMENT_TYPE",
    "Statement",
    "Subject",
    "encode",
    "get_field",
    "malformed",
    "parse",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
# Bounds checked before parsing, in linear time. A statement lists one object per
# signed file or shard (a few values each): 8 million values is over a million files.
MAX_VALUES = 8_000_000
MAX_DEPTH = 64


@dataclass(frozen=True)
class Subject:
    """One subject: a name and its digests.

    Attributes:
        name: the subject's name (for OMS, the model's name).
        digest: algorithm name -> lowercase hex digest, as written.
        annotations: the optional ``annotations`` object, unvalidated.
    """

    name: str
    digest: Mapping[str, str]
    annotations: Any = None


@dataclass(frozen=True)
class Statement:
    """An in-toto Statement v1.

    Attributes:
        subjects: what the statement is about.
        predicate_type: the URI naming the predicate's schema.
        predicate: the predicate object (JSON), read by the predicate's own module;
            None when the statement has none.
    """

    subjects: tuple[Subject, ...]
    predicate_type: str
    predicate: dict[str, Any] | None = None


def malformed(what: str) -> MalformedSignatureError:
    """The error for a statement that breaks its schema."""
    return MalformedSignatureError(f"malformed statement: {what}")


def get_field(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``obj[key]``, checked: ``obj`` is an object holding ``key`` of type ``kind``.

    A boolean is not an integer here unless ``kind`` names ``bool``.

    Raises:
        MalformedSignatureError: naming ``where`` and what is wrong.
    """
    if not isinstance(obj, dict):
        raise malformed(f"{where} is not an object")
    if key not in obj:
        raise malformed(f"{where} has no {key!r}")
    value = obj[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise malformed(f"{where}.{key} has the wrong type")
    return value


def _load(payload: bytes) -> Any:
    try:
        check_shape(payload, max_values=MAX_VALUES, max_depth=MAX_DEPTH)
        return load_json(payload)
    except ShapeError as exc:
        raise malformed(f"payload has {exc}") from None
    except DuplicateKeyError as exc:
        raise malformed(f"payload has a {exc}") from None
    except ValueError:
        raise malformed("payload is not valid UTF-8 JSON") from None
    except RecursionError:
        raise malformed("payload is nested too deeply") from None


def _subject(raw: Any, index: int) -> Subject:
    where = f"subject[{index}]"
    name = get_field(raw, "name", str, where)
    digest = get_field(raw, "digest", dict, where)
    return Subject(name, digest, raw.get("annotations"))


def parse(payload: bytes) -> Statement:
    """Parses a statement's bytes (call it only on a payload whose signature verified).

    Raises:
        MalformedSignatureError: not bounded, strict JSON; not an object; another
            statement type; subjects, predicate type or predicate of the wrong type.
    """
    statement = _load(payload)
    if not isinstance(statement, dict):
        raise malformed("payload is not a JSON object")
    if statement.get("_type") != STATEMENT_TYPE:
        raise MalformedSignatureError(f"unsupported statement type {brief(statement.get('_type'))}")
    subjects = get_field(statement, "subject", list, "statement")
    predicate_type = statement.get("predicateType")
    if not isinstance(predicate_type, str):
        raise MalformedSignatureError(f"unsupported predicate type {brief(predicate_type)}")
    predicate = statement.get("predicate")
    if predicate is not None and not isinstance(predicate, dict):
        raise malformed("statement.predicate has the wrong type")
    return Statement(
        tuple(_subject(s, i) for i, s in enumerate(subjects)), predicate_type, predicate
    )


def encode(statement: Statement) -> bytes:
    """The statement's bytes: deterministic (sorted keys, no whitespace, UTF-8)."""
    subjects = []
    for subject in statement.subjects:
        entry: dict[str, Any] = {"name": subject.name, "digest": dict(subject.digest)}
        if subject.annotations is not None:
            entry["annotations"] = subject.annotations
        subjects.append(entry)
    document: dict[str, Any] = {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": statement.predicate_type,
    }
    if statement.predicate is not None:
        document["predicate"] = statement.predicate
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode()
