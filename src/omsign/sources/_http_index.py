"""A web server's directory listing read as a model's file list: hostile input, bounded.

A model served over HTTP(S) is a folder URL whose files come from the server's
directory index (:mod:`omsign.sources._http`). This module reads one page of such an
index into the entries it names, and walks a folder through its pages. Understood:
HTML autoindex pages (nginx ``autoindex on``, Apache ``mod_autoindex``, Python's
``http.server``) and nginx's JSON index (``autoindex_format json``).

The page comes from a server the signature does not vouch for, so every link is
checked before anything is followed (a link chooses what is read):

- A link is resolved against the page's URL; one to another scheme, host or port is
  refused, and so is one with a query string or fragment, except a link to the page
  itself (Apache's column-sorting links), which is navigation and skipped.
- A link to the page itself or to a folder above it (``../``, Apache's "Parent
  Directory") is navigation and skipped; any other link must name a direct child of
  the page's folder (one path segment, a trailing ``/`` for a folder), else it is
  refused as leading outside the listed folder.
- A name is percent-decoded (UTF-8, strictly) and must be a valid model-relative name
  (OMS 6.1): not empty, ``.`` or ``..``, no ``/``, ``\\`` or NUL once decoded.
- The same link twice is one entry (Apache can link the icon and the name); two links
  naming the same file differently (``a%62`` and ``ab``, a file and a folder) are
  refused.
- Each page is read up to :data:`MAX_PAGE_BYTES`, its links found in one pass (not by
  :mod:`html.parser`, quadratic on some malformed pages); a walk stops with an error past
  :data:`MAX_FILES` files, :data:`MAX_PAGES` folders or :data:`MAX_DEPTH` levels.

Refusals are :class:`~omsign.errors.ModelError` naming the page and the link: while
verifying they fail the verification (the model as served is not the model signed).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlsplit

from omsign.errors import ModelError

__all__ = [
    "MAX_DEPTH",
    "MAX_FILES",
    "MAX_PAGES",
    "MAX_PAGE_BYTES",
    "Link",
    "check_name",
    "clip",
    "parse_page",
    "quote_name",
    "walk",
]

MAX_PAGE_BYTES = 16 << 20  # one listing page (an nginx page of 100,000 files is ~15 MB)
MAX_FILES = 100_000  # files listed at most under one model URL
MAX_PAGES = 10_000  # folders listed at most
MAX_DEPTH = 64  # folder levels at most


@dataclass(frozen=True, slots=True)
class Link:
    """One entry of a listing page.

    Attributes:
        name: the decoded name (one path segment).
        is_dir: a folder (listed with a trailing ``/``).
    """

    name: str
    is_dir: bool


def clip(text: str, limit: int = 200) -> str:
    """Server-given text (a link, a header) cut to ``limit`` characters for a message."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def check_name(name: str, where: str) -> None:
    """A listed name must be one valid model-relative path segment (OMS 6.1).

    Raises:
        ModelError: it is empty, ``.``, ``..`` or holds ``/``, ``\\`` or NUL.
    """
    if name in ("", ".", "..") or any(c in name for c in "/\\\0"):
        raise ModelError(
            f"{where}: the listing names {clip(repr(name))}, not a valid model file name"
        )


def quote_name(name: str) -> str:
    """A model-relative name as a URL path (each segment percent-encoded)."""
    return "/".join(quote(part, safe="") for part in name.split("/"))


# A tag's end: text up to ``>`` where quoted values may hold ``>`` (one pass, no backtracking
# into the quotes: their characters are not in the unquoted class).
_TAG_END = re.compile(r"""[^"'>]*(?:(?:"[^"]*"|'[^']*')[^"'>]*)*>""")
_ATTR = re.compile(r"""([^\s=/>]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]+))?""")


def _anchors(text: str) -> list[str]:
    """The ``href`` of every ``<a>`` (entities decoded), in one pass over the page.

    Python's :class:`html.parser.HTMLParser` takes time quadratic in the page on some
    malformed input (``"<a " * 66_000``, 200 KB, takes minutes): a listing is hostile, so
    its tags are found here by hand. A comment is skipped; a tag (or comment) the page
    does not close ends the page, as at the end of an HTML document.
    """
    hrefs: list[str] = []
    pos = 0
    while (start := text.find("<", pos)) >= 0:
        if text.startswith("<!--", start):
            end = text.find("-->", start + 4)
            if end < 0:
                break
            pos = end + 3
            continue
        match = _TAG_END.match(text, start + 1)
        if match is None:
            break
        pos = match.end()
        tag = text[start + 1 : pos - 1]
        if tag[:1] not in ("a", "A") or (len(tag) > 1 and not tag[1].isspace()):
            continue
        for attr in _ATTR.finditer(tag, 1):
            if attr.group(1).lower() == "href" and attr.group(2) is not None:
                value = attr.group(2)
                if value[:1] in ("'", '"'):
                    value = value[1:-1]
                hrefs.append(html.unescape(value))
                break
    return hrefs


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _link(href: str, page: str) -> Link | None:
    """The entry an ``href`` of ``page`` names; None for navigation (parent, sorting).

    Raises:
        ModelError: the link leads outside the page's folder or names an invalid file.
    """
    href = href.strip()
    if not href or href.startswith("#"):
        return None
    try:
        target = urljoin(page, href)
        parts = urlsplit(target)
        same_origin = _origin(target) == _origin(page)
    except ValueError:
        raise ModelError(f"{page}: the listing has a malformed link {clip(repr(href))}") from None
    if not same_origin:
        raise ModelError(f"{page}: the listing links outside the model ({clip(href)})")
    base = urlsplit(page).path
    path = parts.path or "/"
    above = path == base or (path.endswith("/") and base.startswith(path))
    if above and not parts.fragment:
        return None  # the page itself (a sorting link), or a folder above it
    if parts.query or parts.fragment:
        raise ModelError(f"{page}: the listing has a link with a query or fragment ({clip(href)})")
    if not path.startswith(base):
        raise ModelError(f"{page}: the listing links outside the model ({clip(href)})")
    rest = path[len(base) :]
    is_dir = rest.endswith("/")
    segment = rest[:-1] if is_dir else rest
    if "/" in segment or not segment:
        raise ModelError(f"{page}: the listing links outside its own folder ({clip(href)})")
    try:
        name = unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise ModelError(f"{page}: the listing names {clip(repr(href))}, not UTF-8") from None
    check_name(name, page)
    return Link(name, is_dir)


