"""Where copies of a lineage's models and datasets are looked for, found by root digest.

A search place is a folder (scanned to a bounded depth), a file, ``hf://`` (every
snapshot in the local Hugging Face cache) or ``hf://[datasets/]ORG/NAME[@REVISION]``
(one snapshot). A signed model or dataset there (``DIR/model.sig``, or ``FILE.sig``
beside a file) is indexed by the root digest its signature claims; nothing is trusted
for that, the copy is verified afterwards. A dataset may also be unsigned: folders and
files without a signature are hashed the way ``omsign digest`` hashes, only when a
dataset is still missing, each at most once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from omsign._paths import default_signature
from omsign.errors import Error, UsageError
from omsign.options import PathLike, Runtime

__all__ = ["HF_CACHE", "Candidate", "SearchIndex"]

logger = logging.getLogger("omsign")

HF_CACHE = "hf://"
_MAX_ENTRIES = 20_000  # directory entries looked at, over all places
_MAX_HASHED = 64  # unsigned folders or files hashed, over a whole lineage
_SKIP = frozenset({"model.sig", "model.sig.d", "claims.jsonl", "blobs", "refs"})


@dataclass(frozen=True)
class Candidate:
    """A folder or file that may be a copy of a lineage's model or dataset.

    Attributes:
        path: the folder or file.
        location: how to name it (the path, or ``hf://ORG/NAME@COMMIT``).
        signature: its signature at the default path, if there is one.
        claimed: the root digest its signature claims (hex, not verified), if readable.
        depth: folder levels below its search place.
    """

    path: Path
    location: str
    signature: Path | None
    claimed: str | None
    depth: int


def _signature(path: Path, *, follow: bool = False) -> Path | None:
    """The signature at the default path; a link only where ``follow`` (a hub snapshot,
    whose files are all links into its blobs). What it claims is verified later."""
    sig = default_signature(path)
    return sig if sig.is_file() and (follow or not sig.is_symlink()) else None


def _claimed(signature: Path | None) -> str | None:
    """The root digest a signature claims, unverified; None when it cannot be read."""
    if signature is None:
        return None
    from omsign.inspect import describe_signature

    try:
        digest = describe_signature(signature).root_digest
    except Error as exc:
        logger.debug("%s: not indexed: %s", signature, exc)
        return None
    return digest.removeprefix("sha256:") if digest else None


def _hf_snapshots(place: str) -> Iterator[tuple[Path, str]]:
    """The snapshot folders a ``hf://`` place names, with their ``hf://`` names."""
    from omsign.sources._hf import hub_cache_dir, resolve_hf_name

    if place != HF_CACHE:
        yield resolve_hf_name(place), place
        return
    cache = hub_cache_dir()
    if not cache.is_dir():
        logger.warning("%s: no Hugging Face cache to search", cache)
        return
    for repo in sorted(cache.iterdir()):
        kind, _, rest = repo.name.partition("--")
        org, _, name = rest.partition("--")
        if kind not in ("models", "datasets") or not org or not name:
            continue
        snapshots = repo / "snapshots"
        if not snapshots.is_dir():
            continue
        prefix = "" if kind == "models" else "datasets/"
        for snap in sorted(snapshots.iterdir()):
            if snap.is_dir() and not snap.is_symlink():
                yield snap, f"hf://{prefix}{org}/{name}@{snap.name}"


class SearchIndex:
    """The copies found among the search places, by the root digest they claim or hash to.

    Args:
        places: folders, files, ``hf://`` or ``hf://ORG/NAME[@REVISION]``.
        depth: folder levels scanned below each folder place (0: the place alone).
        runtime: how unsigned candidates are hashed.

    Raises:
        UsageError: a place does not exist, or the depth is negative.
    """

    def __init__(
        self, places: Sequence[PathLike], *, depth: int = 2, runtime: Runtime | None = None
    ) -> None:
        if depth < 0:
            raise UsageError(f"search depth must be 0 or more, not {depth}", option="search_depth")
        self.places = tuple(str(p) for p in places)
        self._runtime = runtime or Runtime()
        self._budget = _MAX_ENTRIES
        self._hashed: dict[Path, str | None] = {}
        self.candidates: list[Candidate] = []
        for place in self.places:
            self._scan_place(place, depth)

    def _add(self, path: Path, location: str, depth: int, *, follow: bool = False) -> Candidate:
        sig = _signature(path, follow=follow)
        found = Candidate(path, location, sig, _claimed(sig), depth)
        self.candidates.append(found)
        return found

    def _scan_place(self, place: str, depth: int) -> None:
        if place.startswith(HF_CACHE):
            for snap, name in _hf_snapshots(place):
                self._add(snap, name, 0, follow=True)
            return
        path = Path(place)
        if not path.exists():
            raise UsageError(f"{place}: no such search place", option="search")
        if path.is_dir():
            self._scan_dir(path, depth)
        else:
            self._add(path, str(path), 0)

    def _scan_dir(self, root: Path, depth: int) -> None:
        """Breadth-first to ``depth``; a signed folder is a model, not looked into."""
        level = [root]
        for d in range(depth + 1):
            below: list[Path] = []
            for folder in level:
                if self._add(folder, str(folder), d).signature is not None or d == depth:
                    continue
                below.extend(self._children(folder, d + 1))
            level = below

    def _children(self, folder: Path, depth: int) -> list[Path]:
        """The sub-folders to scan; signed and unsigned files become candidates here."""
        try:
            names = sorted(os.listdir(folder))
        except OSError as exc:
            logger.warning("%s: cannot list (%s); not searched", folder, exc.strerror)
            return []
        if len(names) > self._budget:
            logger.warning("%s: search stopped: more than %d entries", folder, _MAX_ENTRIES)
            names = names[: self._budget]
        self._budget -= len(names)
        dirs = []
        for name in names:
            path = folder / name
            if name.startswith(".") or name in _SKIP or name.endswith(".sig"):
                continue
            if path.is_symlink():
                continue
            if path.is_dir():
                dirs.append(path)
            elif path.is_file():
                self._add(path, str(path), depth)
        return dirs

    def signed(self, digest: str) -> list[Candidate]:
        """The copies whose signature claims ``digest`` (hex), in search order."""
        return [c for c in self.candidates if c.claimed == digest]

    def _unsigned(self) -> list[Candidate]:
        """Candidates without a readable claim and without signed copies inside them."""
        signed = [c.path for c in self.candidates if c.claimed is not None]
        unsigned = [
            c
            for c in self.candidates
            if c.claimed is None and not any(s != c.path and c.path in s.parents for s in signed)
        ]
        # A place's own folder last: it is more often a shelf of copies than one of them.
        return sorted(unsigned, key=lambda c: (c.depth == 0, c.depth))

    def hashed(self, digest: str) -> list[Candidate]:
        """Unsigned copies whose content hashes to ``digest``, hashing as few as it can.

        Folders and files are hashed with the default settings (as ``omsign digest``),
        each at most once per index and at most a bounded number in all.
        """
        found = [c for c in self._unsigned() if self._hashed.get(c.path) == digest]
        if found:
            return found
        for cand in self._unsigned():
            if cand.path in self._hashed:
                continue
            if len(self._hashed) >= _MAX_HASHED:
                logger.warning("search: stopped hashing unsigned copies after %d", _MAX_HASHED)
                break
            self._hashed[cand.path] = value = self._digest(cand.path)
            if value == digest:
                return [cand]
        return []

    def _digest(self, path: Path) -> str | None:
        from omsign._sign import digest as compute

        try:
            return compute(path, runtime=self._runtime).removeprefix("sha256:")
        except Error as exc:
            logger.debug("%s: not hashed: %s", path, exc)
            return None
