"""Azure Blob Storage against Azurite (a real emulator, ``services.azurite``), and the
parts of the GCS store that need no service.

No GCS emulator is packaged for these machines: the GCS store is tested here without a
service (how a listing's generation pins an object and which endpoint the workers get);
its reads go through gcsfs with ``generation=`` and are not run against a server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from omsign.errors import IntegrityError
from omsign.sources._stores import GCSStore, Pinned, S3Store, store_for


def _blob_service(connection: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(connection)


def test_a_model_in_azure_blob_storage_signs_verifies_and_detects_a_replaced_blob(
    azure_env: str, tmp_path: Path, p256: KeyPair
) -> None:
    local = make_model(tmp_path / "m", {"a.bin": os.urandom(300_000), "d/b.txt": b"b"})
    service = _blob_service(azure_env)
    container = f"models{os.getpid()}"
    service.create_container(container)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            name = f"m/{path.relative_to(local).as_posix()}"
            service.get_blob_client(container, name).upload_blob(path.read_bytes())
    url = f"az://{container}/m"
    for shard_size in (None, 100_000):
        assert omsign.digest(url, shard_size=shard_size) == omsign.digest(
            local, shard_size=shard_size
        )
    signed = omsign.sign(url, key=p256.private)
    assert signed.signature == f"{url}/model.sig"
    assert omsign.verify(url, key=p256.public).root_digest == signed.root_digest

    def replace(done: int, total: int) -> None:
        if done == 0:
            blob = service.get_blob_client(container, "m/a.bin")
            blob.upload_blob(os.urandom(300_000), overwrite=True)

    with pytest.raises(IntegrityError, match=f"{url}/a.bin: object replaced"):
        omsign.verify(url, key=p256.public, workers=1, progress=replace)


def test_a_gcs_listing_pins_each_object_to_its_generation() -> None:
    store = GCSStore()
    info = {"name": "b/m/a", "size": 12, "generation": "1700000000000001", "type": "file"}
    pinned = store.pinned(info)
    assert pinned == Pinned(12, "1700000000000001", None)
    newer = store.pinned({**info, "generation": "1700000000000002"})
    assert not pinned.same_object(newer)  # a rewrite is a new generation
    assert pinned.same_object(store.pinned(dict(info)))


def test_the_listing_endpoint_travels_with_the_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:4443")
    assert store_for("gs://").endpoint == "http://127.0.0.1:4443"
    assert store_for("gs://", "http://elsewhere").endpoint == "http://elsewhere"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:5001")
    assert isinstance(store_for("s3://"), S3Store)
    assert store_for("s3://").endpoint == "http://127.0.0.1:5001"  # the S3-specific one wins


def test_an_s3_object_with_the_same_version_but_another_etag_is_another_object() -> None:
    listed = S3Store().pinned({"Size": 5, "ETag": '"abc"', "VersionId": "null"})
    assert listed == Pinned(5, None, '"abc"')  # "null": an unversioned bucket
    assert not listed.same_object(Pinned(5, None, '"abd"'))
