"""Tensor memory: huge pages populated ahead of the reads, chosen only where they pay."""

from __future__ import annotations

import mmap
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from omsign import _memory, _verified_file
from omsign._memory import TensorMemory, free_huge_bytes, new_buffer
from omsign.errors import IntegrityError
from omsign.integrations.safetensors import load

linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="madvise huge pages are Linux only"
)
DATA = os.urandom((3 << 20) + 12_345)  # one and a half huge pages, and a partial page


@pytest.fixture
def huge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every buffer takes the huge-page path, whatever this machine's free memory."""
    monkeypatch.setattr(_memory, "_HUGE_MIN", 1)
    monkeypatch.setattr(_memory, "_FILL", 1 << 20)  # several populate calls per file
    monkeypatch.setattr(_memory, "_huge_pages_pay", lambda size: True)
    monkeypatch.setattr(_verified_file, "_PIPE_CHUNK", 256 << 10)


@pytest.fixture(params=[None, 1 << 20], ids=["files", "shards"])
def model(request: pytest.FixtureRequest, tmp_path: Path, p256: KeyPair) -> omsign.VerifiedModel:
    folder = make_model(tmp_path / "m", {"w.bin": DATA})
    omsign.sign(folder, key=p256.private, shard_size=request.param)
    return omsign.open_verified(folder, key=p256.public, verify_content=False)


