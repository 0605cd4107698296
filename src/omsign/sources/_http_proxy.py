"""The HTTP proxy a served model's requests go through, from the environment.

``https_proxy`` / ``http_proxy`` (either case; lower case wins) name the proxy for
``https://`` / ``http://`` URLs, and ``no_proxy`` the hosts reached directly (names and
domain suffixes, with an optional port, ``*`` for every host; not address ranges), as
Python's :func:`urllib.request.getproxies` reads them. An ``https://`` URL goes through
its proxy in a ``CONNECT`` tunnel: TLS runs end to end with the server, whose certificate
is verified as without a proxy (the proxy sees neither the bytes nor the headers). A proxy
named without a scheme is ``http://``; a user and password in the proxy's URL are sent to
the proxy (``Proxy-Authorization``), never to the server, and never shown in messages.
"""

from __future__ import annotations

import urllib.request
from urllib.parse import unquote, urlsplit

from omsign.errors import UsageError

__all__ = ["proxy_for", "proxy_headers", "shown"]


def proxy_for(url: str) -> str | None:
    """The proxy URL for ``url`` from the environment, None when it is reached directly.

    Raises:
        UsageError: the proxy is not an ``http://`` or ``https://`` URL.
    """
    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme)
    if not proxy:
        return None
    if _bypassed(parts.hostname or "", parts.port, proxies.get("no", "")):
        return None
    if "://" not in proxy:
        proxy = f"http://{proxy}"
    scheme = urlsplit(proxy).scheme.lower()
    if scheme not in ("http", "https") or not urlsplit(proxy).hostname:
        raise UsageError(
            f"{parts.scheme}_proxy: {shown(proxy)} is not an http:// or https:// proxy URL"
        )
    return proxy


def _bypassed(host: str, port: int | None, no_proxy: str) -> bool:
    """Whether ``no_proxy`` (``*``, or names, addresses and domain suffixes, each with an
    optional ``:PORT``, comma-separated) names the host."""
    host = host.lower().rstrip(".")
    for raw in no_proxy.split(","):
        entry = raw.strip().lower()
        if entry == "*":
            return True
        name, _, wanted = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if wanted and (not wanted.isdigit() or int(wanted) != port):
            continue
        name = name.strip("[]").lstrip("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def shown(proxy: str) -> str:
    """The proxy URL for messages: scheme, host and port, never a user or password."""
    parts = urlsplit(proxy)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"[:200]


def proxy_headers(proxy: str) -> dict[str, str]:
    """``Proxy-Authorization`` for a proxy URL that names a user, else nothing."""
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    import urllib3

    user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return dict(urllib3.make_headers(proxy_basic_auth=user))
