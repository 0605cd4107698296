"""The verified safetensors reader: tensors one at a time, hostile headers refused."""

from __future__ import annotations

import io
import json
import pickle
import re
import signal
import struct
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import omsign
from helpers.fixtures import KeyPair, grow_beyond_memory, need_module
from omsign.errors import IntegrityError, ModelError, UnsafeFormatError
from omsign.integrations.gguf import verified_path
from omsign.integrations.safetensors import load, load_sharded


def _write(path: Path, header: dict[str, object], data: bytes) -> None:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)


def _signed(tmp_path: Path, p256: KeyPair, files: dict[str, bytes]) -> omsign.VerifiedModel:
    model = tmp_path / "model"
    model.mkdir()
    for name, data in files.items():
        (model / name).write_bytes(data)
    omsign.sign(model, key=p256.private)
    return omsign.open_verified(model, key=p256.public)


def _file(header: dict[str, object], data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


GOOD = {
    "a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
    "b": {"dtype": "I8", "shape": [3], "data_offsets": [16, 19]},
}
DATA = np.arange(4, dtype="<f4").tobytes() + bytes([1, 2, 3])


def test_chosen_tensors_only(tmp_path: Path, p256: KeyPair) -> None:
    vm = _signed(tmp_path, p256, {"w.safetensors": _file(GOOD, DATA)})
    got = load(vm, "w.safetensors", tensors=["b"])
    assert list(got) == ["b"]
    np.testing.assert_array_equal(got["b"], np.array([1, 2, 3], dtype=np.int8))
    np.testing.assert_array_equal(load(vm, "w.safetensors")["a"], np.arange(4).reshape(2, 2))


def test_torch_bfloat16(tmp_path: Path, p256: KeyPair) -> None:
    torch = need_module("torch")
    header = {"x": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}
    data = torch.tensor([1.5, -2.0], dtype=torch.bfloat16).view(torch.int16).numpy().tobytes()
    vm = _signed(tmp_path, p256, {"w.safetensors": _file(header, data)})
    assert load(vm, "w.safetensors", framework="torch")["x"].tolist() == [1.5, -2.0]


@pytest.mark.parametrize(
    ("header", "data", "words"),
    [
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12), "overlaps"),
        ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8), "shape"),
        ({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}}, bytes(2), "dtype"),
        ({"a": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]}}, bytes(5), "ends"),
        ({"a": {"dtype": "U8", "shape": [2], "data_offsets": [2, 0]}}, bytes(2), "offsets"),
    ],
)  # fmt: skip
def test_malformed_headers_are_refused(
    tmp_path: Path, p256: KeyPair, header: dict[str, object], data: bytes, words: str
) -> None:
    vm = _signed(tmp_path, p256, {"w.safetensors": _file(header, data)})
    with pytest.raises(IntegrityError, match=words):
        load(vm, "w.safetensors")


def test_header_length_beyond_the_file_is_refused(tmp_path: Path, p256: KeyPair) -> None:
    vm = _signed(tmp_path, p256, {"w.safetensors": struct.pack("<Q", 1 << 40) + b"{}"})
    with pytest.raises(IntegrityError, match="header"):
        load(vm, "w.safetensors")


def test_shard_holding_a_tensor_assigned_elsewhere_is_refused(
    tmp_path: Path, p256: KeyPair
) -> None:
    index = {"weight_map": {"a": "one.safetensors", "b": "two.safetensors"}}
    files = {
        "model.safetensors.index.json": json.dumps(index).encode(),
        "one.safetensors": _file(GOOD, DATA),  # holds a and b
        "two.safetensors": _file({"b": GOOD["b"]}, bytes([1, 2, 3])),
    }
    vm = _signed(tmp_path, p256, files)
    with pytest.raises(IntegrityError, match="assigns elsewhere"):
        load_sharded(vm)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("weights.bin", pickle.dumps({"w": 1}, protocol=4)),
        ("model.pt", b"anything"),
        ("state.ckpt", b"anything"),
        ("arr.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", 54)
         + b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".ljust(54)),
    ],
)  # fmt: skip
def test_pickle_content_is_refused_by_default(
    tmp_path: Path, p256: KeyPair, name: str, data: bytes
) -> None:
    vm = _signed(tmp_path, p256, {name: data})
    with pytest.raises(UnsafeFormatError, match=re.escape(name)):
        vm.read_bytes(name)
    assert vm.read_bytes(name, allow_pickle=True) == data


def test_npz_with_an_object_array_is_refused(tmp_path: Path, p256: KeyPair) -> None:
    safe, unsafe = tmp_path / "safe.npz", tmp_path / "unsafe.npz"
    np.savez(safe, a=np.arange(3))
    np.savez(unsafe, a=np.array([{"x": 1}], dtype=object))
    vm = _signed(tmp_path, p256, {"safe.npz": safe.read_bytes(), "unsafe.npz": unsafe.read_bytes()})
    assert vm.read_bytes("safe.npz") == safe.read_bytes()
    with pytest.raises(UnsafeFormatError, match="object array"):
        vm.read_bytes("unsafe.npz")


