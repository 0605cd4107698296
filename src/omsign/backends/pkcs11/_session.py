"""Loading a PKCS#11 module and opening a session on the one token a URI selects.

:func:`find_module` turns the URI's ``module-path`` or ``module-name`` (or the
``OMSIGN_PKCS11_MODULE`` variable) into the path of a shared library;
:func:`select_slot` matches the URI's token attributes against the tokens the
loaded module reports; :func:`open_token` does both and returns a :class:`Token`
(an open session); :func:`login` logs in with the PIN when the token needs one.
PyKCS11 is imported only here, and only when a token is opened.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import sys
import sysconfig
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from omsign.backends.pkcs11._uri import MODULE_ENV, Pkcs11Uri, resolve_pin
from omsign.errors import BackendUnavailableError, KeyLoadError, UsageError

__all__ = [
    "Token",
    "attribute",
    "find_module",
    "login",
    "module_search_dirs",
    "open_token",
    "select_slot",
    "template",
]

_LIBRARY_SUFFIX = re.compile(r"\.(?:so|dylib)(?:\.[0-9]+)*$")


def _pykcs11() -> ModuleType:
    try:
        import PyKCS11
    except ImportError:
        raise BackendUnavailableError(
            "PKCS#11 keys need PyKCS11: pip install 'omsign[pkcs11]'"
        ) from None
    module: ModuleType = PyKCS11
    return module


@dataclass(repr=False)
class Token:
    """An open session on the selected token, and the library that holds it."""

    p11: ModuleType
    lib: Any
    session: Any
    label: str
    module: str
    closed: bool = False

    def __repr__(self) -> str:  # PyKCS11 handles read the token in their repr
        return f"<PKCS#11 token {self.label!r} in {self.module}>"

    def close(self) -> None:
        if self.closed:  # a second C_CloseSession after C_Finalize would crash
            return
        self.closed = True
        with contextlib.suppress(self.p11.PyKCS11Error):
            self.session.closeSession()
        self.lib.unload()

    def error(self, exc: Any, what: str) -> KeyLoadError:
        """Turns a PyKCS11Error into a one-line KeyLoadError naming this token."""
        name = self.p11.CKR.get(exc.value, f"0x{exc.value:08X}")
        token = f"PKCS#11 token {self.label!r}"
        if name in ("CKR_PIN_INCORRECT", "CKR_PIN_LEN_RANGE"):
            return KeyLoadError(f"wrong PIN for {token}")
        if name == "CKR_PIN_LOCKED":
            return KeyLoadError(f"the PIN of {token} is locked; unlock it with the SO PIN")
        if name == "CKR_PIN_EXPIRED":
            return KeyLoadError(f"the PIN of {token} has expired; set a new one")
        return KeyLoadError(f"{what} failed on {token}: {name}")


def open_token(uri: Pkcs11Uri) -> Token:
    p11 = _pykcs11()
    module = find_module(uri)
    lib = p11.PyKCS11Lib()
    try:
        with _quiet_stderr():  # the loader prints dlopen errors itself
            lib.load(module)
    except p11.PyKCS11Error as exc:
        reason = (
            "not a loadable library for this system"
            if exc.value < 0
            else f"its C_Initialize failed with {p11.CKR.get(exc.value, exc.value)}"
        )
        raise KeyLoadError(f"cannot load PKCS#11 module {module}: {reason}") from None
    try:
        slot, label = select_slot(p11, lib, uri, module)
        session = lib.openSession(slot)
    except p11.PyKCS11Error as exc:
        lib.unload()
        raise KeyLoadError(f"PKCS#11 module {module} failed: {exc}") from None
    except BaseException:
        lib.unload()
        raise
    return Token(p11, lib, session, label, module)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def login(
    token: Token, uri: Pkcs11Uri, password_source: Callable[[str], bytes | None]
) -> bytes | None:
    p11 = token.p11
    flags = token.lib.getTokenInfo(token.session.getSessionInfo().slotID).flags
    if not flags & p11.CKF_LOGIN_REQUIRED:
        return None
    pin = resolve_pin(uri, token.label, password_source)
    try:
        token.session.login(pin)
    except p11.PyKCS11Error as exc:
        if exc.value != p11.CKR_USER_ALREADY_LOGGED_IN:
            raise token.error(exc, "login") from None
    return pin


def attribute(token: Token, handle: Any, attribute: int, *, binary: bool = True) -> Any:
    try:
        return token.session.getAttributeValue(handle, [attribute], allAsBinary=binary)[0]
    except token.p11.PyKCS11Error:
        return None


def template(p11: ModuleType, uri: Pkcs11Uri, object_class: int) -> list[tuple[int, Any]]:
    template: list[tuple[int, Any]] = [(p11.CKA_CLASS, object_class)]
    if uri.id is not None:
        template.append((p11.CKA_ID, uri.id))
    if uri.object is not None:
        template.append((p11.CKA_LABEL, uri.object))
    return template


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
