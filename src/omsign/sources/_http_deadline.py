"""A total time limit per request to a web server, however slowly the server answers.

Socket timeouts bound each read, not a request: a server that sends a byte just inside
each timeout holds an answer's headers, or a body, for as long as it likes. So each request
has a deadline. Its headers must arrive within ``$OMSIGN_HTTP_TIMEOUT`` seconds (60 by
default) of the request; from then its body has that time again, plus that time per 2 MiB
of body it may send (at least 2 MiB per limit: about 34 KiB/s by default, so a 32 MiB
range has 17 minutes). A slow link raises the variable; it never lowers the per-read
timeouts.

A watchdog thread shuts the request's socket down when its deadline passes, so the read
it blocks in returns at once whatever the server sends; the request then fails with a
:class:`~omsign.errors.StorageAccessError` naming the URL and what did not arrive in time.
The socket is the one the request's connection opens (or reuses), and the TLS socket
wrapping it from the start of its handshake on.
"""

from __future__ import annotations

import contextlib
import heapq
import math
import os
import socket
import ssl
import threading
import time
from typing import Any

from omsign.errors import StorageAccessError, UsageError
from omsign.sources._http_index import clip

__all__ = ["TIMEOUT_ENV", "Watch", "attach", "finish", "limit", "take", "watch_of", "watched"]

TIMEOUT_ENV = "OMSIGN_HTTP_TIMEOUT"
DEFAULT_SECONDS = 60.0
_PER_LIMIT = 2 << 20  # body bytes allowed per limit's worth of seconds (a minimum rate)


def limit() -> float:
    """The limit in seconds: ``$OMSIGN_HTTP_TIMEOUT``, else 60.

    Raises:
        UsageError: the variable is not a positive number of seconds.
    """
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1e7:  # NaN fails too
        raise UsageError(f"${TIMEOUT_ENV}: expected a number of seconds, not {clip(repr(raw))}")
    return value


class Watch:
    """One request's deadline and the socket it reads from."""

    __slots__ = ("deadline", "expired", "limit", "sock", "url", "what")

    def __init__(self, url: str, seconds: float) -> None:
        self.url = url
        self.limit = seconds
        self.what = "the answer's headers did not arrive in time"
        self.deadline = time.monotonic() + seconds
        self.sock: socket.socket | None = None
        self.expired = False

    def __lt__(self, other: Watch) -> bool:
        return self.deadline < other.deadline

    def start(self) -> None:
        """Arms the watch for the answer's headers, for requests sent from this thread."""
        _local.watch = self
        with _cond:
            _ensure_thread()
            _arm(self)

    def body(self, size: int) -> None:
        """The headers arrived: the body (at most ``size`` bytes) has its own time."""
        _local.watch = None
        seconds = self.limit * (1 + size / _PER_LIMIT)
        with _cond:
            self.what = f"the body ({size} bytes at most) did not arrive in time"
            self.deadline = time.monotonic() + seconds
            _arm(self)

    def end(self) -> None:
        """The request is over (read, failed or closed): nothing is cut any more."""
        if getattr(_local, "watch", None) is self:
            _local.watch = None
        with _cond:
            _watches.discard(self)
            self.sock = None

    def error(self) -> StorageAccessError:
        """The error of a request cut at its deadline."""
        return StorageAccessError(
            f"{self.url}: {self.what}; the request was cut at its time limit "
            f"({self.limit:g} s, plus as much per 2 MiB of body)",
            hint=f"on a slow link, raise ${TIMEOUT_ENV} (seconds)",
        )


class _Lock:
    """The watchdog's lock, renewed in a forked child (a parent's thread may hold it)."""

    def __init__(self) -> None:
        self.cond = threading.Condition()

    def __enter__(self) -> None:
        self.cond.acquire()

    def __exit__(self, *exc: object) -> None:
        self.cond.release()


_cond = _Lock()
_watches: set[Watch] = set()
_heap: list[tuple[float, int, Watch]] = []
_local = threading.local()
_thread: list[int] = []  # the pid whose watchdog runs
_count = [0]


def _reset_after_fork() -> None:
    _cond.cond = threading.Condition()
    _watches.clear()
    _heap.clear()
    _thread.clear()


os.register_at_fork(after_in_child=_reset_after_fork)


def _ensure_thread() -> None:
    if _thread != [os.getpid()]:
        _thread[:] = [os.getpid()]
        threading.Thread(target=_watchdog, name="omsign-http-deadline", daemon=True).start()


def _arm(watch: Watch) -> None:
    _watches.add(watch)
    _count[0] += 1
    heapq.heappush(_heap, (watch.deadline, _count[0], watch))
    _cond.cond.notify()


def _cut(sock: socket.socket | None) -> None:
    """Shuts a socket down (not the TLS layer: the raw socket), so blocked reads return."""
    if sock is None:
        return
    with contextlib.suppress(OSError):  # already closed: nothing left to cut
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _watchdog() -> None:
    cond = _cond.cond
    with cond:
        while True:
            now = time.monotonic()
            while _heap and (_heap[0][0] <= now or _heap[0][2] not in _watches):
                deadline, _, watch = heapq.heappop(_heap)
                if watch in _watches and watch.deadline == deadline:
                    watch.expired = True
                    _watches.discard(watch)
                    _cut(watch.sock)
            cond.wait(_heap[0][0] - now if _heap else None)


def attach(sock: Any) -> None:
    """Names the socket this thread's current request reads from (cut at its deadline)."""
    watch = getattr(_local, "watch", None)
    if watch is None:
        return
    with _cond:
        for other in _watches:
            if other.sock is sock and other is not watch:
                other.sock = None  # a pooled connection now serves this request
        watch.sock = sock
        if watch.expired:
            _cut(sock)


def watch_of(response: Any) -> Watch | None:
    """The watch of a response :func:`omsign.sources._http_client.request` returned."""
    watch: Watch | None = getattr(response, "_omsign_watch", None)
    return watch


def take(response: Any, most: int) -> bytes:
    """Up to ``most`` bytes of a response's body, all of it unless it ends first.

    Raises:
        StorageAccessError: the body did not arrive within the request's time limit (never
            a part of it taken as the whole).
    """
    watch = watch_of(response)
    try:
        data: bytes = response.read(most)
    except Exception:
        if watch is not None and watch.expired:
            raise watch.error() from None
        raise
    if watch is not None and watch.expired:
        raise watch.error()
    return data


def finish(response: Any) -> None:
    """Ends a response without reading the rest of its body (its connection is closed)."""
    response.close()
    response.release_conn()
    watch = watch_of(response)
    if watch is not None:
        watch.end()


class _WatchedTls(ssl.SSLSocket):
    """A TLS socket whose handshake is under the current request's deadline."""

    def do_handshake(self, block: bool = False) -> None:
        attach(self)
        super().do_handshake(block)


def watched(context: ssl.SSLContext, pool: Any) -> Any:
    """``pool`` (a urllib3 PoolManager built with ``context``) with every connection's
    socket under the deadline of the request it serves."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    context.sslsocket_class = _WatchedTls

    class Plain(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            attach(sock)
            return sock

        def request(self, *args: Any, **kwargs: Any) -> None:
            if self.sock is not None:
                attach(self.sock)
            super().request(*args, **kwargs)

    class Secure(Plain, HTTPSConnection):  # the same watch on HTTPS's connections
        pass

    class PlainPool(HTTPConnectionPool):
        ConnectionCls = Plain

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = Secure

    pool.pool_classes_by_scheme = {"http": PlainPool, "https": SecurePool}
    return pool
