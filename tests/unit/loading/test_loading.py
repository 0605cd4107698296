"""Verified loading: bytes are served only once proven, a file swapped after verify is caught."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import omsign
from helpers.fixtures import KeyPair, make_model
from helpers.pki import make_ec_key, write_public_key
from omsign.errors import IntegrityError, VerificationError
from omsign.loading import VerifiedModel, load_safetensors, open_verified

BIG = os.urandom(10_000)
SHARD = 1_000


@pytest.fixture
def files_model(tmp_path: Path, p256: KeyPair) -> Path:
    model = make_model(tmp_path / "m", {"config.json": b'{"n": 1}\n', "big.bin": BIG})
    omsign.sign(model, key=p256.private)
    return model


@pytest.fixture
def shards_model(tmp_path: Path, p256: KeyPair) -> Path:
    model = make_model(tmp_path / "s", {"config.json": b'{"n": 1}\n', "big.bin": BIG})
    omsign.sign(model, key=p256.private, shard_size=SHARD)
    return model


def _poke(path: Path, offset: int) -> None:
    """Changes one byte in place (same inode)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(1)
        f.seek(offset)
        f.write(bytes([old[0] ^ 0xFF]))


def test_reads_signed_bytes(files_model: Path, p256: KeyPair) -> None:
    vm = open_verified(files_model, key=p256.public)
    assert vm.files == ("big.bin", "config.json")
    with vm.open("big.bin") as f:
        assert f.read(10) == BIG[:10]
        f.seek(9_990)
        assert f.read() == BIG[9_990:]
    assert vm.read_bytes("config.json") == b'{"n": 1}\n'


def test_file_replaced_after_verify_is_caught(files_model: Path, p256: KeyPair) -> None:
    vm = open_verified(files_model, key=p256.public)
    fake = files_model / "fake"
    fake.write_bytes(b"x" * len(BIG))
    os.replace(fake, files_model / "big.bin")
    with pytest.raises(IntegrityError, match="replaced after it was verified"):
        vm.open("big.bin")


@pytest.mark.parametrize("mode", ["files", "shards"])
def test_content_swapped_between_verify_and_read_fails(
    files_model: Path, shards_model: Path, p256: KeyPair, mode: str
) -> None:
    model = files_model if mode == "files" else shards_model
    vm = open_verified(model, key=p256.public)
    f = vm.open("big.bin")  # opened after verification, nothing read yet
    _poke(model / "big.bin", 5)  # same inode, same size, one byte differs
    with f, pytest.raises(IntegrityError, match="do not match the signature"):
        f.read(1)


def test_shards_fail_at_the_first_bad_range(shards_model: Path, p256: KeyPair) -> None:
    vm = open_verified(shards_model, key=p256.public)
    _poke(shards_model / "big.bin", 5 * SHARD + 17)  # past the first 4 KiB, sniffed first
    got: list[bytes] = []

    def read_all() -> None:
        with vm.open_raw("big.bin") as raw:
            while chunk := raw.read(400):
                got.append(chunk)

    with pytest.raises(IntegrityError, match=re.escape("bytes 5000-6000")):
        read_all()
    assert b"".join(got) == BIG[: 5 * SHARD]  # everything returned was proven; nothing after


def test_shards_do_not_read_unrequested_ranges(shards_model: Path, p256: KeyPair) -> None:
    vm = open_verified(shards_model, key=p256.public)
    _poke(shards_model / "big.bin", 9_500)
    with vm.open_raw("big.bin") as raw:
        raw.seek(2 * SHARD)
        assert raw.read(SHARD) == BIG[2 * SHARD : 3 * SHARD]
        raw.seek(9 * SHARD)
        with pytest.raises(IntegrityError):
            raw.read(10)


@pytest.mark.parametrize("change", ["truncate", "grow"])
@pytest.mark.parametrize("mode", ["files", "shards"])
def test_size_changes_are_caught(
    files_model: Path, shards_model: Path, p256: KeyPair, mode: str, change: str
) -> None:
    model = files_model if mode == "files" else shards_model
    vm = open_verified(model, key=p256.public)
    with open(model / "big.bin", "r+b") as f:
        if change == "truncate":
            f.truncate(0)
        else:
            f.seek(0, os.SEEK_END)
            f.write(b"more")
    with pytest.raises(IntegrityError):
        vm.read_bytes("big.bin")


def test_empty_read_of_a_truncated_file_still_fails(files_model: Path, p256: KeyPair) -> None:
    vm = open_verified(files_model, key=p256.public)
    lazy = open_verified(files_model, key=p256.public, verify_content=False)
    (files_model / "big.bin").open("r+b").truncate(0)
    with pytest.raises(IntegrityError, match="size changed"):  # known size: caught at open
        vm.open("big.bin")
    with lazy.open("big.bin") as f, pytest.raises(IntegrityError):  # else at the read
        f.read()


