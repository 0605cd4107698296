"""One verified read straight into a caller's buffer, with and without a read-ahead thread."""

from __future__ import annotations

import mmap
import os
import pickle
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from omsign import _verified_file
from omsign._memory import TensorMemory, new_buffer
from omsign.errors import IntegrityError, UnsafeFormatError

DATA = os.urandom(50_000)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_verified_file, "_PIPE_CHUNK", 4096)  # many chunks per piece


@pytest.fixture(params=[None, 8192], ids=["files", "shards"])
def model(request: pytest.FixtureRequest, tmp_path: Path, p256: KeyPair) -> omsign.VerifiedModel:
    folder = make_model(tmp_path / "m", {"w.bin": DATA})
    omsign.sign(folder, key=p256.private, shard_size=request.param)
    return omsign.open_verified(folder, key=p256.public, verify_content=False)


@pytest.mark.parametrize("overlap", [True, False])
def test_reads_exactly_the_signed_bytes(model: omsign.VerifiedModel, overlap: bool) -> None:
    buffer = new_buffer(len(DATA))
    assert isinstance(buffer, mmap.mmap)
    with model.open_raw("w.bin") as f:
        f.read_into_verified(buffer, overlap=overlap)
    assert buffer[:] == DATA


@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize("offset", [0, 20_000, len(DATA) - 1])
def test_a_byte_changed_after_opening_is_caught(
    model: omsign.VerifiedModel, overlap: bool, offset: int
) -> None:
    path = Path(model.result.model) / "w.bin"
    with model.open_raw("w.bin") as f:
        with open(path, "r+b") as out:  # same inode, after the open's checks
            out.seek(offset)
            out.write(bytes([DATA[offset] ^ 1]))
        with pytest.raises(IntegrityError, match="do not match the signature"):
            f.read_into_verified(new_buffer(len(DATA)), overlap=overlap)


@pytest.mark.parametrize("overlap", [True, False])
@pytest.mark.parametrize(("size", "words"), [(30_000, "shorter"), (len(DATA) + 1, "longer")])
def test_a_size_changed_after_opening_is_caught(
    model: omsign.VerifiedModel, overlap: bool, size: int, words: str
) -> None:
    path = Path(model.result.model) / "w.bin"
    with model.open_raw("w.bin") as f:
        os.truncate(path, size)
        with pytest.raises(IntegrityError, match=words):
            f.read_into_verified(new_buffer(len(DATA)), overlap=overlap)


def test_a_process_forked_later_cannot_change_the_loaded_bytes(
    model: omsign.VerifiedModel,
) -> None:
    buffer = new_buffer(len(DATA))
    with model.open_raw("w.bin") as f:
        f.read_into_verified(buffer)
    pid = os.fork()
    if pid == 0:  # the child writes its view of the buffer, then leaves at once
        try:
            buffer[0:4] = b"evil"
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert buffer[:] == DATA


def test_the_buffer_must_have_the_file_size(model: omsign.VerifiedModel) -> None:
    with model.open_raw("w.bin") as f, pytest.raises(ValueError, match="file's size"):
        f.read_into_verified(bytearray(len(DATA) - 1))


def test_an_empty_buffer_is_plain_memory() -> None:
    assert new_buffer(0) == bytearray()


def test_pickle_restored_after_the_early_look_is_refused_once_proven(
    tmp_path: Path, p256: KeyPair
) -> None:
    # The first bytes are looked at before the read; an attacker shows harmless bytes
    # then, and puts the signed pickle back before the read that proves it.
    signed = pickle.dumps({"w": list(range(5000))}, protocol=4)
    folder = make_model(tmp_path / "p", {"w.bin": signed})
    omsign.sign(folder, key=p256.private)
    model = omsign.open_verified(folder, key=p256.public)
    path = folder / "w.bin"
    path.write_bytes(bytes(len(signed)))  # same inode and size

    class Restoring(TensorMemory):
        def prepare(self, end: int) -> None:
            if path.read_bytes() != signed:
                path.write_bytes(signed)

    buffer = Restoring(-1, len(signed), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    with model.open_raw("w.bin") as f:
        with pytest.raises(UnsafeFormatError, match=r"w\.bin: refused: a pickle stream"):
            f.read_into_verified(buffer, overlap=False)
        with pytest.raises(UnsafeFormatError):
            f.read(1)