def _html(body: bytes, charset: str, page: str) -> list[str]:
    try:
        text = body.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        raise ModelError(f"{page}: the listing is not valid {charset or 'utf-8'} text") from None
    return _anchors(text)


def _json(body: bytes, page: str) -> list[Link]:
    """nginx's ``autoindex_format json``: ``[{"name": ..., "type": "file"|"directory"}]``."""
    try:
        items = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        raise ModelError(f"{page}: the JSON listing is not valid JSON") from None
    if not isinstance(items, list):
        raise ModelError(f"{page}: the JSON listing is not a list of entries")
    out = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        kind = item.get("type") if isinstance(item, dict) else None
        if not isinstance(name, str) or kind not in ("file", "directory"):
            raise ModelError(
                f"{page}: the JSON listing has an entry that is not a named file or folder"
            )
        check_name(name, page)
        out.append(Link(name, kind == "directory"))
    return out


def parse_page(body: bytes, content_type: str, page: str) -> list[Link]:
    """The entries of one listing page, checked as the module docstring says.

    Args:
        body: the page (at most :data:`MAX_PAGE_BYTES`).
        content_type: the response's ``Content-Type``.
        page: the page's URL (a folder URL, ending with ``/``).

    Raises:
        ModelError: a link is refused, a name repeats, or the page is malformed.
        ValueError: the content type is not a listing's (HTML or JSON).
    """
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    charset = ""
    for param in params.split(";"):
        key, _, value = param.strip().partition("=")
        if key.lower() == "charset":
            charset = value.strip().strip('"')
    if media == "application/json":
        links = _json(body, page)
        hrefs: Sequence[str] = [quote_name(x.name) + ("/" if x.is_dir else "") for x in links]
    elif media in ("text/html", "application/xhtml+xml"):
        hrefs = _html(body, charset, page)
    else:
        raise ValueError(media or "no content type")
    seen: dict[str, tuple[Link, str]] = {}
    for href in hrefs:
        link = _link(href, page)
        if link is None:
            continue
        target = urljoin(page, href.strip())
        known = seen.get(link.name)
        if known is not None:
            if known != (link, target):
                raise ModelError(f"{page}: the listing names {clip(repr(link.name))} twice")
            continue
        seen[link.name] = (link, target)
    return [link for link, _ in seen.values()]


Fetch = Callable[[str], tuple[bytes, str]]


def walk(root: str, fetch: Fetch, skip: Callable[[str], bool]) -> list[str]:
    """Every file under the folder URL ``root``, as model-relative names, sorted.

    Args:
        root: the model's folder URL (ending with ``/``).
        fetch: reads one folder page: its URL -> (body, content type).
        skip: names (files or folders) left out; a folder left out is not listed.

    Raises:
        ModelError: a page is refused, or the walk goes past a bound.
    """
    files: list[str] = []
    folders: list[tuple[str, int]] = [("", 0)]
    found = 1  # folders listed so far (read or waiting): a page may list many
    while folders:
        prefix, depth = folders.pop()
        url = root + quote_name(prefix.rstrip("/")) + "/" if prefix else root
        body, content_type = fetch(url)
        try:
            links = parse_page(body, content_type, url)
        except ValueError as exc:
            raise ModelError(f"{url}: not a directory listing ({clip(str(exc))})") from None
        for link in links:
            name = prefix + link.name
            if skip(name):
                continue
            if link.is_dir:
                if depth + 1 >= MAX_DEPTH:
                    raise ModelError(f"{url}: folders nested more than {MAX_DEPTH} deep")
                found += 1
                if found > MAX_PAGES:
                    raise ModelError(f"{root}: more than {MAX_PAGES} folders in the listing")
                folders.append((name + "/", depth + 1))
            else:
                files.append(name)
                if len(files) > MAX_FILES:
                    raise ModelError(f"{root}: more than {MAX_FILES} files in the listing")
    return sorted(files)
