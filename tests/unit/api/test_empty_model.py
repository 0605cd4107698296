"""A model with nothing to sign is refused in every mode, before any signature is written."""

from __future__ import annotations

from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from omsign.errors import ModelError


@pytest.mark.parametrize("shard_size", [None, 10])
def test_an_empty_directory_is_refused(
    tmp_path: Path, p256: KeyPair, shard_size: int | None
) -> None:
    model = tmp_path / "empty"
    model.mkdir()
    with pytest.raises(ModelError, match="no files to sign"):
        omsign.sign(model, key=p256.private, shard_size=shard_size)
    with pytest.raises(ModelError, match="no files to sign"):
        omsign.digest(model, shard_size=shard_size)
    assert not (model / "model.sig").exists()


@pytest.mark.parametrize("shard_size", [None, 10])
def test_a_model_whose_every_file_is_ignored_is_refused(
    tmp_path: Path, p256: KeyPair, shard_size: int | None
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a", "sub/b.bin": b"b"})
    ignored = [model / "a.bin", model / "sub"]
    with pytest.raises(ModelError, match="no files to sign after exclusions"):
        omsign.sign(model, key=p256.private, shard_size=shard_size, ignore_paths=ignored)
    assert not (model / "model.sig").exists()


def test_only_empty_files_in_shards_is_refused(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"", "sub/b.bin": b""})
    with pytest.raises(ModelError, match="every file of the model is empty") as caught:
        omsign.sign(model, key=p256.private, shard_size=10)
    assert "shard_size=" in str(caught.value)
    with pytest.raises(ModelError, match="every file of the model is empty"):
        omsign.digest(model, shard_size=10)
    with pytest.raises(ModelError, match="every file of the model is empty"):
        omsign.sign(model, key=p256.private, shard_size=10, reuse_digests=True)
    assert not (model / "model.sig").exists()


def test_a_single_empty_file_in_shards_is_refused(tmp_path: Path, p256: KeyPair) -> None:
    model = tmp_path / "empty.bin"
    model.write_bytes(b"")
    with pytest.raises(ModelError, match="every file of the model is empty"):
        omsign.sign(model, key=p256.private, shard_size=10)
    assert not (tmp_path / "empty.bin.sig").exists()


def test_empty_files_are_signed_by_name_in_files_mode(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"", "b.bin": b""})
    omsign.sign(model, key=p256.private)
    result = omsign.verify(model, key=p256.public)
    assert sorted(result.manifest.by_file()) == ["a.bin", "b.bin"]
