"""Layers of a registry model: which media types are files or tars, and hostile tars refused."""

from __future__ import annotations

import gzip
import io
import tarfile
from typing import Any

import pytest

from omsign.errors import ModelError
from omsign.sources._oci_layers import (
    LayerKind,
    Member,
    classify,
    decompressed,
    same_name_check,
    stream_members,
)

DIGEST = "sha256:" + "00" * 32


def _desc(media_type: str, **annotations: str) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": DIGEST, "size": 1, "annotations": annotations}


@pytest.mark.parametrize(
    ("descriptor", "expected"),
    [
        (
            _desc("application/vnd.cncf.model.weight.v1.raw", **{"org.cncf.model.filepath": "a/b"}),
            LayerKind("file", "a/b"),
        ),
        (
            _desc(
                "application/vnd.cncf.model.doc.v1.raw", **{"org.opencontainers.image.title": "R"}
            ),
            LayerKind("file", "R"),
        ),
        (_desc("application/vnd.cncf.model.weight.v1.tar"), LayerKind("tar", packing="tar")),
        (
            _desc("application/vnd.cncf.model.weight.config.v1.tar+gzip"),
            LayerKind("tar", packing="gzip"),
        ),
        (_desc("application/vnd.cncf.model.code.v1.tar+zstd"), LayerKind("tar", packing="zstd")),
        (
            _desc(
                "application/vnd.oci.image.layer.v1.tar", **{"org.opencontainers.image.title": "w"}
            ),
            LayerKind("file", "w"),
        ),
        (
            _desc(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                **{"org.opencontainers.image.title": "dir", "io.deis.oras.content.unpack": "true"},
            ),
            LayerKind("tar", packing="gzip"),
        ),
        (
            _desc("application/vnd.oci.image.layer.v1.tar+gzip"),
            LayerKind("tar", packing="gzip", modelcar=True),
        ),
    ],
)
def test_classifies_layers(descriptor: dict[str, Any], expected: LayerKind) -> None:
    assert classify(descriptor, "layer") == expected


@pytest.mark.parametrize(
    "descriptor",
    [
        _desc("application/vnd.cncf.model.weight.v1.raw"),  # no path
        _desc("application/vnd.cncf.model.weight.v1.raw", **{"org.cncf.model.filepath": "../x"}),
        _desc("application/vnd.cncf.model.weight.v1.raw", **{"org.cncf.model.filepath": "/etc/x"}),
        _desc("application/vnd.oci.image.layer.v1.tar", **{"org.opencontainers.image.title": ""}),
        _desc("application/vnd.cncf.model.weight.v1.zip"),
        _desc("application/octet-stream"),
    ],
)
def test_refuses_layers_without_a_safe_file(descriptor: dict[str, Any]) -> None:
    with pytest.raises(ModelError):
        classify(descriptor, "layer")


def _tar(*members: tarfile.TarInfo, data: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            payload = (data or {}).get(m.name)
            tar.addfile(m, io.BytesIO(payload) if payload is not None else None)
    return out.getvalue()


def _file(name: str, content: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    return info, content


def _members(raw: bytes, *, modelcar: bool = False, packing: str = "tar") -> list[Member]:
    kind = LayerKind("tar", packing=packing, modelcar=modelcar)
    stream = decompressed(io.BytesIO(raw), packing, "layer")
    return list(stream_members(stream, kind, "layer", same_name_check("model")))


def test_streams_regular_members_with_offsets_and_digests() -> None:
    import hashlib

    a, b = _file("./dir/a.bin", b"alpha" * 1000), _file("b.txt", b"beta")
    directory = tarfile.TarInfo("dir")
    directory.type = tarfile.DIRTYPE
    raw = _tar(directory, a[0], b[0], data={a[0].name: a[1], b[0].name: b[1]})
    members = _members(raw)
    assert [(m.name, m.size) for m in members] == [("dir/a.bin", 5000), ("b.txt", 4)]
    for m, content in zip(members, (a[1], b[1]), strict=True):
        assert raw[m.offset : m.offset + m.size] == content
        assert m.sha256 == hashlib.sha256(content).digest()
    assert [m.name for m in _members(gzip.compress(raw), packing="gzip")] == ["dir/a.bin", "b.txt"]


def _special(name: str, kind: bytes, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    ("member", "problem"),
    [
        (_special("evil", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (_special("hard", tarfile.LNKTYPE, "a"), "hard link"),
        (_special("dev", tarfile.CHRTYPE), "device"),
        (_special("blk", tarfile.BLKTYPE), "device"),
        (_special("fifo", tarfile.FIFOTYPE), "FIFO"),
        (_file("../escape")[0], "unsafe file name"),
        (_file("a/../../escape")[0], "unsafe file name"),
        (_file("/abs/path")[0], "unsafe file name"),
        (_file("back\\slash")[0], "unsafe file name"),
    ],
)
def test_refuses_hostile_members(member: tarfile.TarInfo, problem: str) -> None:
    data = {member.name: b"x" * member.size} if member.isreg() else None
    with pytest.raises(ModelError, match=problem):
        _members(_tar(member, data=data))


def test_refuses_a_name_given_twice_in_one_tar_or_across_layers() -> None:
    one, _ = _file("w.bin")
    two, _ = _file("./w.bin")
    with pytest.raises(ModelError, match="given twice"):
        _members(_tar(one, two, data={"w.bin": b"x", "./w.bin": b"x"}))
    seen = same_name_check("model")
    seen("w.bin")
    kind = LayerKind("tar")
    with pytest.raises(ModelError, match="given twice"):
        list(stream_members(io.BytesIO(_tar(one, data={"w.bin": b"x"})), kind, "l2", seen))


def test_modelcar_keeps_models_folder_only_and_refuses_whiteouts() -> None:
    base_link = _special("bin/sh", tarfile.SYMTYPE, "busybox")
    weights, content = _file("models/w.bin", b"w")
    other, _ = _file("etc/hostname", b"h")
    raw = _tar(base_link, other, weights, data={"models/w.bin": content, "etc/hostname": b"h"})
    assert [m.name for m in _members(raw, modelcar=True)] == ["w.bin"]
    whiteout, _ = _file("models/.wh.old.bin", b"")
    with pytest.raises(ModelError, match="whiteout"):
        _members(_tar(whiteout, data={"models/.wh.old.bin": b""}), modelcar=True)
    link = _special("models/link", tarfile.SYMTYPE, "w.bin")
    with pytest.raises(ModelError, match="symbolic link"):
        _members(_tar(link), modelcar=True)


def test_a_corrupt_layer_is_one_error() -> None:
    with pytest.raises(ModelError, match="not a readable"):
        _members(b"\x1f\x8b" + b"garbage" * 100, packing="gzip")


def test_zstd_layers_stream() -> None:
    zstandard = pytest.importorskip("zstandard")
    raw = _tar(_file("w.bin")[0], data={"w.bin": b"x"})
    packed = zstandard.ZstdCompressor().compress(raw)
    assert [m.name for m in _members(packed, packing="zstd")] == ["w.bin"]
    # Parallel compressors write several frames: the layer is all of them.
    two = _tar(_file("a")[0], _file("b")[0], data={"a": b"x", "b": b"x"})
    frames = b"".join(
        zstandard.ZstdCompressor().compress(two[i : i + 512]) for i in range(0, len(two), 512)
    )
    assert [m.name for m in _members(frames, packing="zstd")] == ["a", "b"]
