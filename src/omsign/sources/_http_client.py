"""Pinned reads of files on a web server: the transport, each file's version, ranged GETs.

A file is pinned when it is looked up (:func:`pin`, a ``HEAD``): its size and its strong
``ETag``, else its ``Last-Modified`` date when the server gives no strong ``ETag`` (a
weak one, ``W/"..."``, promises equivalent content, not the same bytes); a file with
neither is refused, since nothing would tie its reads to the version listed. Every read
is a ranged ``GET`` conditioned on that version (``If-Match``, else
``If-Unmodified-Since``) whose answer must be ``206`` with exactly the asked
``Content-Range`` and total size, no content coding and the pinned ``ETag`` (or date);
the whole file may come as ``200`` when the whole file was asked for (a server without
range support). No more bytes than asked are read, and never past the pinned size. After
hashing, each file is looked up again. A ``412``, another validator, a short body or a
file gone is a :class:`~omsign.hashing.ChangedWhileHashingError` naming the file (a
failed verification), never a digest of mixed bytes. A pin is as strong as the server's
validator: nginx derives its ``ETag`` from the modification time (in seconds) and size.

Requests go through ``urllib3`` (installed with omsign's Sigstore client; the extra
``omsign[https]`` names it), which leaves every header and status to this module:
fsspec's HTTP filesystem follows links to any host, follows redirects and does not check
a range answer against a version. Redirects are never followed. TLS is verified against
the system trust store, or the CA bundle named by ``SSL_CERT_FILE`` (or
``REQUESTS_CA_BUNDLE``); a proxy named in the environment is used
(:mod:`omsign.sources._http_proxy`), TLS still end to end. Each request has a total time
limit, headers and body (:mod:`omsign.sources._http_deadline`): callers read bodies with
:func:`take` and end every response with :func:`drain` or :func:`finish`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from omsign.errors import BackendUnavailableError, ModelError, StorageAccessError
from omsign.hashing import EntryLike, OpenEntry
from omsign.hashing._io import ChangedWhileHashingError
from omsign.sources._http_deadline import Watch, finish, limit, take, watch_of, watched
from omsign.sources._http_index import clip
from omsign.sources._http_proxy import proxy_for, proxy_headers, shown

__all__ = [
    "HEADS",
    "HttpEntry",
    "HttpReader",
    "Pin",
    "drain",
    "finish",
    "pin",
    "request",
    "status_error",
    "take",
]

_BLOCK = 32 << 20  # bytes requested past an announced range (a read the engine did not announce)
HEADS = 8  # connections kept per host (files looked up at once when listing)
_NUMBER = r"[0-9]{1,19}"  # a size or offset (ASCII digits; int() of a long run raises)
_RANGE = re.compile(rf"bytes ({_NUMBER})-({_NUMBER})/({_NUMBER})")


@dataclass(frozen=True, slots=True)
class Pin:
    """A file's version when it was listed: size, and its strong ETag or its date."""

    size: int
    etag: str | None
    modified: str | None

    def conditions(self) -> dict[str, str]:
        """The request headers that make a read answer only for this version."""
        if self.etag is not None:
            return {"If-Match": self.etag}
        assert self.modified is not None
        return {"If-Unmodified-Since": self.modified}

    def same(self, headers: Any) -> bool:
        """Whether a response's validator is this version's."""
        if self.etag is not None:
            return bool(headers.get("ETag") == self.etag)
        return bool(headers.get("Last-Modified") == self.modified)

    def same_version(self, other: Pin) -> bool:
        """Whether ``other`` is this version: same size and same validator (the one pinned)."""
        if self.size != other.size:
            return False
        if self.etag is not None:
            return self.etag == other.etag
        return self.modified == other.modified

    def describe(self) -> str:
        """The version for messages."""
        shown = f"ETag {self.etag}" if self.etag is not None else f"Last-Modified {self.modified}"
        return clip(shown)


@dataclass(frozen=True, slots=True)
class HttpEntry:
    """One file of a served model, pinned to the version listed.

    Attributes:
        name: model-relative name (``/``-separated); a single file's basename.
        url: the file's URL.
        size: size in bytes when listed.
        pin: the version it had when listed.
    """

    name: str
    url: str
    size: int
    pin: Pin

    @property
    def path(self) -> str:
        """Where the file is, for messages (its URL)."""
        return self.url

    @property
    def stamp(self) -> Hashable:
        """Change stamp: size and version as listed."""
        return (self.size, self.pin.etag, self.pin.modified)


