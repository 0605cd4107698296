"""What the predicates share: the verified result, name, digest and time checks."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omsign._json import brief
from omsign.intoto import Statement, malformed
from omsign.manifest import Manifest

__all__ = [
    "AttestationKind",
    "Predicate",
    "SignedStatement",
    "check_resource_path",
    "hex_digest",
    "parse_time",
]

_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class SignedStatement:
    """What a verified payload says.

    Attributes:
        manifest: the signed resources and serialization settings.
        subject_name: ``subject[0].name`` (informational only).
        root_digest: the subject's SHA-256 root digest (empty for the legacy format).
        legacy: true for the deprecated ``Digests/v0.1`` predicate.
        predicate_type: the statement's predicate type.
    """

    manifest: Manifest
    subject_name: str
    root_digest: bytes
    legacy: bool = False
    predicate_type: str = "https://model_signing/signature/v1.0"


@dataclass(frozen=True)
class Predicate:
    """One entry of the predicate registry.

    Attributes:
        predicate_type: the URI in ``predicateType``.
        description: how reports name the format.
        read: validates a statement with this predicate and returns what it says.
        legacy_encoding: a signature over the malformed v0.2 PAE is acceptable for
            this predicate (only the deprecated v0.2 one).
    """

    predicate_type: str
    description: str
    read: Callable[[Statement], SignedStatement]
    legacy_encoding: bool = False


def hex_digest(value: Any, size: int, where: str) -> bytes:
    """Decodes a lowercase hex digest of ``size`` bytes, or fails naming ``where``."""
    if not isinstance(value, str) or not _HEX.fullmatch(value) or len(value) != 2 * size:
        raise malformed(f"{where} is not a {size}-byte lowercase hex digest")
    return bytes.fromhex(value)


def check_resource_path(path: str, allow_dot: bool = False) -> None:
    """Rejects names that could escape or alias the model root (design.md, "Reject").

    Raises:
        MalformedSignatureError: an empty, absolute or ``..`` name, NUL or a backslash.
    """
    if allow_dot and path == ".":
        return
    if not path:
        raise malformed("a resource name is empty")
    if "\0" in path:
        raise malformed(f"resource name {brief(path)} contains NUL")
    if "\\" in path:
        raise malformed(f"resource name {brief(path)} contains a backslash")
    if path.startswith("/"):
        raise malformed(f"resource name {brief(path)} is absolute")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise malformed(f"resource name {brief(path)} has an empty, '.' or '..' component")


@dataclass(frozen=True)
class AttestationKind:
    """A predicate omsign builds and names in attestations (provenance, scan, ...).

    Attributes:
        name: the short name (``provenance``), accepted wherever a type is asked for.
        predicate_type: the URI in ``predicateType``.
        description: how reports name it.
        check: validates a verified predicate, raising ``MalformedSignatureError``
            naming what is wrong (None: any JSON object).
        claimed_time: the time the predicate says its event happened, if it says one.
        expires: when the predicate says it stops holding, if it says so.
    """

    name: str
    predicate_type: str
    description: str
    check: Callable[[dict[str, Any]], None] | None = None
    claimed_time: Callable[[dict[str, Any]], dt.datetime | None] | None = None
    expires: Callable[[dict[str, Any]], dt.datetime | None] | None = None


def parse_time(value: Any, where: str) -> dt.datetime | None:
    """An RFC 3339 time from a predicate, aware UTC; None when absent.

    Raises:
        MalformedSignatureError: present but not an RFC 3339 time with a zone.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise malformed(f"{where} is not a time")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise malformed(f"{where} is not an RFC 3339 time: {brief(value)}") from None
    if parsed.tzinfo is None:
        raise malformed(f"{where} has no time zone: {brief(value)}")
    return parsed.astimezone(dt.timezone.utc)
