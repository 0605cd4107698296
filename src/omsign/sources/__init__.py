"""Where a model's bytes are: the :class:`ModelSource` protocol and :func:`resolve_source`.

A source names the model (for the signed subject and for messages), lists its files as
entries (name, size and an opaque change stamp) and reads them through a reader that
detects a change since the listing. ``sign``, ``digest``, ``verify``, ``open_verified``
and the digest cache reach a model only through its source.

Sources: a local file or folder (:mod:`omsign.sources._local`), a Hugging Face cache
snapshot named ``hf://ORG/NAME[@REVISION]`` (:mod:`omsign.sources._hf`) and object
storage, ``s3://``, ``gs://``, ``az://`` (:mod:`omsign.sources._fsspec`), and a web
server's directory listing, ``https://`` (:mod:`omsign.sources._http`), whose ``path`` is
None. A new source (``oci://``) is one module with an ``open_source(name,
link_policy)`` function and one line in :data:`SCHEMES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from omsign.options import PathLike

if TYPE_CHECKING:
    from omsign.hashing import LinkPolicy, Reader

__all__ = ["SCHEMES", "Entry", "ModelSource", "resolve_source"]

# URL scheme -> the module whose ``open_source(name, link_policy)`` opens such a model.
SCHEMES: dict[str, str] = {
    "hf://": "omsign.sources._hf",
    "oci://": "omsign.sources._oci",
    "s3://": "omsign.sources._fsspec",
    "gs://": "omsign.sources._fsspec",
    "gcs://": "omsign.sources._fsspec",
    "az://": "omsign.sources._fsspec",
    "abfs://": "omsign.sources._fsspec",
    "https://": "omsign.sources._http",
    "http://": "omsign.sources._http",
}


class Entry(Protocol):
    """One file of a model as listed."""

    @property
    def name(self) -> str:
        """Canonical model-relative name (``/``-separated); a single file's basename."""
        ...

    @property
    def size(self) -> int:
        """Size in bytes when listed."""
        ...

    @property
    def stamp(self) -> Hashable:
        """Opaque change stamp: equal stamps mean the file was not changed in between."""
        ...


class ModelSource(Protocol):
    """Where a model's files are, and how to list them.

    Attributes:
        name: the model's name as signed (the subject name: the folder or file name).
        location: where the model is, for messages (a path or a URL).
        key: a stable identity for caches (an absolute path or a URL).
        path: the local file or folder, or None for a model that is not on this machine.
        is_dir: the model is a folder (else a single file).
        link_policy: the symbolic links this source follows besides the signed settings.
    """

    name: str
    location: str
    key: str
    path: Path | None
    is_dir: bool
    link_policy: LinkPolicy | None

    def entries(
        self,
        *,
        ignore_paths: Sequence[str] = (),
        allow_symlinks: bool = False,
        names: Sequence[str] | None = None,
        keep: Sequence[str] = (),
    ) -> Sequence[Entry]:
        """Lists the model's files, sorted by name (OMS 6.1, 6.2).

        Args:
            ignore_paths: model-relative paths to leave out.
            allow_symlinks: follow symbolic links.
            names: look up only these model-relative names (absent ones are left out).
            keep: names listed even where ``ignore_paths`` or the default ignores would
                leave them out (the files a signature lists).

        Raises:
            ModelError: the model cannot be listed (missing, bad names, refused links).
        """
        ...

    def reader(self) -> Reader:
        """A picklable reader for the listed entries: byte ranges, a change detected.

        It travels with the hashing work to whatever runs it (threads, processes).
        """
        ...


def resolve_source(model: PathLike, *, link_policy: LinkPolicy | None = None) -> ModelSource:
    """The source of ``model``: a registered URL scheme, else a local path.

    Args:
        model: a path, or a URL of a registered scheme (``hf://ORG/NAME``,
            ``s3://BUCKET/PREFIX``).
        link_policy: links to follow besides the signed settings (default: the
            source's own rule, e.g. a Hugging Face snapshot's links into its blobs).

    Raises:
        UsageError: the name is malformed.
        ModelError: the model does not exist.
    """
    if isinstance(model, str):
        for scheme, module in SCHEMES.items():
            if model.startswith(scheme):
                opened: ModelSource = importlib.import_module(module).open_source(
                    model, link_policy
                )
                return opened
    from omsign.sources._local import LocalSource

    return LocalSource(Path(model), link_policy)