@functools.lru_cache(maxsize=8)
def _pool(pid: int, bundle: str | None, proxy: str | None) -> Any:
    """One connection pool per process, CA bundle and proxy; redirects are answers, not
    followed."""
    del pid
    import ssl

    try:
        import urllib3
    except ImportError:
        raise BackendUnavailableError(
            "reading a model over HTTP needs the urllib3 package",
            hint="pip install 'omsign[https]'",
        ) from None
    try:
        context = ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError) as exc:
        raise StorageAccessError(f"{bundle}: cannot load the CA bundle ({exc})") from None
    # A connection refused, or a kept-alive one closed as it was reused (which proxies do),
    # is tried again, each time under the same deadline; no status or redirect is.
    retries = urllib3.Retry(total=2, connect=2, read=1, redirect=0, status=0, other=0)
    settings: dict[str, Any] = {
        "maxsize": HEADS,
        "ssl_context": context,
        "retries": retries,
        "timeout": urllib3.Timeout(connect=15.0, read=120.0),
    }
    if proxy is None:
        return watched(context, urllib3.PoolManager(**settings))
    # Some proxies (tinyproxy) close a client's connection after each answer without saying
    # so: any kept one may be found closed as it is reused (urllib3 reports that as a proxy
    # error, "other"), so as many tries again as connections are kept, before any answer.
    settings["retries"] = retries.new(total=HEADS + 2, read=HEADS + 1, other=HEADS + 1)
    manager = urllib3.ProxyManager(proxy, proxy_headers=proxy_headers(proxy), **settings)
    return watched(context, manager)


def request(method: str, url: str, headers: dict[str, str] | None = None, *, most: int = 0) -> Any:
    """Sends one request; the response's body is not read yet (``preload_content=False``).

    The answer's headers and then its body (of at most ``most`` bytes read, fewer when the
    server announces fewer) must arrive within the request's time limit; end the response
    with :func:`drain` or :func:`finish`.

    Raises:
        StorageAccessError: the server cannot be reached, its certificate is not trusted, or
            the headers did not arrive in time.
        UsageError: the time limit in the environment is not a number of seconds.
    """
    watch = Watch(url, limit())
    watch.start()
    try:
        response = _send(method, url, headers)
    except BaseException:
        watch.end()
        if watch.expired:
            raise watch.error() from None
        raise
    if watch.expired:
        watch.end()
        response.close()
        raise watch.error()
    response._omsign_watch = watch
    announced = response.length_remaining
    watch.body(most if announced is None else max(0, min(most, announced)))
    return response


def _send(method: str, url: str, headers: dict[str, str] | None) -> Any:
    bundle = os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE") or None
    proxy = proxy_for(url)
    pool = _pool(os.getpid(), bundle, proxy)
    from urllib3.exceptions import HTTPError, SSLError

    sent = {"Accept-Encoding": "identity", "User-Agent": "omsign", **(headers or {})}
    try:
        return pool.request(
            method,
            url,
            headers=sent,
            preload_content=False,
            decode_content=False,  # a body is taken as sent: a coded one is refused, never inflated
            redirect=False,
            retries=None,
        )
    except HTTPError as exc:
        reason = getattr(exc, "reason", None) or exc
        reason = getattr(reason, "original_error", None) or reason  # a proxy's: its cause
        detail = (str(reason).splitlines() or [type(exc).__name__])[0][:200]
        if isinstance(exc, SSLError) or "CERTIFICATE_VERIFY_FAILED" in detail:
            raise StorageAccessError(
                f"{url}: the server's TLS certificate is not trusted ({detail})",
                hint="if the server uses a private CA, name its bundle in SSL_CERT_FILE",
            ) from None
        via = "" if proxy is None else f" through the proxy {shown(proxy)}"
        raise StorageAccessError(f"{url}: cannot reach the server{via} ({detail})") from None


def status_error(url: str, response: Any) -> Exception:
    """A refused or redirected request as omsign's error (a model problem: the file)."""
    status = response.status
    if 300 <= status < 400:
        target = clip(urljoin(url, response.headers.get("Location", "")))
        return ModelError(f"{url}: the server redirects to {target}; redirects are not followed")
    if status == 404:
        return FileNotFoundError(url)
    return ModelError(f"{url}: the server refused the file (HTTP {status} {clip(response.reason)})")


def drain(response: Any) -> None:
    """Ends a response: a short body of known length is read to reuse the connection, any
    other (long, or of no announced length) is not read: the connection is closed."""
    remaining = response.length_remaining
    if remaining is not None and remaining <= 1 << 16:
        try:
            response.drain_conn()
        finally:
            finish(response)
        return
    finish(response)


def pin(url: str) -> Pin:
    """Looks a file up (``HEAD``) and pins its version.

    Raises:
        FileNotFoundError: nothing there.
        ModelError: refused, redirected, coded, or nothing pins its version.
    """
    response = request("HEAD", url)
    drain(response)
    if response.status != 200:
        raise status_error(url, response)
    headers = response.headers
    length = headers.get("Content-Length", "")
    if re.fullmatch(_NUMBER, length) is None:
        raise ModelError(f"{url}: the server gives no size (Content-Length) for the file")
    if headers.get("Content-Encoding", "identity").lower() != "identity":
        raise ModelError(f"{url}: the server sends the file content-coded, not as it is")
    etag = headers.get("ETag")
    strong = etag if etag and etag.startswith('"') and etag.endswith('"') else None
    modified = headers.get("Last-Modified") or None
    if strong is None and modified is None:
        raise ModelError(
            f"{url}: the server gives no strong ETag and no Last-Modified date, so a read "
            "cannot be tied to the version listed",
            hint="serve the model with nginx or Apache (both send an ETag)",
        )
    return Pin(int(length), strong, modified)


