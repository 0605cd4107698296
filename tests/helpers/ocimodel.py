"""Pushes a model folder to a registry as an OCI artifact, and pulls it back into a folder.

The layouts the tools of the field produce:

- ``"raw"``: CNCF ModelPack, one ``application/vnd.cncf.model.<kind>.v1.raw`` layer per
  file, its path in ``org.cncf.model.filepath`` (``modctl build --raw``);
- ``"tar"`` / ``"tar+gzip"``: ModelPack with one ``...v1.tar`` (``+gzip``) layer per file,
  the tar holding that one file under its model-relative path (``modctl``, KitOps);
- ``"oras"``: ``oras push REF FILE...``: one layer per file with
  ``org.opencontainers.image.title`` = the path given, the empty config and media type
  ``application/vnd.oci.image.layer.v1.tar`` (what ``oras`` writes for a plain file);
- ``"modelcar"``: a KServe ModelCar, a container image whose layers are gzipped tars
  without names: a base system layer, then the model's files under ``models/``.

:func:`pull_model` lays the files out as ``oras pull`` and ``kit unpack`` would: raw and
title layers written at their path, tar layers extracted into the folder, a ModelCar's
``models/`` folder extracted.

The transport is :class:`PlainClient`, a few lines of ``urllib`` speaking the distribution
API with anonymous, basic or bearer-token authentication, independent of the code under
test so that a fault in the client being tested cannot hide in the fixtures.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import ssl
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
MODELPACK_ARTIFACT = "application/vnd.cncf.model.manifest.v1+json"
MODELPACK_CONFIG = "application/vnd.cncf.model.config.v1+json"
FILEPATH = "org.cncf.model.filepath"
TITLE = "org.opencontainers.image.title"
ORAS_FILE = "application/vnd.oci.image.layer.v1.tar"
ORAS_ARTIFACT = "application/vnd.unknown.artifact.v1"
IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json"
IMAGE_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYOUTS = ("raw", "tar", "tar+gzip", "oras", "modelcar")
_WEIGHTS = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".onnx", ".h5", ".ckpt")


def _kind(name: str) -> str:
    low = name.lower()
    if low.endswith(_WEIGHTS):
        return "weight"
    if low.endswith((".md", ".txt")) or low.rsplit("/", 1)[-1].startswith("license"):
        return "doc"
    if low.endswith((".py", ".sh")):
        return "code"
    return "weight.config"


def modelpack_media_type(name: str, packing: str) -> str:
    """The ModelPack layer media type for a file (``packing``: raw, tar, tar+gzip)."""
    return f"application/vnd.cncf.model.{_kind(name)}.v1.{packing}"


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class PlainClient:
    """A minimal distribution API client (urllib), for test setup only.

    Attributes:
        url: ``http(s)://HOST:PORT``.
        user: basic credentials (also used to get bearer tokens), or None.
        password: the password.
        cafile: CA bundle for HTTPS.
    """

    url: str
    user: str | None = None
    password: str | None = None
    cafile: Path | None = None
    _token: str | None = field(default=None, repr=False)

    def _basic(self) -> str:
        pair = f"{self.user}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def _open(self, req: urllib.request.Request) -> tuple[int, Mapping[str, str], bytes]:
        ctx = ssl.create_default_context(cafile=str(self.cafile)) if self.cafile else None
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()

    def _fetch_token(self, challenge: str) -> bool:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        query = urllib.parse.urlencode(
            {k: v for k, v in params.items() if k in ("service", "scope")}
        )
        req = urllib.request.Request(params["realm"] + "?" + query)
        if self.user is not None:
            req.add_header("Authorization", self._basic())
        status, _, body = self._open(req)
        if status != 200:
            return False
        self._token = json.loads(body)["token"]
        return True

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One request, answering a 401 challenge once (basic or bearer)."""
        url = path if path.startswith("http") else self.url + path
        for attempt in range(2):
            req = urllib.request.Request(url, data=body, method=method)
            for k, v in (headers or {}).items():
                req.add_header(k, v)
            if self._token:
                req.add_header("Authorization", f"Bearer {self._token}")
            elif self.user is not None:
                req.add_header("Authorization", self._basic())
            status, resp_headers, data = self._open(req)
            challenge = resp_headers.get("WWW-Authenticate", "") if resp_headers else ""
            bearer = status == 401 and challenge.startswith("Bearer ")
            if bearer and attempt == 0 and self._fetch_token(challenge):
                continue
            return status, resp_headers, data
        raise AssertionError("unreachable")

    def _ok(self, result: tuple[int, Mapping[str, str], bytes], *codes: int) -> Mapping[str, str]:
        status, headers, data = result
        if status not in codes:
            raise RuntimeError(f"registry answered {status}: {data[:300]!r}")
        return headers

    def push_blob(self, repo: str, data: bytes, *, chunked: bool = False) -> str:
        """Uploads a blob (monolithic POST+PUT, or chunked PATCHes); returns its digest."""
        digest = sha256_digest(data)
        if self.request("HEAD", f"/v2/{repo}/blobs/{digest}")[0] == 200:
            return digest
        headers = self._ok(self.request("POST", f"/v2/{repo}/blobs/uploads/"), 202)
        location = headers["Location"]
        if chunked:
            step = max(1, len(data) // 3)
            for start in range(0, len(data), step):
                part = data[start : start + step]
                rng = f"{start}-{start + len(part) - 1}"
                hdrs = {"Content-Type": "application/octet-stream", "Content-Range": rng}
                headers = self._ok(self.request("PATCH", location, part, hdrs), 202)
                location = headers["Location"]
            data_left = b""
        else:
            data_left = data
        sep = "&" if "?" in location else "?"
        self._ok(
            self.request(
                "PUT",
                f"{location}{sep}digest={digest}",
                data_left,
                {"Content-Type": "application/octet-stream"},
            ),
            201,
        )
        return digest

    def push_manifest(self, repo: str, ref: str, data: bytes, media_type: str = MANIFEST) -> str:
        """Puts a manifest under a tag or its digest; returns the digest."""
        headers = {"Content-Type": media_type}
        self._ok(self.request("PUT", f"/v2/{repo}/manifests/{ref}", data, headers), 201)
        return sha256_digest(data)

    def manifest(self, repo: str, ref: str) -> tuple[bytes, str]:
        """A manifest's bytes and media type (checked against ``ref`` when a digest)."""
        accept = ", ".join([MANIFEST, INDEX])
        status, headers, data = self.request(
            "GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": accept}
        )
        if status != 200:
            raise RuntimeError(f"manifest {ref}: registry answered {status}")
        if ref.startswith("sha256:") and sha256_digest(data) != ref:
            raise RuntimeError(f"manifest {ref}: the registry sent other bytes")
        return data, headers.get("Content-Type", "")

    def blob(self, repo: str, digest: str) -> bytes:
        """A blob's bytes, checked against its digest."""
        status, _, data = self.request("GET", f"/v2/{repo}/blobs/{digest}")
        if status != 200 or sha256_digest(data) != digest:
            raise RuntimeError(f"blob {digest}: status {status} or wrong content")
        return data


