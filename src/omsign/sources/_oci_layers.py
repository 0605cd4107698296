"""How the layers of an OCI model map to files, and safe streaming of tar layers.

A layer is one of:

- a **file layer**: a ModelPack ``application/vnd.cncf.model.*.v1.raw`` layer (its path
  in ``org.cncf.model.filepath``), or any other layer named by
  ``org.opencontainers.image.title`` (what ``oras push FILE`` writes); the file is the
  blob, so its sha256 is the layer digest;
- a **tar layer**: a ModelPack ``*.v1.tar``, ``*.v1.tar+gzip`` or ``*.v1.tar+zstd``
  layer, an ORAS directory (a title with ``io.deis.oras.content.unpack: true``), or an
  image layer without a name (``application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]``,
  Docker's ``rootfs.diff.tar.gzip``): a ModelCar, whose files are those under
  ``models/``, named relative to it, the rest of the image being its base system.

Tar layers are streamed (never held in memory, never written to disk) and each regular
member is hashed with sha256 as it passes. Members that are links, devices, FIFOs or
whiteouts, names that are absolute, contain ``..``, NUL or backslashes, and names given
twice are refused. Directories are skipped. Layers of other media types are refused.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

from omsign.errors import ModelError, UsageError

__all__ = [
    "MAX_LAYERS",
    "MAX_MEMBERS",
    "LayerKind",
    "Member",
    "classify",
    "decompressed",
    "safe_name",
    "same_name_check",
    "stream_members",
]

MAX_LAYERS = 10_000
MAX_MEMBERS = 200_000
MAX_NAME = 4096
FILEPATH = "org.cncf.model.filepath"
TITLE = "org.opencontainers.image.title"
UNPACK = "io.deis.oras.content.unpack"
MODELCAR_ROOT = "models/"
_CHUNK = 1 << 20
_IMAGE_LAYERS = {
    "application/vnd.oci.image.layer.v1.tar": "tar",
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
}


@dataclass(frozen=True)
class LayerKind:
    """What a layer holds: ``file`` (at ``path``) or ``tar`` (``packing``: tar, gzip, zstd).

    ``modelcar``: a nameless image layer, whose model files are under ``models/``.
    """

    kind: str
    path: str = ""
    packing: str = "raw"
    modelcar: bool = False


@dataclass(frozen=True)
class Member:
    """A regular file of a tar layer: name, size, offset of its data, its sha256."""

    name: str
    size: int
    offset: int
    sha256: bytes


def safe_name(name: str, where: str) -> str:
    """``name`` as a canonical model-relative path; unsafe forms are refused.

    Raises:
        ModelError: the name is empty, absolute, has ``..``, NUL, a backslash or is too long.
    """
    if (
        not name
        or len(name) > MAX_NAME
        or "\0" in name
        or "\\" in name
        or name.startswith("/")
        or ".." in name.split("/")
    ):
        raise ModelError(f"{where}: unsafe file name {name[:200]!r} (absolute, '..' or empty)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts:
        raise ModelError(f"{where}: unsafe file name {name[:200]!r} (names the model root)")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise ModelError(f"{where}: file name is not valid UTF-8 (OMS 6.1.2)") from None
    return "/".join(parts)


def classify(descriptor: dict[str, Any], where: str) -> LayerKind:
    """How a layer maps to files (see the module docstring).

    Raises:
        ModelError: the layer is of a kind that holds no model file, or names an unsafe path.
    """
    media_type = str(descriptor["mediaType"])
    notes = descriptor.get("annotations")
    notes = notes if isinstance(notes, dict) else {}
    path = notes.get(FILEPATH)
    if media_type.startswith("application/vnd.cncf.model."):
        packing = media_type.rsplit(".v1.", 1)[-1] if ".v1." in media_type else ""
        if packing == "raw":
            if not isinstance(path, str):
                path = notes.get(TITLE)
            if not isinstance(path, str):
                raise ModelError(f"{where}: a raw layer names no file ({FILEPATH})")
            return LayerKind("file", safe_name(path, where))
        packs = {"tar": "tar", "tar+gzip": "gzip", "tar+zstd": "zstd"}
        if packing in packs:
            return LayerKind("tar", packing=packs[packing])
        raise ModelError(f"{where}: unsupported ModelPack layer type {media_type}")
    title = notes.get(TITLE)
    if isinstance(title, str):
        if str(notes.get(UNPACK, "")).lower() == "true":
            packing = _IMAGE_LAYERS.get(media_type, "gzip" if "gzip" in media_type else "tar")
            return LayerKind("tar", packing=packing)
        return LayerKind("file", safe_name(title, where))
    if media_type in _IMAGE_LAYERS:
        return LayerKind("tar", packing=_IMAGE_LAYERS[media_type], modelcar=True)
    raise ModelError(
        f"{where}: layer {descriptor.get('digest')} ({media_type}) names no model file"
    )


def decompressed(stream: IO[bytes], packing: str, where: str) -> IO[bytes]:
    """The tar bytes of a layer stream (gzip and zstd decompressed as read).

    Raises:
        UsageError: a zstd layer without the ``zstandard`` module.
    """
    if packing == "gzip":
        import gzip

        return cast("IO[bytes]", gzip.GzipFile(fileobj=stream, mode="rb"))
    if packing == "zstd":
        try:
            import zstandard
        except ImportError:
            raise UsageError(
                f"{where}: a tar+zstd layer needs the zstandard module",
                hint="install omsign[oci]",
            ) from None
        reader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(
            stream, read_across_frames=True
        )
        return reader
    return stream


def _refuse(member: tarfile.TarInfo, where: str) -> None:
    kind = (
        "symbolic link"
        if member.issym()
        else "hard link"
        if member.islnk()
        else "FIFO"
        if member.isfifo()
        else "device"
        if member.isdev()
        else "special file"
    )
    raise ModelError(f"{where}: {member.name[:200]!r} is a {kind}; only regular files are read")


def _model_name(member: tarfile.TarInfo, modelcar: bool, where: str) -> str | None:
    """The model-relative name of a tar member, or None when it is not a model file."""
    raw = member.name
    if modelcar:
        stripped = raw.removeprefix("./").lstrip("/")
        if not stripped.startswith(MODELCAR_ROOT):
            return None  # the image's base system, not the model
        raw = stripped[len(MODELCAR_ROOT) :]
        if not raw.strip("/"):
            return None
    name = safe_name(raw.rstrip("/") if member.isdir() else raw, where)
    if name.rsplit("/", 1)[-1].startswith(".wh."):
        raise ModelError(f"{where}: {raw[:200]!r} is a layer whiteout; refused in a model")
    return name


def stream_members(
    stream: IO[bytes],
    kind: LayerKind,
    where: str,
    seen: Callable[[str], None],
) -> Iterator[Member]:
    """The regular files of a tar layer, read once, each hashed with sha256.

    Args:
        stream: the layer's (decompressed) tar bytes.
        kind: the layer's kind (a ModelCar keeps only ``models/``).
        where: the layer, for messages.
        seen: called with each name before it is yielded (it refuses duplicates).

    Raises:
        ModelError: a refused member (see the module docstring) or a corrupt tar.
    """
    count = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                count += 1
                if count > MAX_MEMBERS:
                    raise ModelError(f"{where}: more than {MAX_MEMBERS} tar members")
                name = _model_name(member, kind.modelcar, where)
                if name is None or member.isdir():
                    continue
                if not member.isreg():
                    _refuse(member, where)
                seen(name)
                data = tar.extractfile(member)
                hasher = hashlib.sha256()
                assert data is not None  # a regular member always has data
                for chunk in iter(lambda: data.read(_CHUNK), b""):  # noqa: B023
                    hasher.update(chunk)
                yield Member(name, member.size, member.offset_data, hasher.digest())
    except tarfile.TarError as exc:
        raise ModelError(f"{where}: not a readable tar layer ({exc})") from None
    except (OSError, EOFError) as exc:  # a corrupt gzip or zstd stream
        raise ModelError(f"{where}: not a readable compressed layer ({exc})") from None


def same_name_check(where: str) -> Callable[[str], None]:
    """A ``seen`` callback that refuses a name given twice (across every layer)."""
    names: set[str] = set()

    def seen(name: str) -> None:
        if name in names:
            raise ModelError(f"{where}: {name!r} is given twice in the model's layers")
        names.add(name)

    return seen
