"""PKCS#11 URIs (RFC 7512) and what their query attributes point to.

:func:`parse_pkcs11_uri` turns ``pkcs11:token=t;object=k?module-name=softhsm2``
into a frozen :class:`Pkcs11Uri`; :func:`find_module` turns the URI's
``module-path`` or ``module-name`` (or the ``OMSIGN_PKCS11_MODULE`` variable)
into the path of a shared library; :func:`select_slot` matches the URI's token
attributes against the tokens a loaded module reports; :func:`resolve_pin`
finds the user PIN. None of them opens a session.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import sys
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from omsign.errors import KeyLoadError, UsageError

__all__ = [
    "MODULE_ENV",
    "PIN_ENV",
    "Pkcs11Uri",
    "find_module",
    "module_search_dirs",
    "parse_pkcs11_uri",
    "resolve_pin",
    "select_slot",
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
_LIBRARY_SUFFIX = re.compile(r"\.(?:so|dylib)(?:\.[0-9]+)*$")


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


def select_slot(p11: ModuleType, lib: Any, uri: Pkcs11Uri, module: str) -> tuple[int, str]:
    """Returns the slot id and label of the one initialised token the URI selects.

    Args:
        p11: the PyKCS11 module.
        lib: a loaded ``PyKCS11.PyKCS11Lib``.
        uri: the parsed URI; its library, slot and token attributes must all match.
        module: the module path, for messages.

    Raises:
        KeyLoadError: no token or several tokens match.
    """
    info = lib.getInfo()
    library = {
        "library-manufacturer": (uri.library_manufacturer, info.manufacturerID),
        "library-description": (uri.library_description, info.libraryDescription),
        "library-version": (uri.library_version, "{}.{}".format(*info.libraryVersion)),
    }
    if uri.library_version is not None and "." not in uri.library_version:
        library["library-version"] = (uri.library_version, str(info.libraryVersion[0]))
    for name, (wanted, actual) in library.items():
        if wanted is not None and wanted != actual.strip():
            raise KeyLoadError(
                f"PKCS#11 module {module} has {name} {actual.strip()!r}, not {wanted!r}"
            )
    found: list[str] = []
    matches: list[tuple[int, str]] = []
    for slot in lib.getSlotList(tokenPresent=True):
        token = lib.getTokenInfo(slot)
        if not token.flags & p11.CKF_TOKEN_INITIALIZED:
            continue
        label = token.label.strip()
        found.append(repr(label))
        checks = [
            (uri.slot_id, slot),
            (uri.token, label),
            (uri.manufacturer, token.manufacturerID.strip()),
            (uri.serial, token.serialNumber.strip()),
            (uri.model, token.model.strip()),
        ]
        if uri.slot_description is not None or uri.slot_manufacturer is not None:
            slot_info = lib.getSlotInfo(slot)
            checks += [
                (uri.slot_description, slot_info.slotDescription.strip()),
                (uri.slot_manufacturer, slot_info.manufacturerID.strip()),
            ]
        if all(wanted is None or wanted == actual for wanted, actual in checks):
            matches.append((slot, label))
    if not matches:
        raise KeyLoadError(
            f"no PKCS#11 token matches {uri.describe_token()} in {module} "
            f"(tokens: {', '.join(found) or 'none'})"
        )
    if len(matches) > 1:
        raise KeyLoadError(
            f"{len(matches)} PKCS#11 tokens match {uri.describe_token()} in {module} "
            f"({', '.join(repr(label) for _, label in matches)}); "
            "add token=, serial= or slot-id= to the URI"
        )
    return matches[0]


def _multiarch() -> list[str]:
    triplets = []
    configured = sysconfig.get_config_var("MULTIARCH")
    if isinstance(configured, str) and configured:
        triplets.append(configured)
    machine = platform.machine()
    if machine:
        guess = f"{machine}-linux-gnu"
        if guess not in triplets:
            triplets.append(guess)
    return triplets


def module_search_dirs() -> list[Path]:
    """Returns the directories searched for a ``module-name``, most specific first.

    Covers Debian and Ubuntu (multiarch and ``/usr/lib``), Fedora and RHEL
    (``/usr/lib64``), and macOS (``/usr/local/lib``, ``/opt/homebrew/lib``).
    """
    dirs: list[str] = []
    for triplet in _multiarch():
        dirs += [f"/usr/lib/{triplet}/pkcs11", f"/usr/lib/{triplet}/softhsm", f"/usr/lib/{triplet}"]
    dirs += ["/usr/lib64/pkcs11", "/usr/lib64", "/usr/lib64/softhsm"]
    dirs += ["/usr/lib/pkcs11", "/usr/lib/softhsm", "/usr/lib"]
    dirs += ["/usr/local/lib/pkcs11", "/usr/local/lib/softhsm", "/usr/local/lib"]
    dirs += ["/opt/homebrew/lib/pkcs11", "/opt/homebrew/lib/softhsm", "/opt/homebrew/lib"]
    return [Path(d) for d in dirs]


def _candidate_names(name: str) -> list[str]:
    stems = [name] if name.startswith("lib") else [name, f"lib{name}"]
    if _LIBRARY_SUFFIX.search(name):
        return stems
    suffixes = [".dylib", ".so"] if sys.platform == "darwin" else [".so", ".dylib"]
    return [stem + suffix for stem in stems for suffix in suffixes]


def find_module(
    uri: Pkcs11Uri,
    *,
    search_dirs: Sequence[Path] | None = None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """Finds the PKCS#11 module (shared library) a URI asks for.

    Looks at ``module-path``, else ``module-name`` (with or without the ``lib``
    prefix and ``.so``/``.dylib`` suffix) in :func:`module_search_dirs`, else the
    ``OMSIGN_PKCS11_MODULE`` environment variable.

    Args:
        uri: the parsed URI.
        search_dirs: directories to search for ``module-name`` instead of the usual ones.
        environ: the environment to read ``OMSIGN_PKCS11_MODULE`` from (default ``os.environ``).

    Returns:
        The absolute, resolved path of the module.

    Raises:
        UsageError: the URI names no module and the environment variable is not set.
        KeyLoadError: the named module does not exist.
    """
    env = os.environ if environ is None else environ
    if uri.module_path is not None:
        return _existing(uri.module_path, "module-path")
    if uri.module_name is not None:
        dirs = module_search_dirs() if search_dirs is None else list(search_dirs)
        for directory in dirs:
            for candidate in _candidate_names(uri.module_name):
                path = directory / candidate
                if path.is_file():
                    return str(path.resolve())
        raise KeyLoadError(
            f"PKCS#11 module {uri.module_name!r} not found in {', '.join(map(str, dirs))}; "
            "give module-path= in the URI"
        )
    from_env = env.get(MODULE_ENV)
    if from_env:
        return _existing(from_env, MODULE_ENV)
    raise UsageError(
        f"no PKCS#11 module: add module-path= or module-name= to the URI, or set {MODULE_ENV}"
    )


def _existing(path: str, origin: str) -> str:
    candidate = Path(path).expanduser()
    if not candidate.is_file():
        raise KeyLoadError(f"PKCS#11 module not found: {path} (from {origin})")
    return str(candidate.resolve())


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