@dataclass(frozen=True)
class Layer:
    """One layer to push: its media type, bytes and annotations."""

    media_type: str
    data: bytes
    annotations: Mapping[str, str]


def tar_of(members: Sequence[tuple[str, bytes]], *, gzip_it: bool = False) -> bytes:
    """A tar (optionally gzipped) of ``(name, bytes)`` regular files, deterministic."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gzip_it else raw


def model_files(folder: Path, ignore: Sequence[str] = ("model.sig",)) -> list[tuple[str, bytes]]:
    """The folder's regular files as ``(relative name, bytes)``, sorted."""
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and not path.is_symlink() and rel not in ignore:
            out.append((rel, path.read_bytes()))
    return out


def layers_for(files: Sequence[tuple[str, bytes]], layout: str) -> list[Layer]:
    """The layers that ``layout`` makes of the files."""
    if layout == "raw":
        return [
            Layer(modelpack_media_type(name, "raw"), data, {FILEPATH: name}) for name, data in files
        ]
    if layout in ("tar", "tar+gzip"):
        gz = layout == "tar+gzip"
        return [
            Layer(
                modelpack_media_type(name, layout),
                tar_of([(name, data)], gzip_it=gz),
                {FILEPATH: name},
            )
            for name, data in files
        ]
    if layout == "oras":
        return [Layer(ORAS_FILE, data, {TITLE: name}) for name, data in files]
    if layout == "modelcar":
        base = [("etc/os-release", b"ID=omsign-test\n"), ("bin/true", b"#!/bin/sh\n")]
        model = [(f"models/{name}", data) for name, data in files]
        return [
            Layer(IMAGE_LAYER_GZIP, tar_of(base, gzip_it=True), {}),
            Layer(IMAGE_LAYER_GZIP, tar_of(model, gzip_it=True), {}),
        ]
    raise ValueError(f"unknown layout {layout!r}")


