"""Strict, bounded JSON for untrusted documents (bundles and statements).

:func:`check_shape` bounds the number of values and the nesting depth in linear
time without building anything; :func:`load_json` then parses strictly: UTF-8
only, no duplicate keys, no ``NaN`` or ``Infinity``.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["DuplicateKeyError", "ShapeError", "brief", "check_shape", "load_json"]

_STRINGS = re.compile(rb'"[^"]*"?')  # an unterminated string runs to the end
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKETS = bytes.maketrans(b"{}", b"[]")


class ShapeError(ValueError):
    """A JSON text has too many values, nests too deeply, or closes what it never opened."""


def brief(value: Any) -> str:
    """A short repr of an untrusted value, for one-line messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_shape(data: bytes, *, max_values: int, max_depth: int) -> None:
    """Bounds the number of JSON values and the nesting depth, in linear time, unparsed.

    Counts arrays, objects and commas outside strings; nothing is built.

    Raises:
        ShapeError: more than ``max_values`` values, deeper than ``max_depth``, or
            unbalanced brackets (the message says which).
    """
    # Escapes go first (pairs of backslashes, then escaped quotes), so strings hold no
    # quote and one C-speed pass removes them; brackets in strings are not structure.
    bare = _STRINGS.sub(b"", data.replace(b"\\\\", b"").replace(b'\\"', b""))
    brackets = bare.translate(_BRACKETS, _NOT_BRACKETS)
    if len(brackets) + bare.count(b",") > max_values:
        raise ShapeError(f"more than {max_values} JSON values")
    depth = 0
    for byte in brackets:  # at most max_values
        depth += 1 if byte == 0x5B else -1
        if depth > max_depth:
            raise ShapeError(f"JSON nested deeper than {max_depth} levels")
        if depth < 0:
            raise ShapeError("not valid UTF-8 JSON")


class _DuplicateKeyError(ValueError):
    pass


class DuplicateKeyError(ValueError):
    """A JSON object repeats a key (the message names it)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return obj


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json(data: bytes | str) -> Any:
    """Strict JSON: UTF-8 only, no duplicate keys, no ``NaN`` or ``Infinity``.

    Raises:
        DuplicateKeyError: an object repeats a key (the message names it).
        ValueError: not such JSON.
        RecursionError: nested too deeply for the parser.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except _DuplicateKeyError as exc:
        raise DuplicateKeyError(f"duplicate key {brief(exc.args[0])}") from None
