"""Model enumeration (OMS 6.1 and 6.2): which files a model consists of, and their names.

The result is a sorted list of :class:`FileEntry`: the canonical model-relative name
(``/``-separated, code-point order) and what is needed to open exactly the file that
was seen (path, device, inode, size), so the hashing engine can check that the file it
opens is the one that was enumerated.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from omsign.errors import ModelError, UsageError

__all__ = [
    "DEFAULT_IGNORES",
    "FileEntry",
    "LinkPolicy",
    "entries_for",
    "enumerate_model",
    "normalize_ignore",
]

logger = logging.getLogger("omsign")

# OMS 6.2: excluded by default, matched as top-level components of the model root.
DEFAULT_IGNORES: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")

# Decides whether a symbolic link may be followed: (link path, resolved target) -> bool.
LinkPolicy = Callable[[Path, Path], bool]

# Deeper trees are refused rather than walked (real models nest a few levels).
MAX_DEPTH = 256
# Directory links followed in one walk. Links may legitimately reach a folder twice (each
# path is its own resource), so visits are not deduplicated; chained links could then
# multiply them exponentially, and this bound stops that.
MAX_LINKED_DIRECTORIES = 10_000
# Links reaching one folder through many paths would multiply the walk's work and its
# result far beyond what the model holds on disk (2,000 files and 200 links can make 20
# million entries). A directory is listed at most this many times in one walk ...
MAX_DIRECTORY_VISITS = 16
# ... and all repeated listings together list at most this many entries.
MAX_RELISTED_ENTRIES = 250_000


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One regular file of a model.

    Attributes:
        name: canonical model-relative name; the basename for a single-file model.
        path: the path to open (a followed link's own path; the target is checked by inode).
        size: size in bytes at enumeration time.
        device: ``st_dev`` of the file seen at enumeration time.
        inode: ``st_ino`` of the file seen at enumeration time.
        mtime_ns: modification time at enumeration time.
        ctime_ns: status change time at enumeration time.
        via_link: the file was reached through a symbolic link that policy allowed.
    """

    name: str
    path: str
    size: int
    device: int
    inode: int
    mtime_ns: int
    ctime_ns: int
    via_link: bool = False

    @property
    def stamp(self) -> tuple[int, int, int, int, int]:
        """Change stamp: size, modification time, inode, change time, device."""
        return (self.size, self.mtime_ns, self.inode, self.ctime_ns, self.device)