def test_unsigned_name_is_refused(files_model: Path, p256: KeyPair) -> None:
    vm = open_verified(files_model, key=p256.public)
    (files_model / "new.bin").write_bytes(b"unsigned")
    for name in ("new.bin", "model.sig", "../m/big.bin"):
        with pytest.raises(IntegrityError, match="not a signed file"):
            vm.open(name)


def test_symlink_swapped_in_is_refused(files_model: Path, p256: KeyPair, tmp_path: Path) -> None:
    vm = open_verified(files_model, key=p256.public, verify_content=False)
    copy = tmp_path / "same-bytes.bin"
    copy.write_bytes(BIG)
    (files_model / "big.bin").unlink()
    (files_model / "big.bin").symlink_to(copy)
    with pytest.raises(IntegrityError, match="symbolic link"):
        vm.open("big.bin")


def test_lazy_mode_checks_signature_now_and_content_on_read(
    files_model: Path, p256: KeyPair, tmp_path: Path
) -> None:
    other = tmp_path / "other.pem"
    write_public_key(other, make_ec_key("P-256"))
    with pytest.raises(VerificationError):
        open_verified(files_model, key=other, verify_content=False)
    _poke(files_model / "big.bin", 0)
    vm = open_verified(files_model, key=p256.public, verify_content=False)  # no content read
    assert len(vm.result.unchecked) == 2
    assert vm.read_bytes("config.json") == b'{"n": 1}\n'
    with pytest.raises(IntegrityError):
        vm.read_bytes("big.bin")


def test_large_pieces_are_spooled(
    files_model: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("omsign._verified_file._SPOOL", 100)
    vm = open_verified(files_model, key=p256.public)
    with vm.open("big.bin") as f:
        f.seek(123)
        assert f.read(4_000) == BIG[123:4_123]
    _poke(files_model / "big.bin", 9_999)
    with pytest.raises(IntegrityError):
        vm.read_bytes("big.bin")


def test_single_file_model(tmp_path: Path, p256: KeyPair) -> None:
    path = tmp_path / "w.bin"
    path.write_bytes(BIG)
    omsign.sign(path, key=p256.private, shard_size=4_096)
    vm = open_verified(path, key=p256.public)
    assert vm.read_bytes("w.bin") == BIG


# --- safetensors -----------------------------------------------------------------------

TENSORS = {
    "embed": np.arange(4 * 64, dtype=np.float32).reshape(4, 64),
    "bias": np.linspace(-1, 1, 300).astype(np.float16),
}


@pytest.fixture(params=[None, 512])
def st_model(request: pytest.FixtureRequest, tmp_path: Path, p256: KeyPair) -> Path:
    model = tmp_path / "st"
    model.mkdir()
    save_file(TENSORS, str(model / "model.safetensors"))
    (model / "config.json").write_bytes(b"{}")
    omsign.sign(model, key=p256.private, shard_size=request.param)
    return model


def test_safetensors_returns_the_signed_tensors(st_model: Path, p256: KeyPair) -> None:
    tensors = load_safetensors(open_verified(st_model, key=p256.public), "model.safetensors")
    assert set(tensors) == set(TENSORS)
    for name, value in TENSORS.items():
        np.testing.assert_array_equal(tensors[name], value)
        assert tensors[name].dtype == value.dtype


def test_safetensors_refuses_a_tampered_file(st_model: Path, p256: KeyPair) -> None:
    vm = open_verified(st_model, key=p256.public)
    path = st_model / "model.safetensors"
    _poke(path, path.stat().st_size - 3)  # inside the tensor data
    with pytest.raises(IntegrityError):
        load_safetensors(vm, "model.safetensors")


def test_safetensors_refuses_a_file_swapped_after_verify(st_model: Path, p256: KeyPair) -> None:
    vm = open_verified(st_model, key=p256.public)
    evil = {k: np.zeros_like(v) for k, v in TENSORS.items()}
    save_file(evil, str(st_model / "evil.safetensors"))
    os.replace(st_model / "evil.safetensors", st_model / "model.safetensors")
    with pytest.raises(IntegrityError):
        load_safetensors(vm, "model.safetensors")


def test_safetensors_unknown_framework(st_model: Path, p256: KeyPair) -> None:
    vm: VerifiedModel = omsign.open_verified(st_model, key=p256.public)
    with pytest.raises(omsign.errors.UsageError):
        omsign.load_safetensors(vm, "model.safetensors", framework="caffe")


def test_a_file_grown_after_verification_is_refused_before_it_is_read(
    tmp_path: Path, p256: KeyPair
) -> None:
    model = make_model(tmp_path / "m", {"w.bin": os.urandom(100)})
    omsign.sign(model, key=p256.private)
    verified = omsign.open_verified(model, key=p256.public)
    with (model / "w.bin").open("r+b") as f:
        f.truncate(300 << 20)  # same inode, 300 MiB (sparse)
    with pytest.raises(IntegrityError, match="size changed after it was verified"):
        verified.read_bytes("w.bin")
