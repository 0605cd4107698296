"""A model in an OCI registry as a model source, against the test registry.

Each layout the tools of the field push (ModelPack raw, tar and tar+gzip layers, ORAS
files) lists the same files with the same digests as the folder it was pushed from, in
every hashing mode; raw layers hashed with sha256 read no blob at all.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.ocimodel import PlainClient, push_model
from omsign.hashing import enumerate_model, hash_entries
from omsign.oci import RegistryContentError
from omsign.sources import resolve_source
from omsign.sources._oci import OciSource
from services.oci_registry import OciRegistry


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    model = tmp_path / "tiny"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text('{"hidden": 4}')
    (model / "weights.bin").write_bytes(os.urandom(300_000))
    (model / "sub" / "tokenizer.txt").write_text("a b c\n" * 100)
    (model / "empty.txt").write_bytes(b"")
    return model


def _local(folder: Path, algorithm: str, shard: int | None) -> list[tuple[str, bytes]]:
    return hash_entries(enumerate_model(folder), algorithm, shard, workers=2)


def _remote(source: OciSource, algorithm: str, shard: int | None) -> list[tuple[str, bytes]]:
    return hash_entries(source.entries(), algorithm, shard, workers=2, reader=source.reader())


@pytest.mark.parametrize("layout", ["raw", "tar", "tar+gzip", "oras"])
@pytest.mark.parametrize(
    ("algorithm", "shard"), [("sha256", None), ("blake2b", None), ("sha256", 100_000)]
)
def test_registry_model_hashes_as_its_folder(
    oci_registry: OciRegistry, folder: Path, layout: str, algorithm: str, shard: int | None
) -> None:
    client = PlainClient(oci_registry.url)
    digest = push_model(client, "org/tiny", folder, layout)
    source = resolve_source(oci_registry.ref("org/tiny", "v1"))
    assert isinstance(source, OciSource)
    assert source.resolved.digest == digest
    assert source.location == f"oci://{oci_registry.host}/org/tiny:v1@{digest}"
    assert source.name == "tiny"
    assert [e.name for e in source.entries()] == [
        "config.json",
        "empty.txt",
        "sub/tokenizer.txt",
        "weights.bin",
    ]
    assert _remote(source, algorithm, shard) == _local(folder, algorithm, shard)


def test_raw_layers_with_sha256_read_no_blob(oci_registry: OciRegistry, folder: Path) -> None:
    push_model(PlainClient(oci_registry.url), "org/tiny", folder, "raw")
    before = oci_registry.state.blob_bytes_served
    source = resolve_source(oci_registry.ref("org/tiny", "v1"))
    assert isinstance(source, OciSource)
    _remote(source, "sha256", None)
    assert oci_registry.state.blob_bytes_served == before
    _remote(source, "blake2b", None)
    assert oci_registry.state.blob_bytes_served > before


def test_ignore_paths_and_names(oci_registry: OciRegistry, folder: Path) -> None:
    push_model(PlainClient(oci_registry.url), "org/tiny", folder, "tar")
    source = resolve_source(oci_registry.ref("org/tiny", "v1"))
    names = [e.name for e in source.entries(ignore_paths=["sub"])]
    assert names == ["config.json", "empty.txt", "weights.bin"]
    assert [e.name for e in source.entries(names=["weights.bin", "absent"])] == ["weights.bin"]


def test_a_layer_swapped_in_the_registry_is_caught(oci_registry: OciRegistry, folder: Path) -> None:
    push_model(PlainClient(oci_registry.url), "org/tiny", folder, "tar")
    source = resolve_source(oci_registry.ref("org/tiny", "v1"))
    assert isinstance(source, OciSource)
    layer = source._layers[0]["digest"]
    path = oci_registry.state.blob_path(layer)
    data = bytearray(path.read_bytes())
    data[600] ^= 1  # inside the first member's bytes
    path.write_bytes(bytes(data))
    with pytest.raises(RegistryContentError, match="does not hash to"):
        source.entries()


@pytest.mark.parametrize("layout", ["raw", "tar", "tar+gzip"])
def test_bytes_changed_after_listing_are_caught_when_read(
    oci_registry: OciRegistry, folder: Path, layout: str
) -> None:
    push_model(PlainClient(oci_registry.url), "org/tiny", folder, layout)
    source = resolve_source(oci_registry.ref("org/tiny", "v1"))
    assert isinstance(source, OciSource)
    entries = source.entries()
    weights = next(e for e in entries if e.name == "weights.bin")
    path = oci_registry.state.blob_path(weights.layer)
    data = bytearray(path.read_bytes())
    if layout == "tar+gzip":  # another valid gzip of other bytes
        import gzip

        raw = bytearray(gzip.decompress(bytes(data)))
        raw[weights.offset + 10] ^= 1
        data = bytearray(gzip.compress(bytes(raw)))
    else:
        data[weights.offset + 10] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(RegistryContentError, match="other bytes than when it was listed"):
        hash_entries([weights], "blake2b", None, workers=1, reader=source.reader())


def test_worker_processes_read_the_registry_themselves(
    oci_registry: OciRegistry, folder: Path
) -> None:
    from concurrent.futures import ProcessPoolExecutor

    push_model(PlainClient(oci_registry.url), "org/tiny", folder, "tar")
    source = resolve_source(oci_registry.ref("org/tiny", "v1"))
    with ProcessPoolExecutor(2) as pool:
        remote = hash_entries(
            source.entries(), "blake2b", 100_000, executor=pool, reader=source.reader()
        )
    assert remote == _local(folder, "blake2b", 100_000)