def push_layers(
    client: PlainClient,
    repo: str,
    layers: Sequence[Layer],
    *,
    tag: str | None = "v1",
    artifact_type: str = MODELPACK_ARTIFACT,
    config: tuple[str, bytes] | None = None,
    chunked: bool = False,
) -> tuple[str, bytes]:
    """Pushes layers and an image manifest; returns (manifest digest, manifest bytes)."""
    config_type, config_data = config or (
        MODELPACK_CONFIG,
        json.dumps({"descriptor": {"name": repo}, "modelfs": {"type": "layers"}}).encode(),
    )
    config_digest = client.push_blob(repo, config_data)
    descs: list[dict[str, Any]] = []
    for layer in layers:
        digest = client.push_blob(repo, layer.data, chunked=chunked)
        descs.append(
            {"mediaType": layer.media_type, "digest": digest, "size": len(layer.data),
             "annotations": dict(layer.annotations)}
        )  # fmt: skip
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": config_type, "digest": config_digest, "size": len(config_data)},
        "layers": descs,
    }
    if not artifact_type:  # a container image (ModelCar) has none
        del manifest["artifactType"]
    data = json.dumps(manifest, separators=(",", ":")).encode()
    digest = client.push_manifest(repo, tag or sha256_digest(data), data)
    return digest, data


def push_model(
    client: PlainClient,
    repo: str,
    folder: Path,
    layout: str = "raw",
    *,
    tag: str | None = "v1",
    chunked: bool = False,
) -> str:
    """Pushes a model folder in ``layout`` (see the module docstring); returns the digest."""
    files = model_files(folder)
    if layout == "modelcar":
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ).encode()
        digest, _ = push_layers(
            client, repo, layers_for(files, layout), tag=tag, artifact_type="",
            config=(IMAGE_CONFIG, config), chunked=chunked,
        )  # fmt: skip
        return digest
    if layout == "oras":
        config = (EMPTY, b"{}")
        digest, _ = push_layers(
            client, repo, layers_for(files, layout), tag=tag, artifact_type=ORAS_ARTIFACT,
            config=config, chunked=chunked,
        )  # fmt: skip
        return digest
    digest, _ = push_layers(client, repo, layers_for(files, layout), tag=tag, chunked=chunked)
    return digest


def _safe_target(dest: Path, name: str) -> Path:
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise RuntimeError(f"unsafe path in the artifact: {name!r}")
    return dest.joinpath(*parts)


def pull_model(client: PlainClient, repo: str, ref: str, dest: Path) -> list[str]:
    """Writes an artifact's files into ``dest`` as ``oras pull`` / ``kit unpack`` would.

    Returns the model-relative names written, sorted.
    """
    data, _ = client.manifest(repo, ref)
    manifest = json.loads(data)
    written = []
    for desc in manifest["layers"]:
        blob = client.blob(repo, desc["digest"])
        annotations = desc.get("annotations") or {}
        media_type = desc["mediaType"]
        if media_type == IMAGE_LAYER_GZIP and not annotations:  # ModelCar: models/ only
            with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
                for member in tar.getmembers():
                    if not member.name.startswith("models/") or not member.isfile():
                        continue
                    name = member.name.removeprefix("models/")
                    target = _safe_target(dest, name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    target.write_bytes(extracted.read())
                    written.append(name)
            continue
        if media_type.endswith((".tar", ".tar+gzip")) and FILEPATH in annotations:
            mode = "r:gz" if media_type.endswith("+gzip") else "r:"
            with tarfile.open(fileobj=io.BytesIO(blob), mode=mode) as tar:
                for member in tar.getmembers():
                    target = _safe_target(dest, member.name)
                    if not member.isfile():
                        raise RuntimeError(f"not a regular file in the artifact: {member.name}")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    extracted = tar.extractfile(member)
                    assert extracted is not None
                    target.write_bytes(extracted.read())
                    written.append(member.name)
            continue
        name = annotations.get(FILEPATH) or annotations.get(TITLE)
        if not name:
            raise RuntimeError(f"layer {desc['digest']} has no path annotation")
        target = _safe_target(dest, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob)
        written.append(name)
    return sorted(written)
