"""PKCS#11 URIs (RFC 7512) and the PIN they point to.

:func:`parse_pkcs11_uri` turns ``pkcs11:token=t;object=k?module-name=softhsm2``
into a frozen :class:`Pkcs11Uri`; :func:`resolve_pin` finds the user PIN from
the URI's ``pin-source`` or ``pin-value``, the environment, or a prompt.
Neither loads a module or opens a session.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from omsign.errors import KeyLoadError, UsageError

__all__ = [
    "MODULE_ENV",
    "PIN_ENV",
    "Pkcs11Uri",
    "parse_pkcs11_uri",
    "resolve_pin",
]

MODULE_ENV = "OMSIGN_PKCS11_MODULE"
PIN_ENV = "OMSIGN_PKCS11_PIN"
_log = logging.getLogger(__name__)

# RFC 7512 section 2.3: path attributes (string valued unless noted).
_PATH_ATTRIBUTES = frozenset(
    {
        "token",
        "manufacturer",
        "serial",
        "model",
        "library-manufacturer",
        "library-description",
        "library-version",
        "slot-id",
        "slot-description",
        "slot-manufacturer",
        "id",
        "object",
        "type",
    }
)
_QUERY_ATTRIBUTES = frozenset({"module-path", "module-name", "pin-source", "pin-value"})
_OBJECT_TYPES = frozenset({"public", "private", "cert", "secret-key", "data"})
# RFC 7512 pk11-pchar and pk11-qchar (plus '/' in the path, which tools write unescaped);
# anything else, such as a bare '%' or a space, is malformed.
_PATH_VALUE = re.compile(r"(?:[A-Za-z0-9\-._~:\[\]@!$'()*+,=&/]|%[0-9A-Fa-f]{2})*")
_QUERY_VALUE = re.compile(r"(?:[A-Za-z0-9\-._~:\[\]@!$'()*+,;/?]|%[0-9A-Fa-f]{2})*")


@dataclass(frozen=True)
class Pkcs11Uri:
    """The parts of a ``pkcs11:`` URI that select a module, token, key and PIN.

    Attributes that the URI leaves out are ``None``; ``None`` matches anything.
    """

    token: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    model: str | None = None
    library_manufacturer: str | None = None
    library_description: str | None = None
    library_version: str | None = None
    slot_id: int | None = None
    slot_description: str | None = None
    slot_manufacturer: str | None = None
    id: bytes | None = None
    object: str | None = None
    type: str | None = None
    module_path: str | None = None
    module_name: str | None = None
    pin_source: str | None = None
    pin_value: str | None = None

    def describe_token(self) -> str:
        """Returns the token-selecting attributes as ``token='x', serial='y'`` for messages."""
        parts = [
            f"{name}={value!r}"
            for name, value in (
                ("token", self.token),
                ("serial", self.serial),
                ("slot-id", self.slot_id),
                ("manufacturer", self.manufacturer),
                ("model", self.model),
            )
            if value is not None
        ]
        return ", ".join(parts) or "any token"

    def describe_key(self) -> str:
        """Returns the key-selecting attributes as ``object='k', id=01`` for messages."""
        parts = []
        if self.object is not None:
            parts.append(f"object={self.object!r}")
        if self.id is not None:
            parts.append(f"id={self.id.hex()}")
        return ", ".join(parts) or "any key"


def _decode(name: str, raw: str, pattern: re.Pattern[str], uri: str) -> bytes:
    if not pattern.fullmatch(raw):
        raise UsageError(f"malformed PKCS#11 URI {uri!r}: bad character or escape in {name}=")
    return unquote_to_bytes(raw)


def _text(name: str, value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"PKCS#11 URI attribute {name} is not UTF-8 text") from None


def _split(part: str, sep: str, pattern: re.Pattern[str], uri: str) -> dict[str, bytes]:
    values: dict[str, bytes] = {}
    if not part:
        return values
    for item in part.split(sep):
        name, eq, raw = item.partition("=")
        if not eq or not name:
            raise UsageError(f"malformed PKCS#11 URI {uri!r}: expected name=value, got {item!r}")
        if name in values:
            raise UsageError(f"malformed PKCS#11 URI {uri!r}: {name} given twice")
        values[name] = _decode(name, raw, pattern, uri)
    return values


def parse_pkcs11_uri(uri: str) -> Pkcs11Uri:
    """Parses an RFC 7512 ``pkcs11:`` URI.

    Args:
        uri: the URI, e.g. ``pkcs11:token=ci;id=%01?module-name=softhsm2&pin-source=pin.txt``.

    Returns:
        The decoded attributes.

    Raises:
        UsageError: the URI is malformed, repeats or does not know an attribute,
            or gives contradictory options.
    """
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.lower() != "pkcs11":
        raise UsageError(f"not a PKCS#11 URI (must start with 'pkcs11:'): {uri!r}")
    if "#" in rest:
        raise UsageError(f"malformed PKCS#11 URI {uri!r}: fragments are not allowed")
    path, _, query = rest.partition("?")
    path_values = _split(path, ";", _PATH_VALUE, uri)
    query_values = _split(query, "&", _QUERY_VALUE, uri)
    for names, known, where in (
        (path_values, _PATH_ATTRIBUTES, "path"),
        (query_values, _QUERY_ATTRIBUTES, "query"),
    ):
        unknown = sorted(set(names) - known)
        if unknown:
            raise UsageError(
                f"unknown PKCS#11 URI {where} attribute {unknown[0]!r}; "
                f"known: {', '.join(sorted(known))}"
            )
    fields: dict[str, object] = {
        name.replace("-", "_"): _text(name, value)
        for name, value in (path_values | query_values).items()
        if name not in ("id", "slot-id")
    }
    if "id" in path_values:
        if not path_values["id"]:
            raise UsageError(f"malformed PKCS#11 URI {uri!r}: id= is empty")
        fields["id"] = path_values["id"]
    if "slot-id" in path_values:
        slot = _text("slot-id", path_values["slot-id"])
        if not slot.isdigit() or not slot.isascii():
            raise UsageError(f"PKCS#11 URI slot-id must be a decimal number, got {slot!r}")
        fields["slot_id"] = int(slot)
    parsed = Pkcs11Uri(**fields)  # type: ignore[arg-type]
    _check_consistent(parsed)
    return parsed


def _check_consistent(parsed: Pkcs11Uri) -> None:
    if parsed.type is not None and parsed.type not in _OBJECT_TYPES:
        raise UsageError(
            f"PKCS#11 URI type must be one of {', '.join(sorted(_OBJECT_TYPES))}, "
            f"got {parsed.type!r}"
        )
    if parsed.pin_source is not None and parsed.pin_value is not None:
        raise UsageError("PKCS#11 URI gives both pin-source and pin-value; keep one")
    if parsed.module_path is not None and parsed.module_name is not None:
        raise UsageError("PKCS#11 URI gives both module-path and module-name; keep one")
    if parsed.module_name is not None and (
        not parsed.module_name or "/" in parsed.module_name or "\\" in parsed.module_name
    ):
        raise UsageError(
            f"PKCS#11 URI module-name must be a bare library name (use module-path for a "
            f"path), got {parsed.module_name!r}"
        )


def _read_pin_file(source: str) -> bytes:
    path = source
    if source.lower().startswith("file:"):
        parts = urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"pin-source must be a local file, got {source!r}")
        path = unquote(parts.path)
    try:
        pin = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise KeyLoadError(f"cannot read the PKCS#11 PIN file {path}: {exc.strerror}") from None
    return pin.removesuffix(b"\n").removesuffix(b"\r")


def resolve_pin(
    uri: Pkcs11Uri, token_label: str, password_source: Callable[[str], bytes | None]
) -> bytes:
    """Returns the user PIN for a token, from the first place that has one.

    In order: ``pin-source`` (a path or ``file:`` URI; one trailing newline is
    dropped), ``pin-value`` (logs a warning on this module's logger, since the
    PIN then ends up in shell history), ``OMSIGN_PKCS11_PIN``, the password source.

    Args:
        uri: the parsed URI.
        token_label: the token's label, for the prompt and messages.
        password_source: asked last, with a prompt; returns None if it cannot ask.

    Raises:
        UsageError: ``pin-source`` is a remote URI.
        KeyLoadError: the PIN file cannot be read or no PIN is available.
    """
    if uri.pin_source is not None:
        return _read_pin_file(uri.pin_source)
    if uri.pin_value is not None:
        _log.warning(
            "the PKCS#11 URI holds the PIN (pin-value=), which ends up in shell "
            "history and process lists; use pin-source=FILE or %s instead",
            PIN_ENV,
        )
        return uri.pin_value.encode("utf-8")
    from_env = os.environ.get(PIN_ENV)
    if from_env:
        return from_env.encode("utf-8")
    pin = password_source(f"PIN for token {token_label}: ")
    if pin is None:
        raise KeyLoadError(
            f"PKCS#11 token {token_label!r} needs a PIN: add pin-source=FILE to the URI "
            f"or set {PIN_ENV}"
        )
    return pin