def normalize_ignore(entry: str) -> str:
    """Canonicalises a model-relative ignore path (OMS 6.2.1); rejects unsafe forms.

    Raises:
        UsageError: the path is absolute, escapes the root, or contains glob characters.
    """
    if not entry or entry.startswith("/") or "\\" in entry or "\0" in entry:
        raise UsageError(f"invalid ignore path {entry!r}: must be a relative '/'-separated path")
    if any(ch in entry for ch in "*?["):
        raise UsageError(f"invalid ignore path {entry!r}: glob characters are not allowed")
    parts = [p for p in entry.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UsageError(f"invalid ignore path {entry!r}: '..' is not allowed")
    if not parts:
        raise UsageError(f"invalid ignore path {entry!r}: it names the model root")
    return "/".join(parts)


def _check_name(name: str, where: Path) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ModelError(
            f"{where}: file name is not valid UTF-8 and cannot be signed (OMS 6.1.2)"
        ) from None


def _entry(name: str, path: str, st: os.stat_result, via_link: bool = False) -> FileEntry:
    return FileEntry(
        name, path, st.st_size, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, via_link
    )


@dataclass(frozen=True, slots=True)
class _Child:
    """A directory entry as stat'ed (without following links) through its parent's descriptor."""

    name: str
    path: Path
    stat: os.stat_result


def _replaced(path: Path) -> ModelError:
    return ModelError(f"{path}: was replaced or removed while the model was read")


def _refuse_special(path: Path, mode: int) -> ModelError:
    kind = (
        "FIFO"
        if stat.S_ISFIFO(mode)
        else "socket"
        if stat.S_ISSOCK(mode)
        else "device"
        if stat.S_ISBLK(mode) or stat.S_ISCHR(mode)
        else "special file"
    )
    return ModelError(f"{path}: is a {kind}, not a regular file; refusing to read it")


class _Walker:
    """Recursive enumeration with the symlink policy of OMS 6.1.1."""

    def __init__(
        self,
        root: Path,
        ignores: frozenset[str],
        allow_symlinks: bool,
        link_policy: LinkPolicy | None,
        keep: frozenset[str] = frozenset(),
    ) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.ignores = ignores
        # Names kept despite the ignores, and the folders that lead to them.
        self.keep = keep | {name[:i] for name in keep for i, c in enumerate(name) if c == "/"}
        self.allow_symlinks = allow_symlinks
        self.link_policy = link_policy
        self.entries: list[FileEntry] = []
        self.linked_directories = 0
        self.visits: dict[tuple[int, int], int] = {}
        self.relisted_entries = 0

    def _ignored(self, rel: str) -> bool:
        if rel in self.keep:
            return False
        if rel in self.ignores:
            return True
        # An ignored directory excludes its whole subtree.
        idx = rel.rfind("/")
        while idx > 0:
            if rel[:idx] in self.ignores:
                return True
            idx = rel.rfind("/", 0, idx)
        return False

    def _follow(self, path: Path, rel: str) -> os.stat_result | None:
        """Resolves a symlink allowed by policy; returns the target's stat or None to skip."""
        target = Path(os.path.realpath(path))
        permitted = self.link_policy is not None and self.link_policy(path, target)
        if not (self.allow_symlinks or permitted):
            raise ModelError(
                f"{path}: is a symbolic link; links are refused unless the signature allows them",
                option="allow_symlinks",
                hint="sign with {option} to follow links",
            )
        try:
            st = os.stat(path)
            resolved = os.stat(target)
        except OSError as exc:
            raise ModelError(f"{path}: broken symbolic link ({exc.strerror})") from None
        if (st.st_dev, st.st_ino) != (resolved.st_dev, resolved.st_ino):
            # The link changed between resolving and following it: what was checked
            # against the policy is not what would be read.
            raise ModelError(f"{path}: symbolic link changed while the model was read")
        if not permitted:
            inside = str(target) == self.real_root or str(target).startswith(
                self.real_root.rstrip("/") + "/"
            )
            if not inside:
                logger.warning("symbolic link %s points outside the model: %s", rel, target)
        return st

    def _list(
        self, directory: Path, seen: os.stat_result, via_link: bool, relisted: bool = False
    ) -> list[_Child]:
        """Lists a directory and stats its children through a descriptor of that very directory.

        The directory is opened without following links (unless it was reached through
        an allowed link) and must be the one stat'ed before, so a directory swapped for
        a link to elsewhere is reported instead of listed.
        """
        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
        if not via_link:
            flags |= getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(directory, flags)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                raise _replaced(directory) from None
            raise ModelError(f"{directory}: cannot list directory ({exc.strerror})") from None
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino):
                raise _replaced(directory)
            with os.scandir(fd) as it:
                names = [entry.name for entry in it]
            if relisted:
                self._count_relisted(directory, len(names))
            children = []
            for name in names:
                rel_path = directory / name
                try:
                    child = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    raise _replaced(rel_path) from None
                except OSError as exc:
                    raise ModelError(f"{rel_path}: cannot stat ({exc.strerror})") from None
                children.append(_Child(name, rel_path, child))
            return children
        except OSError as exc:
            raise ModelError(f"{directory}: cannot list directory ({exc.strerror})") from None
        finally:
            os.close(fd)

    def _visit(self, directory: Path, seen: os.stat_result) -> bool:
        """Counts a listing of ``directory``; True when it was listed before in this walk."""
        key = (seen.st_dev, seen.st_ino)
        visits = self.visits.get(key, 0) + 1
        if visits > MAX_DIRECTORY_VISITS:
            raise ModelError(
                f"{directory}: the same directory is reached through more than "
                f"{MAX_DIRECTORY_VISITS} paths of symbolic links; refusing a link structure "
                "this large"
            )
        self.visits[key] = visits
        return visits > 1

    def _count_relisted(self, directory: Path, size: int) -> None:
        self.relisted_entries += size
        if self.relisted_entries > MAX_RELISTED_ENTRIES:
            raise ModelError(
                f"{directory}: symbolic links reach the same directories so often that more "
                f"than {MAX_RELISTED_ENTRIES} entries would be listed again; refusing a link "
                "structure this large"
            )

    def walk(
        self,
        directory: Path,
        prefix: str,
        ancestors: frozenset[tuple[int, int]],
        seen: os.stat_result,
        via_link: bool = False,
    ) -> None:
        if len(ancestors) > MAX_DEPTH:
            raise ModelError(f"{directory}: directories nested deeper than {MAX_DEPTH} levels")
        relisted = self._visit(directory, seen)
        for child in self._list(directory, seen, via_link, relisted):
            rel = prefix + child.name
            if self._ignored(rel):
                continue
            _check_name(child.name, child.path)
            st, linked = child.stat, stat.S_ISLNK(child.stat.st_mode)
            if linked:
                followed = self._follow(child.path, rel)
                if followed is None:
                    continue
                st = followed
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    logger.warning("symbolic link cycle at %s; not followed", rel)
                    continue
                if linked:
                    self.linked_directories += 1
                    if self.linked_directories > MAX_LINKED_DIRECTORIES:
                        raise ModelError(
                            f"{self.root}: more than {MAX_LINKED_DIRECTORIES} links to "
                            "directories; refusing a link structure this large"
                        )
                self.walk(child.path, rel + "/", ancestors | {key}, st, linked)
            elif stat.S_ISREG(st.st_mode):
                self.entries.append(_entry(rel, str(child.path), st, linked))
            else:
                raise _refuse_special(child.path, st.st_mode)