def _resident(buffer: TensorMemory) -> int:
    """Bytes of the buffer present in memory (bit 63 of each page's /proc/self/pagemap entry)."""
    page = mmap.PAGESIZE
    count = -(-len(buffer) // page)
    with open("/proc/self/pagemap", "rb") as f:
        entries = os.pread(f.fileno(), count * 8, buffer._address // page * 8)
    flags = np.frombuffer(entries, dtype="<u8")
    return int(np.count_nonzero(flags >> np.uint64(63))) * page


@linux
def test_prepare_populates_only_up_to_what_is_asked(huge: None) -> None:
    size = 16 << 20
    buffer = new_buffer(size)
    assert isinstance(buffer, TensorMemory) and buffer.huge
    assert _resident(buffer) == 0
    buffer.prepare(100)  # one populate call: _FILL bytes, in whole huge pages where they fit
    assert 1 << 20 <= _resident(buffer) <= 3 << 20
    buffer.prepare(size)
    assert _resident(buffer) == size


@linux
@pytest.mark.parametrize("overlap", [True, False])
def test_huge_page_memory_holds_exactly_the_signed_bytes(
    huge: None, model: omsign.VerifiedModel, overlap: bool
) -> None:
    buffer = new_buffer(len(DATA))
    assert isinstance(buffer, TensorMemory) and buffer.huge
    with model.open_raw("w.bin") as f:
        f.read_into_verified(buffer, overlap=overlap)
    assert buffer[:] == DATA
    assert buffer.huge  # populating worked all along, ahead of every read
    assert buffer._ready >= len(DATA)


@linux
@pytest.mark.parametrize("offset", [0, 2 << 20, len(DATA) - 1])
def test_huge_page_memory_still_refuses_a_changed_byte(
    huge: None, model: omsign.VerifiedModel, offset: int
) -> None:
    path = Path(model.result.model) / "w.bin"
    with model.open_raw("w.bin") as f:
        with open(path, "r+b") as out:  # same inode, after the open's checks
            out.seek(offset)
            out.write(bytes([DATA[offset] ^ 1]))
        with pytest.raises(IntegrityError, match="do not match the signature"):
            f.read_into_verified(new_buffer(len(DATA)))


@linux
def test_a_process_forked_later_cannot_change_huge_page_memory(
    huge: None, model: omsign.VerifiedModel
) -> None:
    buffer = new_buffer(len(DATA))
    with model.open_raw("w.bin") as f:
        f.read_into_verified(buffer)
    pid = os.fork()
    if pid == 0:  # the child writes its view of the buffer, then leaves at once
        code = 1
        try:
            buffer[:] = bytes(len(buffer))
            code = 0 if buffer[:8] == bytes(8) else 1
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0  # the child's write went through, in its own copy
    assert buffer[:] == DATA


@linux
def test_a_kernel_without_populate_falls_back_to_faults(
    huge: None, model: omsign.VerifiedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_memory, "_MADV_POPULATE_WRITE", 0x7FFF)  # unknown advice: EINVAL
    monkeypatch.setitem(_memory._populate, "works", True)
    buffer = new_buffer(len(DATA))
    with model.open_raw("w.bin") as f:
        f.read_into_verified(buffer)
    assert buffer[:] == DATA
    assert not _memory._populate["works"]  # not tried again in this process
    again = new_buffer(len(DATA))
    assert isinstance(again, TensorMemory)
    assert not again.huge


@linux
def test_safetensors_through_huge_pages_match_a_plain_load(
    huge: None, tmp_path: Path, p256: KeyPair
) -> None:
    from safetensors.numpy import load_file, save_file

    rng = np.random.default_rng(1)
    folder = tmp_path / "st"
    folder.mkdir()
    tensors = {f"t{i}": rng.standard_normal((300, 1000), dtype=np.float32) for i in range(4)}
    save_file(tensors, str(folder / "model.safetensors"))
    omsign.sign(folder, key=p256.private)
    verified = omsign.open_verified(folder, key=p256.public, verify_content=False)
    got = load(verified, "model.safetensors")
    plain = load_file(str(folder / "model.safetensors"))
    assert got.keys() == plain.keys()
    for name, array in plain.items():
        np.testing.assert_array_equal(got[name], array)
    with open(folder / "model.safetensors", "r+b") as out:  # a tensor byte, after signing
        out.seek(-5, os.SEEK_END)
        out.write(b"\xff")
    with pytest.raises(IntegrityError, match="do not match the signature"):
        load(verified, "model.safetensors")


def test_free_huge_blocks_are_counted_from_buddyinfo() -> None:
    text = (
        "Node 0, zone      DMA      0      0      0      0      0      0      0      0      1"
        "      1      3\n"
        "Node 0, zone   Normal  70075  44099  30253  11230   7221   2679   1976    936    624"
        "     37    893\n"
    )
    page, huge = 4096, 2 << 20  # orders 9 (2 MiB) and 10 (4 MiB) count
    expected = (1 + 37) * (2 << 20) + (3 + 893) * (4 << 20)
    assert free_huge_bytes(text, huge, page) == expected
    assert free_huge_bytes("", huge, page) == 0


@pytest.mark.parametrize(
    ("enabled", "size", "pays"),
    [
        ("always [madvise] never", 4 << 20, True),
        ("[always] madvise never", 4 << 20, True),
        ("always madvise [never]", 4 << 20, False),  # huge pages switched off
        ("always [madvise] never", (4 << 20) + 1, False),  # less than twice the size is free
    ],
)
def test_huge_pages_only_when_twice_the_buffer_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: str, size: int, pays: bool
) -> None:
    (tmp_path / "enabled").write_text(enabled + "\n")
    (tmp_path / "hpage_pmd_size").write_text(f"{2 << 20}\n")
    (tmp_path / "buddyinfo").write_text(  # 8 MiB free in 2 and 4 MiB blocks, plus small ones
        "Node 0, zone   Normal   900 0 0 0 0 0 0 0 0 2 1\n"
    )
    monkeypatch.setattr(_memory, "_THP", f"{tmp_path}/")
    monkeypatch.setattr(_memory, "_BUDDYINFO", str(tmp_path / "buddyinfo"))
    monkeypatch.setattr(_memory, "_reported_to_hypervisor", lambda: False)
    assert _memory._huge_pages_pay(size) is pays


def test_no_huge_pages_without_the_kernel_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_memory, "_THP", f"{tmp_path}/missing/")
    monkeypatch.setattr(_memory, "_reported_to_hypervisor", lambda: False)
    assert not _memory._huge_pages_pay(1 << 20)


@pytest.mark.parametrize(
    ("features", "reported"),
    [
        ("0110010000000000000000000000000010", True),  # bit 5: free page reporting
        ("0110000000000000000000000000000010", False),
        (None, False),  # no balloon device
    ],
)
def test_a_balloon_reporting_free_memory_rules_out_huge_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, features: str | None, reported: bool
) -> None:
    if features is not None:
        device = tmp_path / "virtio0"
        device.mkdir()
        (device / "features").write_text(features + "\n")
    monkeypatch.setattr(_memory, "_BALLOONS", f"{tmp_path}/virtio*/features")
    assert _memory._reported_to_hypervisor.__wrapped__() is reported


def test_small_buffers_keep_small_pages() -> None:
    buffer = new_buffer(1 << 20)
    assert isinstance(buffer, TensorMemory)
    assert not buffer.huge
