"""Registry credentials and authentication challenges.

Credentials come from the Docker configuration, as ``docker login``, ``oras login`` and
``podman login --compat-auth-file`` write it: ``$DOCKER_CONFIG/config.json``, else
``~/.docker/config.json``. For a registry host the lookup is, in order: its
``credHelpers`` entry, the ``auths`` entry (``auth`` is base64 of ``user:password``), then
the default ``credsStore``. A helper is the program ``docker-credential-<name>`` on
``PATH``, asked with ``get`` and the host on its standard input; it answers a JSON object
with ``Username`` and ``Secret``. A helper that is not installed, fails or says it has
nothing is treated as "no credentials" (anonymous access), with a debug log line.

Challenges (RFC 7235 ``WWW-Authenticate``) are parsed here; the client answers
``Bearer`` with a token from the realm (sending the credentials, if any, as basic auth)
and ``Basic`` with the credentials themselves.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from omsign.oci._errors import RegistryError

__all__ = ["Challenge", "Credentials", "docker_config_path", "find_credentials", "parse_challenge"]

logger = logging.getLogger("omsign")

_MAX_CONFIG = 1 << 20  # a Docker config file larger than this is refused
_MAX_HELPER_OUTPUT = 1 << 16
_HELPER_TIMEOUT = 30.0
_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io")
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)')


@dataclass(frozen=True)
class Credentials:
    """A user name and secret (a password or, with the user ``<token>``, an identity token)."""

    username: str
    secret: str

    def __repr__(self) -> str:
        """Never shows the secret."""
        return f"Credentials(username={self.username!r}, secret=***)"

    def basic(self) -> str:
        """The ``Authorization`` header value for basic auth."""
        raw = f"{self.username}:{self.secret}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: the scheme (lower case) and its parameters."""

    scheme: str
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """Parses the first challenge of a ``WWW-Authenticate`` header, or None if malformed.

    ``Bearer realm="https://auth.example/token",service="registry",scope="repository:a:pull"``
    gives ``Challenge("bearer", {"realm": ..., "service": ..., "scope": ...})``.
    """
    header = header.strip()
    scheme, _, rest = header.partition(" ")
    if not scheme or not re.fullmatch(r"[A-Za-z][A-Za-z0-9._-]*", scheme):
        return None
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None:
            break  # a second challenge, or a token68 value: keep what was read
        key, quoted, bare = match.groups()
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
        params.setdefault(key.lower(), value)
        pos = match.end()
    return Challenge(scheme.lower(), params)


def docker_config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    folder = os.environ.get("DOCKER_CONFIG")
    base = Path(folder).expanduser() if folder else Path.home() / ".docker"
    return base / "config.json"


def _load_config(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_CONFIG + 1)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise RegistryError(
            f"{path}: cannot read the Docker configuration ({exc.strerror})"
        ) from None
    if len(raw) > _MAX_CONFIG:
        raise RegistryError(f"{path}: the Docker configuration is larger than 1 MiB")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise RegistryError(f"{path}: the Docker configuration is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: the Docker configuration is not a JSON object")
    return data


def _host_of(key: str) -> str:
    """``https://host:port/v1/`` -> ``host:port`` (keys in ``auths`` come in several forms)."""
    key = key.strip()
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key.split("/", 1)[0].lower()


def _keys_for(host: str) -> tuple[str, ...]:
    host = host.lower()
    if host in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        return ("docker.io", *(_host_of(k) for k in _HUB_KEYS))
    return (host,)


def _from_auths(auths: object, host: str, path: Path) -> Credentials | None:
    if not isinstance(auths, dict):
        return None
    wanted = _keys_for(host)
    for key, entry in auths.items():
        if not isinstance(key, str) or _host_of(key) not in wanted or not isinstance(entry, dict):
            continue
        token = entry.get("identitytoken")
        if isinstance(token, str) and token:
            return Credentials("<token>", token)
        auth = entry.get("auth")
        if isinstance(auth, str) and auth:
            try:
                user, sep, secret = base64.b64decode(auth, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise RegistryError(
                    f"{path}: the credentials for {key} are not base64 of user:password"
                ) from None
            if not sep:
                raise RegistryError(f"{path}: the credentials for {key} have no ':'")
            return Credentials(user, secret)
        name, password = entry.get("username"), entry.get("password")
        if isinstance(name, str) and isinstance(password, str) and name:
            return Credentials(name, password)
    return None


def run_helper(helper: str, host: str) -> Credentials | None:
    """Asks ``docker-credential-<helper> get`` for ``host``; None when it has nothing.

    Raises:
        RegistryError: the helper's answer is malformed.
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", helper):
        raise RegistryError(f"invalid credential helper name {helper!r} in the Docker config")
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        logger.debug("credential helper docker-credential-%s is not installed", helper)
        return None
    try:
        done = subprocess.run(
            [program, "get"],
            input=host.encode(),
            capture_output=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.debug("credential helper %s failed: %s", program, exc)
        return None
    if done.returncode != 0:  # "credentials not found in native keychain" and the like
        logger.debug("credential helper %s has no credentials for %s", program, host)
        return None
    try:
        answer = json.loads(done.stdout[:_MAX_HELPER_OUTPUT])
        user, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError):
        raise RegistryError(
            f"docker-credential-{helper}: answered something other than Username and Secret"
        ) from None
    if not isinstance(user, str) or not isinstance(secret, str):
        raise RegistryError(f"docker-credential-{helper}: Username and Secret must be strings")
    return Credentials(user, secret) if secret else None


def find_credentials(host: str, config: Path | None = None) -> Credentials | None:
    """The credentials the Docker configuration holds for ``host`` (``host:port``), or None.

    Raises:
        RegistryError: the configuration or a helper's answer is malformed.
    """
    path = config or docker_config_path()
    data = _load_config(path)
    helpers = data.get("credHelpers")
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if (
                isinstance(key, str)
                and _host_of(key) in _keys_for(host)
                and isinstance(helper, str)
            ):
                return run_helper(helper, key)
    found = _from_auths(data.get("auths"), host, path)
    if found is not None:
        return found
    store = data.get("credsStore")
    if isinstance(store, str) and store:
        key = "https://index.docker.io/v1/" if _keys_for(host)[0] == "docker.io" else host
        return run_helper(store, key)
    return None
