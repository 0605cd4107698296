"""Models on a web server: ``https://HOST/PATH/`` (and ``http://``) read in place.

A URL ending with ``/`` names a folder model whose files come from the server's
directory index, walked recursively (:mod:`omsign.sources._http_index`: nginx and
Apache autoindex pages, Python's ``http.server``, nginx's JSON index), every link
checked. A URL without the ``/`` names a single file, or a folder when the server
answers with a redirect to the same URL plus ``/``; any other redirect is refused naming
its target (give the final URL). Looking up chosen files (partial verification) needs
no listing: each is asked for by name.

Each file is pinned to the version listed and every read is checked against it
(:mod:`omsign.sources._http_client`: strong ``ETag`` or ``Last-Modified``, conditional
ranged ``GET``), so a file replaced mid-run fails the run naming it.

No listing at the model's URL (``404``, ``403``, a page that is not HTML or JSON) is an
environment error saying how to serve one; a listing refused link by link, a listed file
the server refuses or no longer has, are model errors (a failed verification). Plain
``http://`` is accepted, with a warning once per process and host: a verification still
fails on any byte changed in transit, but a digest or signature made over plain HTTP
covers whatever was served.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from omsign.errors import ModelError, StorageAccessError, UsageError
from omsign.hashing import DEFAULT_IGNORES, normalize_ignore
from omsign.sources._http_client import (
    HEADS,
    HttpEntry,
    HttpReader,
    drain,
    pin,
    request,
    status_error,
    take,
)
from omsign.sources._http_index import MAX_PAGE_BYTES, check_name, clip, quote_name, walk

__all__ = ["HttpSource", "open_source"]

logger = logging.getLogger("omsign")

_LISTING_HINT = (
    "serve the folder with a directory index (nginx: autoindex on; Apache: Options "
    "+Indexes; or python -m http.server), or give a local copy"
)

_WARNED: set[str] = set()
_WARNED_LOCK = threading.Lock()


def _warn_plain(url: str) -> None:
    host = urlsplit(url).netloc
    with _WARNED_LOCK:
        if host in _WARNED:
            return
        _WARNED.add(host)
    logger.warning(
        "http://%s: plain HTTP: a verification still fails on any byte changed in transit, "
        "but a digest or signature made over it covers whatever was served (use https://)",
        host,
    )


def _fetch_page(url: str, root: str) -> tuple[bytes, str]:
    """One listing page: (body, content type). The model's own page failing is an
    environment error; a folder inside it failing is a model error."""
    accept = {"Accept": "application/json, text/html;q=0.9"}
    response = request("GET", url, accept, most=MAX_PAGE_BYTES + 1)
    try:
        if response.status != 200:
            if url != root:
                error = status_error(url, response)
                raise error if isinstance(error, ModelError) else ModelError(f"{url}: not found")
            raise StorageAccessError(
                f"{url}: no directory listing (HTTP {response.status} {clip(response.reason)})",
                hint=_LISTING_HINT,
            )
        body = take(response, MAX_PAGE_BYTES + 1)
    finally:
        drain(response)
    if len(body) > MAX_PAGE_BYTES:
        raise ModelError(f"{url}: the listing is larger than {MAX_PAGE_BYTES >> 20} MiB")
    if response.headers.get("Content-Encoding", "identity").lower() != "identity":
        raise ModelError(f"{url}: the server sends the listing content-coded, not as it is")
    content_type = response.headers.get("Content-Type", "")
    if url == root and content_type.split(";")[0].strip().lower() not in (
        "text/html",
        "application/xhtml+xml",
        "application/json",
    ):
        raise StorageAccessError(
            f"{url}: not a directory listing ({clip(content_type) or 'no content type'})",
            hint=_LISTING_HINT,
        )
    return body, content_type


def _ignored(name: str, ignores: Sequence[str]) -> bool:
    return any(name == i or name.startswith(i + "/") for i in ignores)


class HttpSource:
    """A model on a web server (see :class:`omsign.sources.ModelSource`)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if not parts.hostname or parts.query or parts.fragment or "@" in parts.netloc:
            raise UsageError(f"{url}: expected {parts.scheme}://HOST/PATH, with no query or user")
        if parts.scheme == "http":
            _warn_plain(url)
        if not parts.path:
            url += "/"  # the server's root folder
        self.path: Path | None = None
        self.link_policy = None
        self.is_dir = url.endswith("/") or self._probe(url)
        self.location = url if not self.is_dir or url.endswith("/") else url + "/"
        self.key = self.location
        last = urlsplit(self.location).path.rstrip("/").rsplit("/", 1)[-1]
        self.name = unquote(last) or parts.hostname

    @staticmethod
    def _probe(url: str) -> bool:
        """Whether ``url`` is a folder (its server redirects to it with a ``/``) or a file.

        Raises:
            ModelError: nothing there.
            StorageAccessError: refused, or redirected elsewhere.
        """
        response = request("HEAD", url)
        drain(response)
        status = response.status
        if 300 <= status < 400:
            target = clip(urljoin(url, response.headers.get("Location", "")))
            if target == url + "/":
                return True
            raise StorageAccessError(
                f"{url}: the server redirects to {target}; redirects are not followed",
                hint="give the URL it redirects to",
            )
        if status == 404:
            raise ModelError(f"{url}: no such file or folder")
        if status != 200:
            raise StorageAccessError(
                f"{url}: the server refused the request (HTTP {status} {clip(response.reason)})"
            )
        return False

    def exists(self) -> bool:
        """Always true: a missing model is refused when it is listed."""
        return True

    def _entry(self, name: str, url: str) -> HttpEntry:
        try:
            pinned = pin(url)
        except FileNotFoundError:
            raise ModelError(f"{url}: listed, but the server has no such file") from None
        return HttpEntry(name, url, pinned.size, pinned)

    def _pinned(self, names: Sequence[str]) -> list[HttpEntry]:
        urls = [self.location + quote_name(n) for n in names]
        with ThreadPoolExecutor(max_workers=HEADS, thread_name_prefix="omsign-head") as pool:
            return list(pool.map(self._entry, names, urls))

    def entries(
        self,
        *,
        ignore_paths: Sequence[str] = (),
        allow_symlinks: bool = False,
        names: Sequence[str] | None = None,
        keep: Sequence[str] = (),
    ) -> list[HttpEntry]:
        """Lists the files from the server's index (or looks up ``names`` only), pinned.

        A web server shows no links: ``allow_symlinks`` changes nothing.
        """
        del allow_symlinks
        if not self.is_dir:
            try:
                pinned = pin(self.location)
            except FileNotFoundError:
                raise ModelError(f"{self.location}: no such file") from None
            return [HttpEntry(self.name, self.location, pinned.size, pinned)]
        if names is not None:
            return self._lookup(sorted(names))
        ignores = [*DEFAULT_IGNORES, *(normalize_ignore(i) for i in ignore_paths)]
        # A kept name (a signed file) is listed even under an ignored folder: so are its folders.
        kept = {*keep, *(n.rsplit("/", i)[0] for n in keep for i in range(1, n.count("/") + 1))}
        listed = walk(
            self.location,
            lambda url: _fetch_page(url, self.location),
            lambda name: name not in kept and _ignored(name, ignores),
        )
        return sorted(self._pinned(listed), key=lambda e: e.name)

    def _lookup(self, names: Sequence[str]) -> list[HttpEntry]:
        out = []
        for name in names:
            for part in name.split("/"):
                check_name(part, self.location)
            url = self.location + quote_name(name)
            try:
                pinned = pin(url)
            except FileNotFoundError:
                continue
            out.append(HttpEntry(name, url, pinned.size, pinned))
        return out

    def reader(self) -> HttpReader:
        """A picklable reader of this server's pinned files."""
        return HttpReader()


def open_source(name: str, link_policy: Any = None) -> HttpSource:
    """The model source of an ``https://`` or ``http://`` URL (no links there).

    Raises:
        UsageError: the URL is malformed.
        StorageAccessError: the server cannot be reached or its certificate is not trusted.
    """
    del link_policy
    return HttpSource(name)