@pytest.mark.parametrize("name", ["w.safetensors", "w.bin"])
def test_a_header_length_that_looks_like_a_pickle_marker_is_not_refused(
    tmp_path: Path, p256: KeyPair, name: str
) -> None:
    # A header of 0x0580 bytes starts the file with 80 05: the pickle protocol 5 marker.
    raw = json.dumps(GOOD).encode().ljust(0x0580)
    vm = _signed(tmp_path, p256, {name: struct.pack("<Q", len(raw)) + raw + DATA})
    assert vm.read_bytes(name)[:2] == b"\x80\x05"
    np.testing.assert_array_equal(load(vm, name)["b"], np.array([1, 2, 3], dtype=np.int8))


@pytest.mark.parametrize(
    ("info", "words"),
    [
        ({"dtype": ["F32"], "shape": [1], "data_offsets": [0, 4]}, "dtype"),
        ({"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}, "shape"),
    ],
)
def test_header_values_of_the_wrong_type_are_refused(
    tmp_path: Path, p256: KeyPair, info: dict[str, object], words: str
) -> None:
    vm = _signed(tmp_path, p256, {"w.safetensors": _file({"a": info}, bytes(4))})
    with pytest.raises(IntegrityError, match=words):
        load(vm, "w.safetensors")


def test_a_header_of_huge_dimensions_is_refused_before_its_product_is_computed(
    tmp_path: Path, p256: KeyPair
) -> None:
    # Multiplying out 1500 dimensions of 4000 digits each takes minutes; the check must
    # stop as soon as the count passes the file size. The header is swapped in after
    # verification, so it is parsed before any byte of it is proven.
    huge = {"a": {"dtype": "U8", "shape": [10**3999] * 1500, "data_offsets": [0, 1]}}
    hostile = _file(huge, b"\0")
    vm = _signed(tmp_path, p256, {"w.safetensors": bytes(len(hostile))})
    (tmp_path / "model" / "w.safetensors").write_bytes(hostile)

    def too_slow(signum: int, frame: object) -> None:
        raise TimeoutError("the header check did not stop early")

    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(20)
    try:
        with pytest.raises(IntegrityError, match="size does not match its shape"):
            load(vm, "w.safetensors")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _npy(descr: str) -> bytes:
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': (1,), }}".encode()
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + text.ljust(117) + b"\n"


def _saved(save: Callable[[io.BytesIO], object]) -> bytes:
    out = io.BytesIO()
    save(out)
    return out.getvalue()


def _tar(f: io.BytesIO, members: dict[str, bytes]) -> None:
    with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def _torch_zip_python_cannot_list(f: io.BytesIO, spoil: Callable[[bytearray, int], None]) -> None:
    out = io.BytesIO()
    need_module("torch").save({"w": 1}, out)
    data = bytearray(out.getvalue())
    spoil(data, data.rfind(b"PK\x06\x07"))  # the zip64 end-of-directory locator
    f.write(data)


def _no_locator(data: bytearray, at: int) -> None:
    data[at : at + 4] = b"XXXX"


def _other_disk(data: bytearray, at: int) -> None:
    data[at + 4 : at + 8] = struct.pack("<I", 1)


_OBJECTS = np.array([{"x": 1}], dtype=object)
_LEGACY = {"storages": pickle.dumps(0), "tensors": pickle.dumps(0), "pickle": pickle.dumps(0)}
UNSAFE: dict[str, Callable[[io.BytesIO], object]] = {
    "checkpoint.pth.tar": lambda f: need_module("torch").save({"w": 1}, f),
    "weights": lambda f: need_module("torch").save({"w": 1}, f),
    "spelled.npy": lambda f: f.write(_npy("object")),
    "array.bin": lambda f: np.save(f, _OBJECTS, allow_pickle=True),
    "arrays.zip": lambda f: np.savez(f, a=_OBJECTS),
    "legacy.bin": lambda f: _tar(f, _LEGACY),  # torch.load(weights_only=False) unpickles
    # zips Python's zipfile refuses to list and PyTorch's reader loads (and unpickles)
    "no-locator.dat": lambda f: _torch_zip_python_cannot_list(f, _no_locator),
    "other-disk.dat": lambda f: _torch_zip_python_cannot_list(f, _other_disk),
}


@pytest.mark.parametrize("name", ["no-locator.dat", "other-disk.dat"])
def test_zips_python_cannot_list_are_still_loaded_by_torch(name: str) -> None:
    # what makes them an attack: a check that took them for "not an archive" served code
    data = _saved(UNSAFE[name])
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(data))
    assert need_module("torch").load(io.BytesIO(data), weights_only=False) == {"w": 1}


@pytest.mark.parametrize("name", UNSAFE)
def test_pickle_archives_and_object_arrays_are_refused_whatever_their_name(
    tmp_path: Path, p256: KeyPair, name: str
) -> None:
    vm = _signed(tmp_path, p256, {name: _saved(UNSAFE[name])})
    with pytest.raises(UnsafeFormatError, match=rf"^{re.escape(name)}: refused: "):
        vm.read_bytes(name)
    with pytest.raises(UnsafeFormatError), verified_path(vm, name):
        pass


def test_numeric_arrays_and_archives_are_served_whatever_their_name(
    tmp_path: Path, p256: KeyPair
) -> None:
    safe = {
        "numbers.bin": _saved(lambda f: np.save(f, np.arange(3))),
        "numbers.zip": _saved(lambda f: np.savez(f, a=np.arange(3))),
        "plain.npy": _npy("<f4") + bytes(4),
        "docs.tar": _saved(lambda f: _tar(f, {"README.md": b"tiny"})),
    }
    vm = _signed(tmp_path, p256, safe)
    for name, data in safe.items():
        assert vm.read_bytes(name) == data


def test_archives_are_recognised_when_the_first_shard_is_shorter_than_their_header(
    tmp_path: Path, p256: KeyPair
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "legacy.bin").write_bytes(_saved(lambda f: _tar(f, _LEGACY)))
    omsign.sign(model, key=p256.private, shard_size=200)  # the tar magic is at byte 257
    vm = omsign.open_verified(model, key=p256.public)
    with pytest.raises(UnsafeFormatError, match="tar archive"):
        vm.read_bytes("legacy.bin")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory is measured on Linux")
def test_a_file_grown_past_the_memory_is_refused_before_it_is_read(
    tmp_path: Path, p256: KeyPair
) -> None:
    vm = _signed(tmp_path, p256, {"w.safetensors": _file(GOOD, DATA)})
    lazy = omsign.open_verified(vm.result.model, key=p256.public, verify_content=False)

    def layout(size: int) -> bytes:  # one tensor that spans the grown file exactly
        n = size
        for _ in range(3):
            raw = json.dumps({"a": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}})
            n = size - 8 - len(raw)
        return struct.pack("<Q", len(raw)) + raw.encode()

    path = tmp_path / "model" / "w.safetensors"
    grow_beyond_memory(path, layout)
    try:
        with pytest.raises(ModelError, match=r"w\.safetensors: loading its \d+ bytes needs"):
            load(lazy, "w.safetensors")
    finally:
        path.unlink()


