"""GGUF files handed to path-based loaders through a sealed, verified memory file."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import omsign
from helpers.fixtures import KeyPair, grow_beyond_memory, need_module
from omsign.errors import IntegrityError, ModelError
from omsign.integrations.gguf import verified_path

gguf = need_module("gguf")


def _tiny_gguf(path: Path) -> dict[str, np.ndarray]:
    tensors = {
        "token_embd.weight": np.arange(64, dtype=np.float32).reshape(8, 8),
        "output.weight": np.linspace(-1, 1, 32, dtype=np.float32).reshape(4, 8),
    }
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    for name, value in tensors.items():
        writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return tensors


def test_verified_path_reads_like_the_original(tmp_path: Path, p256: KeyPair) -> None:
    model = tmp_path / "model"
    model.mkdir()
    tensors = _tiny_gguf(model / "tiny.gguf")
    omsign.sign(model, key=p256.private)
    with verified_path(model, "tiny.gguf", key=p256.public) as path:
        assert path.startswith(f"/proc/{os.getpid()}/fd/")
        reader = gguf.GGUFReader(path)
        got = {t.name: np.array(t.data).reshape(tensors[t.name].shape) for t in reader.tensors}
        for name, value in tensors.items():
            np.testing.assert_array_equal(got[name], value)
        # A child process opens the same path (as llama.cpp in a subprocess would).
        child = subprocess.run(
            [sys.executable, "-c", f"print(len(open({path!r}, 'rb').read()))"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert int(child.stdout) == (model / "tiny.gguf").stat().st_size
    assert not os.path.exists(path)


def test_the_memory_file_is_sealed(tmp_path: Path, p256: KeyPair) -> None:
    model = tmp_path / "model"
    model.mkdir()
    _tiny_gguf(model / "tiny.gguf")
    omsign.sign(model, key=p256.private)
    with verified_path(model, "tiny.gguf", key=p256.public) as path:
        fd = os.open(path, os.O_RDWR)
        try:
            with pytest.raises(OSError) as info:
                os.pwrite(fd, b"evil", 0)
            assert info.value.errno == errno.EPERM
            with pytest.raises(OSError):
                os.ftruncate(fd, 1)
        finally:
            os.close(fd)


def test_a_changed_file_never_reaches_the_loader(tmp_path: Path, p256: KeyPair) -> None:
    model = tmp_path / "model"
    model.mkdir()
    _tiny_gguf(model / "tiny.gguf")
    omsign.sign(model, key=p256.private)
    verified = omsign.open_verified(model, key=p256.public)
    data = bytearray((model / "tiny.gguf").read_bytes())
    data[-1] ^= 1
    with open(model / "tiny.gguf", "r+b") as f:
        f.write(data)
    with pytest.raises(IntegrityError), verified_path(verified, "tiny.gguf"):
        pytest.fail("the loader must not be reached")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory is measured on Linux")
def test_a_file_grown_past_the_memory_is_refused_before_it_is_copied(
    tmp_path: Path, p256: KeyPair
) -> None:
    # Sizes are not signed (files signatures), so the memory file would take whatever
    # size the file on disk has now, and fill it before the digest tells.
    model = tmp_path / "model"
    model.mkdir()
    _tiny_gguf(model / "tiny.gguf")
    omsign.sign(model, key=p256.private)
    verified = omsign.open_verified(model, key=p256.public, verify_content=False)
    grow_beyond_memory(model / "tiny.gguf")
    try:
        with (
            pytest.raises(ModelError, match=r"tiny\.gguf: loading its \d+ bytes needs"),
            verified_path(verified, "tiny.gguf"),
        ):
            pytest.fail("the loader must not be reached")
    finally:
        (model / "tiny.gguf").unlink()
