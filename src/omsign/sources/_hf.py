"""The Hugging Face cache: ``hf://ORG/NAME[@REVISION]`` names and snapshot links.

In the cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
``$XDG_CACHE_HOME/huggingface/hub`` or ``~/.cache/huggingface/hub``) a repository lives in
``models--ORG--NAME/`` with ``blobs/`` (the content), ``refs/<branch>`` (a commit hash)
and ``snapshots/<commit>/`` (the files, as symbolic links into ``blobs/``). A link in a
snapshot counts as the file it points to only when its fully resolved target stays
inside that repository's folder; every other link is refused as usual. Nothing here
uses the network or imports ``huggingface_hub``.

As a model source (:func:`open_source`), ``hf://ORG/NAME[@REVISION]`` is the snapshot
folder read as a local model, named ``NAME``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard

from omsign.errors import ModelError, UsageError
from omsign.hashing import LinkPolicy

if TYPE_CHECKING:
    from omsign.sources._local import LocalSource

__all__ = [
    "HF_SCHEME",
    "hub_cache_dir",
    "is_hf_name",
    "open_source",
    "resolve_hf_name",
    "snapshot_link_policy",
]

HF_SCHEME = "hf://"
_REPO_PREFIXES = ("models--", "datasets--", "spaces--")
_TYPES = {"models": "models", "datasets": "datasets", "spaces": "spaces"}
_COMMIT = re.compile(r"[0-9a-f]{40}")
_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def is_hf_name(model: object) -> TypeGuard[str]:
    """True for a ``hf://`` model name (a string, not a path)."""
    return isinstance(model, str) and model.startswith(HF_SCHEME)


def hub_cache_dir() -> Path:
    """The hub cache folder, resolved from the environment as ``huggingface_hub`` does."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface" / "hub"


def _parse(name: str) -> tuple[str, str, str, str]:
    """``hf://[TYPE/]ORG/NAME[@REV]`` -> (type, org, name, revision)."""
    body = name[len(HF_SCHEME) :]
    body, _, revision = body.partition("@")
    parts = body.strip("/").split("/")
    repo_type = "models"
    if len(parts) == 3 and parts[0] in _TYPES:
        repo_type = _TYPES[parts.pop(0)]
    if len(parts) != 2 or not all(_PART.fullmatch(p) for p in parts):
        raise UsageError(f"{name}: expected hf://ORG/NAME[@REVISION]")
    revision = revision or "main"
    if any(p in ("", ".", "..") for p in revision.split("/")) or "\\" in revision:
        raise UsageError(f"{name}: invalid revision {revision!r}")
    return repo_type, parts[0], parts[1], revision


def resolve_hf_name(name: str) -> Path:
    """Finds the local snapshot folder of ``hf://ORG/NAME[@REVISION]`` (no network).

    ``REVISION`` is a branch or tag name found under ``refs/`` (default ``main``) or a
    full commit hash; ``hf://datasets/ORG/NAME`` and ``hf://spaces/ORG/NAME`` name other
    repository types.

    Raises:
        UsageError: the name is malformed.
        ModelError: the repository or revision is not in the local cache.
    """
    repo_type, org, repo, revision = _parse(name)
    cache = hub_cache_dir()
    folder = cache / f"{repo_type}--{org}--{repo}"
    if not folder.is_dir():
        raise ModelError(
            f"{name}: not in the Hugging Face cache {cache}; download it first "
            f"(huggingface-cli download {org}/{repo})"
        )
    commit = revision
    ref = folder / "refs" / revision
    if ref.is_file():
        with ref.open("rb") as f:  # a commit hash: never read more than a few bytes
            commit = f.read(128).decode("ascii", errors="replace").strip()
    if not _COMMIT.fullmatch(commit):
        raise ModelError(f"{name}: revision {revision!r} is not a cached branch, tag or commit")
    snapshot = folder / "snapshots" / commit
    if not snapshot.is_dir():
        raise ModelError(f"{name}: snapshot {commit} is not in the local cache {folder}")
    return snapshot


def _repo_folder(model: Path) -> Path | None:
    """The ``models--ORG--NAME`` folder when ``model`` is in a cache snapshot, else None."""
    path = Path(os.path.abspath(model))
    for parent in [path, *path.parents]:
        grand = parent.parent
        if (
            grand.name == "snapshots"
            and grand.parent.name.startswith(_REPO_PREFIXES)
            and (grand.parent / "blobs").is_dir()
        ):
            return grand.parent
    return None


def snapshot_link_policy(model: Path) -> LinkPolicy | None:
    """A link policy for a Hugging Face cache snapshot, or None for any other model.

    The policy permits a link only when its fully resolved target lies inside the
    repository's own cache folder (``models--ORG--NAME/``), so a snapshot file may point
    into ``blobs/`` but never elsewhere.
    """
    repo = _repo_folder(model)
    if repo is None:
        return None
    real_repo = os.path.realpath(repo)
    prefix = real_repo.rstrip(os.sep) + os.sep

    def permit(_link: Path, target: Path) -> bool:
        resolved = os.path.realpath(target)
        return resolved.startswith(prefix)

    return permit


def open_source(name: str, link_policy: LinkPolicy | None = None) -> LocalSource:
    """The model source of ``hf://[TYPE/]ORG/NAME[@REVISION]``: its cached snapshot.

    Raises:
        UsageError: the name is malformed.
        ModelError: the repository or revision is not in the local cache.
    """
    from omsign.sources._local import LocalSource

    source = LocalSource(resolve_hf_name(name), link_policy)
    source.name = _parse(name)[2]
    return source
