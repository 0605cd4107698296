"""The registry client's transport: TLS, plain HTTP where allowed, and authentication.

Built on ``urllib3`` (already installed with omsign: Sigstore's ``requests`` uses it).
TLS is verified against the CA bundle named by ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE``
when one is set, else against the system store (OpenSSL's default paths). Plain HTTP is
used only for a registry the caller marks insecure (``insecure=True``, or its host listed
in ``$OMSIGN_OCI_INSECURE``, comma-separated, ``*`` for all), or for a loopback registry
(``localhost``, ``127.0.0.0/8``, ``::1``) that does not speak TLS: HTTPS is tried first
and, on a loopback host only, a server that answers in plain text is then spoken to in
plain HTTP, as Docker does. A certificate that fails verification is never bypassed.

A request answered ``401`` is retried once with credentials: a ``Bearer`` challenge gets
a token from its realm (with the Docker-config credentials as basic auth, if any, or
an identity token exchanged by the OAuth2 refresh-token grant; cached per scope), a
``Basic`` challenge gets the credentials. Credentials are sent over plain HTTP only to
a loopback or explicitly insecure host. Redirects (blob storage) are followed, and the
``Authorization`` header is dropped when one leaves the registry's host.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import ssl
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, SSLError

from omsign.oci._auth import Credentials, find_credentials, parse_challenge
from omsign.oci._errors import RegistryError

__all__ = ["Transport", "finish", "is_loopback", "read_capped"]

_MAX_TOKEN = 1 << 20
_MAX_ERROR = 1 << 14
_TIMEOUT = urllib3.Timeout(connect=15.0, read=120.0)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (``name[:port]`` or ``[v6]:port``) is this machine."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _listed_insecure(host: str) -> bool:
    listed = [h.strip() for h in os.environ.get("OMSIGN_OCI_INSECURE", "").split(",")]
    return "*" in listed or host in listed


def _ssl_context() -> ssl.SSLContext:
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or None
    return _context_for(bundle)


@functools.lru_cache(maxsize=8)
def _context_for(bundle: str | None) -> ssl.SSLContext:
    """One verifying context per CA bundle and process (loading the system store is slow)."""
    try:
        return ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError) as exc:
        raise RegistryError(f"{bundle}: cannot load the CA bundle ({exc})") from None


def finish(response: Any) -> None:
    """Ends a response: a short rest is read so the connection is reused, a long one closed."""
    remaining = getattr(response, "length_remaining", None)
    if remaining is not None and remaining <= _MAX_ERROR:
        response.drain_conn()
        response.release_conn()
    else:
        response.close()


def read_capped(response: Any, cap: int) -> bytes:
    """Reads at most ``cap + 1`` bytes of the body, then ends the response."""
    data: bytes = response.read(cap + 1)
    finish(response)
    return data


class Transport:
    """HTTP requests to one registry host, authenticated as its challenges ask."""

    def __init__(
        self, host: str, *, insecure: bool = False, credentials: Credentials | None = None
    ) -> None:
        self.host = host
        self.insecure = insecure or _listed_insecure(host)
        self.loopback = is_loopback(host)
        self.scheme = "http" if self.insecure else "https"
        self._credentials = credentials
        self._credentials_loaded = credentials is not None
        self._tokens: dict[str, str] = {}
        self._basic = False
        self._lock = threading.Lock()
        self._pool = urllib3.PoolManager(
            ssl_context=_ssl_context(),
            retries=urllib3.Retry(total=3, connect=2, read=0, other=0, redirect=5, status=0),
            timeout=_TIMEOUT,
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickles the settings only (each process makes its own pool and logs in again)."""
        return {"host": self.host, "insecure": self.insecure, "cred": self._credentials}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuilds the transport in another process."""
        self.__init__(  # type: ignore[misc]
            state["host"], insecure=state["insecure"], credentials=state["cred"]
        )

    @property
    def base(self) -> str:
        """``scheme://host``."""
        return f"{self.scheme}://{self.host}"

    def credentials(self) -> Credentials | None:
        """The credentials for this host (the Docker config, read once)."""
        with self._lock:
            if not self._credentials_loaded:
                self._credentials = find_credentials(self.host)
                self._credentials_loaded = True
            return self._credentials

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | Any = None,
    ) -> Any:
        """Sends a request (``path`` below the host, or an absolute URL); unread response.

        Args:
            method: the HTTP method.
            path: ``/v2/...`` or an absolute URL (an upload location).
            scope: the token scope this request needs (``repository:NAME:pull``).
            headers: extra headers.
            body: bytes or a binary file to send.

        Raises:
            RegistryError: the registry is unreachable or refuses the credentials.
        """
        response = self._send(method, path, scope, headers, body)
        if response.status == 401:
            challenge = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            read_capped(response, _MAX_ERROR)
            self._answer(challenge, scope)
            if hasattr(body, "seek"):
                body.seek(0)
            response = self._send(method, path, scope, headers, body)
            if response.status == 401:
                read_capped(response, _MAX_ERROR)
                raise self._refused()
        return response

    def _send(
        self,
        method: str,
        path: str,
        scope: str,
        headers: Mapping[str, str] | None,
        body: bytes | Any,
    ) -> Any:
        url = path if "://" in path else self.base + path
        sent = dict(headers or {})
        auth = self._authorization(scope)
        if auth and urlsplit(url).netloc == self.host:
            sent["Authorization"] = auth
        try:
            return self._pool.request(
                method, url, headers=sent, body=body, preload_content=False, redirect=True
            )
        except HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            if not isinstance(reason, SSLError):
                raise RegistryError(
                    f"{self.host}: the registry is unreachable ({_reason(exc)})",
                    hint="check the registry's address and that it is running",
                ) from None
            if self.scheme == "https" and self.loopback and "CERTIFICATE_VERIFY" not in str(reason):
                self.scheme = "http"  # a loopback registry without TLS, as Docker allows
                if "://" in path:
                    path = path.replace("https://", "http://", 1)
                return self._send(method, path, scope, headers, body)
            raise RegistryError(
                f"{self.host}: TLS failed ({_reason(exc)})", hint=_TLS_HINT
            ) from None

    def _authorization(self, scope: str) -> str | None:
        with self._lock:
            token = self._tokens.get(scope) or self._tokens.get("*")
            if token is not None:
                return f"Bearer {token}"
            if self._basic and self._credentials is not None:
                return self._credentials.basic()
        return None

    def _plain_allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme == "https" or self.insecure or is_loopback(parts.netloc)

    def _answer(self, challenge: Any, scope: str) -> None:
        credentials = self.credentials()
        if challenge is None or challenge.scheme not in ("bearer", "basic"):
            raise self._refused()
        if challenge.scheme == "basic":
            if credentials is None or not self._plain_allowed(self.base):
                raise self._refused()
            with self._lock:
                self._basic = True
            return
        realm = challenge.params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(f"{self.host}: the registry's token realm {realm!r} is not a URL")
        wanted = challenge.params.get("scope") or scope
        query = {"service": challenge.params.get("service", "")}
        query["scope"] = wanted
        send = credentials if credentials is not None and self._plain_allowed(realm) else None
        try:
            if send is not None and send.username == "<token>":  # an identity token (OAuth2)
                form = {**query, "grant_type": "refresh_token", "client_id": "omsign"}
                form["refresh_token"] = send.secret
                response = self._pool.request(
                    "POST",
                    realm,
                    body=urlencode(form),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    preload_content=False,
                )
            else:
                headers = {"Authorization": send.basic()} if send is not None else {}
                url = f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}"
                response = self._pool.request("GET", url, headers=headers, preload_content=False)
        except HTTPError as exc:
            raise RegistryError(
                f"{realm}: the token service is unreachable ({_reason(exc)})"
            ) from None
        data = read_capped(response, _MAX_TOKEN)
        if response.status in (401, 403):
            raise self._refused()
        if response.status != 200 or len(data) > _MAX_TOKEN:
            raise RegistryError(f"{realm}: the token service answered HTTP {response.status}")
        try:
            answer = json.loads(data)
            token = answer.get("token") or answer.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{realm}: the token service's answer holds no token")
        with self._lock:
            self._tokens[scope] = token
            if wanted != scope:
                self._tokens[wanted] = token

    def _refused(self) -> RegistryError:
        if self.credentials() is None:
            return RegistryError(
                f"{self.host}: the registry requires credentials and none were found",
                hint="log in first (docker login or oras login " + self.host + ")",
            )
        return RegistryError(
            f"{self.host}: the registry refused the credentials (HTTP 401)",
            hint="log in again (docker login or oras login " + self.host + ")",
        )


_TLS_HINT = (
    "if the registry uses a private CA, name its bundle in SSL_CERT_FILE or REQUESTS_CA_BUNDLE"
)


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason).splitlines()[0] if str(reason) else type(exc).__name__
    return text[:200]