def _warn_lookalikes(entries: Iterable[FileEntry]) -> None:
    """Warns about sibling names that some file systems cannot tell apart.

    Two names in one directory that are equal after Unicode normalisation (NFC/NFD) or
    case folding are distinct here but one file on macOS or Windows: a copy there keeps
    only one. Directories are compared too (``A/x`` and ``a/y`` collide as ``A``/``a``).
    """
    nodes: set[str] = set()
    for entry in entries:
        parts = entry.name.split("/")
        nodes.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    seen: dict[tuple[str, str], str] = {}
    for node in sorted(nodes):
        parent, _, base = node.rpartition("/")
        key = (parent, base.lower() if base.isascii() else _fold(base))
        first = seen.setdefault(key, node)
        if first != node:
            logger.warning(
                "%s and %s differ only in Unicode normalisation or letter case; some file "
                "systems cannot hold both, and a copy there may replace one with the other",
                first,
                node,
            )


def _fold(name: str) -> str:
    return unicodedata.normalize("NFD", unicodedata.normalize("NFD", name).casefold())


def enumerate_model(
    model: Path,
    *,
    ignore_paths: Iterable[str] = (),
    allow_symlinks: bool = False,
    link_policy: LinkPolicy | None = None,
    keep: Iterable[str] = (),
) -> list[FileEntry]:
    """Lists the regular files of a model, sorted by canonical name (OMS 6.1, 6.4).

    Args:
        model: a file or a directory.
        ignore_paths: model-relative paths (already normalised) to exclude, besides the
            default ignores. For a directory model they match exact paths and subtrees.
        allow_symlinks: follow symbolic links (with warnings for targets outside the
            root and for cycles) instead of rejecting them.
        link_policy: optional predicate that permits specific links even when
            ``allow_symlinks`` is false (used for the Hugging Face cache layout).
        keep: model-relative file names listed even when an ignore path covers them
            (verification: a file a signature lists is part of the model, a signed
            ``.gitattributes`` say); only these names, not their siblings.

    Returns:
        The files, sorted by name in code-point order.

    Raises:
        ModelError: missing model, unreadable entries, links not allowed, special
            files, non-UTF-8 names, or no file left after exclusions.
    """
    try:
        st = os.lstat(model)
    except FileNotFoundError:
        raise ModelError(f"{model}: no such file or directory") from None
    except OSError as exc:
        raise ModelError(f"{model}: cannot stat ({exc.strerror})") from None
    walker = _Walker(
        model,
        frozenset(DEFAULT_IGNORES) | frozenset(ignore_paths),
        allow_symlinks,
        link_policy,
        frozenset(keep),
    )
    via_link = stat.S_ISLNK(st.st_mode)
    if via_link:
        st = walker._follow(model, model.name) or st
    if stat.S_ISREG(st.st_mode):
        _check_name(model.name, model)
        return [_entry(model.name, str(model), st, via_link)]
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse_special(model, st.st_mode)
    walker.walk(model, "", frozenset({(st.st_dev, st.st_ino)}), st, via_link)
    if not walker.entries:
        raise ModelError(f"{model}: the model has no files to sign after exclusions (OMS 6.1)")
    walker.entries.sort(key=lambda e: e.name)
    _warn_lookalikes(walker.entries)
    return walker.entries


def entries_for(
    model: Path,
    names: Iterable[str],
    *,
    allow_symlinks: bool = False,
    link_policy: LinkPolicy | None = None,
) -> list[FileEntry]:
    """Looks up only the named files of a directory model, touching nothing else.

    Each component is checked as the full enumeration would (links per policy, only
    regular files at the end). Missing files are left out; the caller reports them.
    """
    walker = _Walker(model, frozenset(), allow_symlinks, link_policy)
    out = []
    for name in names:
        path, st, via_link = model, None, False
        for part in name.split("/"):
            path = path / part
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                st = None
                break
            except OSError as exc:
                raise ModelError(f"{path}: cannot stat ({exc.strerror})") from None
            if stat.S_ISLNK(st.st_mode):
                via_link = True
                st = walker._follow(path, name)
        if st is None:
            continue
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                continue
            raise _refuse_special(path, st.st_mode)
        out.append(_entry(name, str(path), st, via_link))
    return out