@pytest.mark.parametrize("name", ["weights", "arrays.zip"])
def test_archives_split_in_small_shards_are_still_read_whole(
    tmp_path: Path, p256: KeyPair, name: str
) -> None:
    # A verified read stops at the end of a shard; an archive reader given a short read
    # takes the archive for truncated (and not one any loader would open).
    model = tmp_path / "model"
    model.mkdir()
    (model / name).write_bytes(_saved(UNSAFE[name]))
    omsign.sign(model, key=p256.private, shard_size=7)
    vm = omsign.open_verified(model, key=p256.public)
    with pytest.raises(UnsafeFormatError, match="archive"):
        vm.read_bytes(name)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory is measured on Linux")
def test_shards_grown_past_the_memory_together_are_refused_before_any_is_read(
    tmp_path: Path, p256: KeyPair
) -> None:
    shards = {"a": "one.safetensors", "b": "two.safetensors", "c": "three.safetensors"}
    names = list(shards.values())
    index = {"weight_map": shards}
    files = {name: _file({t: GOOD["b"]}, bytes(3)) for t, name in shards.items()}
    vm = _signed(
        tmp_path, p256, {"model.safetensors.index.json": json.dumps(index).encode(), **files}
    )
    lazy = omsign.open_verified(vm.result.model, key=p256.public, verify_content=False)
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    room = (int(fields["MemAvailable"].split()[0]) + int(fields["SwapFree"].split()[0])) * 1024
    # Each shard alone fits in memory, the three together take twice what is available.
    # (Sparse: no disk used. Their headers are left as signed, so that a load that read a
    # shard before checking the total would fail on its layout, not fill the memory.)
    for name in names:
        with open(tmp_path / "model" / name, "r+b") as f:
            f.truncate(room * 2 // 3)
    try:
        with pytest.raises(
            ModelError, match=r"model\.safetensors\.index\.json: loading its shards' \d+ bytes"
        ):
            load_sharded(lazy)
    finally:
        for name in names:
            (tmp_path / "model" / name).unlink()