def _changed(entry: HttpEntry, what: str) -> ChangedWhileHashingError:
    return ChangedWhileHashingError(
        f"{entry.url}: file {what} while the model was read (listed {entry.pin.describe()})"
    )


class _OpenUrl:
    """A served file opened for range reads of its pinned version.

    Once the engine says which range it reads next (:meth:`will_read`), that range is one
    request whose body is taken as the engine reads; a read elsewhere starts a request of
    its own, of at most ``_BLOCK`` bytes past the announced range.
    """

    __slots__ = ("_pos", "_response", "_stop", "_until", "entry")

    def __init__(self, entry: HttpEntry) -> None:
        self.entry = entry
        self._response: Any = None
        self._pos = 0
        self._stop = 0
        self._until = 0

    def will_read(self, start: int, end: int) -> None:
        """The engine reads ``[start, end)`` next, in order."""
        del start
        self._until = min(end, self.entry.size)

    def _open(self, offset: int, size: int) -> None:
        self._end()
        e = self.entry
        stop = self._until if offset < self._until else min(e.size, offset + max(size, _BLOCK))
        headers = {"Range": f"bytes={offset}-{stop - 1}", **e.pin.conditions()}
        response = request("GET", e.url, headers, most=stop - offset)
        self._response = response  # closed by _end whatever happens next
        status = response.status
        if status in (404, 410, 412, 416):
            raise _changed(e, "replaced or deleted")
        if status not in (200, 206):
            raise status_error(e.url, response)
        got = response.headers
        if not e.pin.same(got):
            raise _changed(e, "replaced")
        if got.get("Content-Encoding", "identity").lower() != "identity":
            raise ModelError(f"{e.url}: the server sends the file content-coded, not as it is")
        if status == 200:
            if offset != 0 or stop != e.size:
                raise ModelError(
                    f"{e.url}: the server does not answer range requests (HTTP 200 to a "
                    "range), so shards cannot be read from it",
                    hint="serve the model with nginx or Apache",
                )
            expected = f"{e.size}"
            if got.get("Content-Length", expected) != expected:
                raise _changed(e, "replaced")
        else:
            shown = got.get("Content-Range", "")
            match = _RANGE.fullmatch(shown)
            if match is not None and int(match.group(3)) != e.size:
                raise _changed(e, f"replaced ({clip(shown)})")
            if match is None or (int(match.group(1)), int(match.group(2))) != (offset, stop - 1):
                raise ModelError(
                    f"{e.url}: the server answered a request of bytes {offset}-{stop - 1} "
                    f"with Content-Range {clip(repr(shown))}"
                )
            length = got.get("Content-Length")
            if length is not None and length != str(stop - offset):
                raise ModelError(
                    f"{e.url}: the server answered {stop - offset} bytes of the file with a "
                    f"body of {clip(length)} bytes"
                )
        self._pos, self._stop = offset, stop

    def read(self, offset: int, size: int) -> bytes:
        size = min(size, self.entry.size - offset)
        if size <= 0:
            return b""
        if self._response is None or offset != self._pos or offset >= self._stop:
            try:
                self._open(offset, size)
            except BaseException:
                self._end()
                raise
        size = min(size, self._stop - offset)
        watch = watch_of(self._response)
        try:
            data = self._take(size)
        except Exception as exc:
            self._end()
            if watch is not None and watch.expired:
                raise watch.error() from None
            if type(exc).__name__ in ("IncompleteRead", "ProtocolError"):
                raise _changed(self.entry, "cut short") from None
            raise StorageAccessError(f"{self.entry.url}: cannot read ({exc})") from None
        if watch is not None and watch.expired:
            self._end()
            raise watch.error()
        if len(data) != size:
            self._end()
            raise _changed(self.entry, "cut short")
        self._pos += size
        if self._pos >= self._stop:
            self._end()
        return data

    def _take(self, size: int) -> bytes:
        """Up to ``size`` bytes of the body (fewer only where it ends)."""
        pieces, got = [], 0
        while got < size:
            piece: bytes = self._response.read(size - got)
            if not piece:
                break
            pieces.append(piece)
            got += len(piece)
        return b"".join(pieces)

    def _end(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            finish(response)

    def check_unchanged(self) -> None:
        e = self.entry
        try:
            now = pin(e.url)
        except FileNotFoundError:
            raise _changed(e, "deleted") from None
        if not e.pin.same_version(now):
            raise _changed(e, f"replaced (now {now.describe()}, {now.size} bytes)")

    def close(self) -> None:
        self._end()


@dataclass(frozen=True, slots=True)
class HttpReader:
    """Reads pinned files of a web server; picklable (each process opens its own pool)."""

    def open(self, entry: EntryLike) -> OpenEntry:
        """Opens an :class:`HttpEntry`."""
        if not isinstance(entry, HttpEntry):
            raise TypeError(f"the HTTP reader reads listed files, not {type(entry).__name__}")
        return _OpenUrl(entry)
