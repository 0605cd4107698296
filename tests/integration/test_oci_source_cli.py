"""``oci://`` models on the command line: digests equal to the folder's, partial checks,
hostile layers and lying registries refused with the right exit code and one line.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from helpers.fixtures import KeyPair, make_model, run_cli
from helpers.ocimodel import Layer, PlainClient, push_layers, push_model, sha256_digest
from services.oci_registry import PASSWORD, USER, OciRegistry

FILES = {
    "config.json": b'{"hidden": 4}',
    "weights.bin": os.urandom(200_000),
    "sub/tokenizer.txt": b"a b c\n" * 50,
}
TAR = "application/vnd.cncf.model.weight.v1.tar"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_model(tmp_path / "tiny", FILES)


@pytest.mark.parametrize("layout", ["raw", "tar", "tar+gzip", "oras"])
@pytest.mark.parametrize("hashing", [(), ("--hash", "blake2b", "--shard-size", "65536")])
def test_digest_equals_the_folders(
    oci_registry: OciRegistry, folder: Path, layout: str, hashing: tuple[str, ...]
) -> None:
    push_model(PlainClient(oci_registry.url), "org/tiny", folder, layout)
    remote = run_cli("digest", oci_registry.ref("org/tiny", "v1"), *hashing)
    local = run_cli("digest", folder, *hashing)
    assert (remote.code, local.code) == (0, 0), remote.err
    assert remote.out == local.out


def test_partial_verification_reads_only_the_files_named(
    oci_registry: OciRegistry, folder: Path, tmp_path: Path, p256: KeyPair
) -> None:
    signature = tmp_path / "folder.sig"
    assert run_cli("sign", folder, "--key", p256.private, "--signature", signature).code == 0
    subset = [("config.json", FILES["config.json"]), ("weights.bin", FILES["weights.bin"])]
    client = PlainClient(oci_registry.url)
    layers = [
        Layer("application/vnd.cncf.model.weight.v1.raw", data, {"org.cncf.model.filepath": n})
        for n, data in subset
    ]
    push_layers(client, "org/subset", layers)
    ref = oci_registry.ref("org/subset", "v1")
    trust = ("--key", p256.public, "--signature", signature)
    assert run_cli("verify", ref, *trust).code == 1  # sub/tokenizer.txt is missing
    assert run_cli("verify", ref, *trust, "--allow-missing").code == 0
    served = oci_registry.state.blob_bytes_served
    result = run_cli("verify", ref, *trust, "--files", "weights.bin")
    assert result.code == 0, result.err
    assert oci_registry.state.blob_bytes_served == served  # raw layers: no blob read


def _tar_with(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = link
        data = b"payload" if kind == tarfile.REGTYPE else b""
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize(
    ("tar", "problem"),
    [
        (_tar_with("../escape.bin"), "unsafe file name"),
        (_tar_with("/etc/passwd"), "unsafe file name"),
        (_tar_with("link", tarfile.SYMTYPE, "/etc/shadow"), "symbolic link"),
        (_tar_with("hard", tarfile.LNKTYPE, "weights.bin"), "hard link"),
        (_tar_with("dev", tarfile.CHRTYPE), "device"),
    ],
)
def test_hostile_tar_layers_are_refused(
    oci_registry: OciRegistry, tar: bytes, problem: str
) -> None:
    push_layers(PlainClient(oci_registry.url), "org/evil", [Layer(TAR, tar, {})])
    result = run_cli("digest", oci_registry.ref("org/evil", "v1"))
    assert result.code == 2
    assert problem in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_a_name_in_two_layers_is_refused(oci_registry: OciRegistry) -> None:
    raw = Layer("application/vnd.cncf.model.weight.v1.raw", b"x", {"org.cncf.model.filepath": "w"})
    push_layers(PlainClient(oci_registry.url), "org/twice", [raw, Layer(TAR, _tar_with("w"), {})])
    result = run_cli("digest", oci_registry.ref("org/twice", "v1"))
    assert result.code == 2
    assert "given twice" in result.err


def test_a_lying_manifest_fails_verification(
    oci_registry: OciRegistry, folder: Path, p256: KeyPair, tmp_path: Path
) -> None:
    digest = push_model(PlainClient(oci_registry.url), "org/tiny", folder, "raw")
    signature = tmp_path / "model.sig"
    ref = oci_registry.ref("org/tiny", digest)
    signed = run_cli("sign", ref, "--key", p256.private, "--signature", signature)
    assert signed.code == 0, signed.err
    data, media_type = oci_registry.state.repo("org/tiny").manifests[digest]
    lie = json.loads(data)
    lie["layers"] = lie["layers"][:1]
    oci_registry.state.add_manifest("org/tiny", digest, json.dumps(lie).encode(), media_type)
    result = run_cli("verify", ref, "--key", p256.public, "--signature", signature)
    assert result.code == 1
    assert "hashes to" in result.err


def test_a_swapped_raw_layer_fails_verification(
    oci_registry: OciRegistry, folder: Path, p256: KeyPair, tmp_path: Path
) -> None:
    client = PlainClient(oci_registry.url)
    digest = push_model(client, "org/tiny", folder, "raw")
    signature = tmp_path / "model.sig"
    ref = oci_registry.ref("org/tiny", "v1")
    assert run_cli("sign", ref, "--key", p256.private, "--signature", signature).code == 0
    # Another manifest under the same tag: one layer swapped for other bytes.
    data, _ = oci_registry.state.repo("org/tiny").manifests[digest]
    manifest = json.loads(data)
    other = b"not the weights"
    manifest["layers"][-1].update(digest=client.push_blob("org/tiny", other), size=len(other))
    raw = json.dumps(manifest).encode()
    client.push_manifest("org/tiny", "v1", raw)
    result = run_cli("verify", ref, "--key", p256.public, "--signature", signature)
    assert result.code == 1
    assert "weights.bin" in result.err + result.out
    assert sha256_digest(raw) in result.err + result.out


def test_unreachable_registry_and_wrong_credentials_exit_2(
    oci_registry_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_cli("digest", "oci://127.0.0.1:9/org/tiny:v1")
    assert result.code == 2
    assert "unreachable" in result.err
    served: OciRegistry = oci_registry_factory(auth="bearer")
    folder = make_model(tmp_path / "m", FILES)
    push_model(PlainClient(served.url, USER, PASSWORD), "org/tiny", folder, "raw")
    config = tmp_path / "docker"
    config.mkdir()
    import base64

    wrong = base64.b64encode(f"{USER}:wrong".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {served.host: {"auth": wrong}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    result = run_cli("digest", served.ref("org/tiny", "v1"))
    assert result.code == 2
    assert "refused the credentials" in result.err
    assert len(result.err.strip().splitlines()) == 1


def _image_layer(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    import gzip

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(out.getvalue())


def test_a_modelcar_image_is_its_models_folder(
    oci_registry: OciRegistry, folder: Path, tmp_path: Path, p256: KeyPair
) -> None:
    image_layer = "application/vnd.oci.image.layer.v1.tar+gzip"
    base = _image_layer({"bin/busybox": b"\x7fELF", "etc/passwd": b"root"}, {"bin/sh": "busybox"})
    models = _image_layer({f"models/{name}": data for name, data in FILES.items()})
    push_layers(
        PlainClient(oci_registry.url),
        "org/modelcar",
        [Layer(image_layer, base, {}), Layer(image_layer, models, {})],
        artifact_type="",
        config=("application/vnd.oci.image.config.v1+json", b'{"architecture":"amd64"}'),
    )
    ref = oci_registry.ref("org/modelcar", "v1")
    assert run_cli("digest", ref).out == run_cli("digest", folder).out
    signature = tmp_path / "modelcar.sig"
    assert run_cli("sign", ref, "--key", p256.private, "--signature", signature).code == 0
    result = run_cli("verify", folder, "--key", p256.public, "--signature", signature)
    assert result.code == 0, result.err


def test_an_image_index_or_an_unknown_layer_is_refused(
    oci_registry: OciRegistry, folder: Path
) -> None:
    client = PlainClient(oci_registry.url)
    digest = push_model(client, "org/tiny", folder, "raw")
    size = len(oci_registry.state.repo("org/tiny").manifests[digest][0])
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": size,
            }
        ],
    }
    client.push_manifest(
        "org/tiny", "multi", json.dumps(index).encode(), "application/vnd.oci.image.index.v1+json"
    )
    result = run_cli("digest", oci_registry.ref("org/tiny", "multi"))
    assert result.code == 2
    assert "image index" in result.err
    push_layers(client, "org/odd", [Layer("application/x-unknown", b"data", {})])
    result = run_cli("digest", oci_registry.ref("org/odd", "v1"))
    assert result.code == 2
    assert "names no model file" in result.err
