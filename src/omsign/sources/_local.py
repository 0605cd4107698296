"""A model in a local file or folder: today's enumeration and checked reads.

Files are listed by :func:`omsign.hashing.enumerate_model` (or looked up by name with
:func:`omsign.hashing.entries_for`) and read by the hashing engine's checked reader:
each file is opened without following links, checked to be the very file listed
(device and inode) and checked again after hashing. An entry's change stamp is its
size, modification time, inode, change time and device. A folder inside a Hugging Face
cache snapshot follows the links that stay inside its repository's cache folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from omsign.hashing import (
    FileEntry,
    LinkPolicy,
    LocalReader,
    Reader,
    entries_for,
    enumerate_model,
)

__all__ = ["LocalSource"]


class LocalSource:
    """A local file or folder (see :class:`omsign.sources.ModelSource`)."""

    def __init__(self, path: Path, link_policy: LinkPolicy | None = None) -> None:
        from omsign.sources._hf import snapshot_link_policy

        self.path: Path | None = path
        self._path = path
        self.name = os.path.basename(os.path.abspath(path)) or "model"
        self.location = str(path)
        self.key = os.path.abspath(path)
        self.is_dir = path.is_dir()
        self.link_policy = link_policy if link_policy is not None else snapshot_link_policy(path)

    def exists(self) -> bool:
        """Whether anything (a file, folder or link) is at the path."""
        return self._path.exists() or self._path.is_symlink()

    def entries(
        self,
        *,
        ignore_paths: Sequence[str] = (),
        allow_symlinks: bool = False,
        names: Sequence[str] | None = None,
        keep: Sequence[str] = (),
    ) -> list[FileEntry]:
        """Lists the files (or looks up ``names`` only, reading nothing else)."""
        if names is not None and self.is_dir:
            return entries_for(
                self._path,
                sorted(names),
                allow_symlinks=allow_symlinks,
                link_policy=self.link_policy,
            )
        return enumerate_model(
            self._path,
            ignore_paths=ignore_paths,
            allow_symlinks=allow_symlinks,
            link_policy=self.link_policy,
            keep=keep,
        )

    def reader(self) -> Reader:
        """The hashing engine's checked local reader."""
        return LocalReader()
