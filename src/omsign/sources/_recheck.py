"""Looking objects up again once a run has read them (see :mod:`omsign.sources._fsspec`).

Every range was read from the pinned version only; this last look-up makes a model
changed at any point of the run a failed verification rather than a digest of what is no
longer there. Where the store lists in pages (S3), the objects are first compared with
one listing of the prefix they share: a page of up to 1,000 objects costs one request
where a look-up costs one per object, and the listing is cut off at a quarter of the
look-ups it replaces; it lists versions only when an object was pinned to one. An object
the listing does not show exactly as pinned (changed, gone, or beyond the pages read) is
then looked up by itself, which decides and names it; a listing that fails leaves every
object to its own look-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from omsign.hashing._io import ChangedWhileHashingError
from omsign.sources._stores import ObjectStore, access_error

if TYPE_CHECKING:
    from omsign.sources._fsspec import ObjectEntry

__all__ = ["check_objects"]

_LOOKUPS = 16  # objects looked up at once
_PAGE = 1000  # objects per page of a listing (S3's maximum and default)
_SHARE = 4  # a listing costs at most 1/_SHARE of the look-ups it replaces (at least a page)


def check_objects(store: ObjectStore, fs: Any, objects: Sequence[ObjectEntry]) -> None:
    """Fails unless every object is still the size and version it was pinned to.

    Raises:
        ChangedWhileHashingError: an object was deleted or is another version now.
        StorageAccessError: a look-up failed.
    """
    todo = list(objects)
    if len(todo) > 1 and store.pages_listing:
        todo = _not_shown_by_listing(store, fs, todo)
    if len(todo) == 1:
        look_up_again(store, fs, todo[0])
    elif todo:
        with ThreadPoolExecutor(min(_LOOKUPS, len(todo))) as pool:
            for _ in pool.map(lambda e: look_up_again(store, fs, e), todo):
                pass


def _not_shown_by_listing(
    store: ObjectStore, fs: Any, objects: list[ObjectEntry]
) -> list[ObjectEntry]:
    """The objects one listing of their common prefix does not show exactly as pinned."""
    keys = [e.key for e in objects]
    shared = _common_prefix(keys)
    limit = max(_PAGE, len(objects) * _PAGE // _SHARE)
    try:
        versions = any(e.pinned.version for e in objects)
        listed = dict(store.list(fs, shared, limit, versions=versions))
    except Exception:  # the look-ups decide, and report what goes wrong
        return objects
    return [e for e in objects if listed.get(e.key) != e.pinned]  # size, version, ETag


def _common_prefix(keys: Sequence[str]) -> str:
    """The deepest ``BUCKET[/FOLDER...]`` holding every key (keys share one bucket)."""
    parts = [k.split("/")[:-1] for k in keys]
    shared = parts[0]
    for p in parts[1:]:
        n = 0
        while n < min(len(shared), len(p)) and shared[n] == p[n]:
            n += 1
        shared = shared[:n]
    return "/".join(shared)


def look_up_again(store: ObjectStore, fs: Any, e: ObjectEntry) -> None:
    """Fails unless the object is still the size and version it was listed with."""
    try:
        now = store.current(fs, e.key)
    except FileNotFoundError:
        raise ChangedWhileHashingError(
            f"{e.url}: object deleted while the model was read"
        ) from None
    except Exception as exc:
        raise access_error(exc, e.url, reading=True) from None
    if now is None or now.size != e.size or not e.pinned.same_object(now):
        raise ChangedWhileHashingError(
            f"{e.url}: object replaced while the model was read "
            f"(listed {e.pinned.describe()}, now {now.describe() if now else 'gone'})"
        )
