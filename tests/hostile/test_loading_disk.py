"""Verified loading never copies more than it can prove, and never fills the disk.

A signed file grown after signing into a huge sparse file costs nothing on disk, but a
private copy of it would be written out in full. Where the signature records no size
(``files`` signatures read lazily, or files a partial verification did not hash), the
copy is refused before any byte is read when the temporary folder cannot hold it; a
size proven by one read binds every later open; write and read errors of the copy are
one-line omsign errors.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from hostile.signed import deadline
from omsign.errors import IntegrityError, ModelError
from omsign.loading import open_verified

DATA = os.urandom(4096)


@pytest.fixture
def model(tmp_path: Path, p256: KeyPair) -> Path:
    model = make_model(tmp_path / "m", {"weights.bin": DATA, "config.json": b"{}"})
    omsign.sign(model, key=p256.private)
    return model


def _grow_beyond_free_space(path: Path) -> int:
    """Makes ``path`` a sparse file larger than the free space of the temporary folder."""
    size = shutil.disk_usage(tempfile.gettempdir()).free + (1 << 30)
    try:
        os.truncate(path, size)
    except OSError as exc:  # pragma: no cover - a file system without large sparse files
        pytest.skip(f"cannot make a sparse file of {size} bytes: {exc.strerror}")
    return size


def test_lazy_read_of_a_grown_file_is_refused_before_copying(model: Path, p256: KeyPair) -> None:
    vm = open_verified(model, verify_content=False, key=p256.public)
    _grow_beyond_free_space(model / "weights.bin")
    before = shutil.disk_usage(tempfile.gettempdir()).used
    with deadline(30), pytest.raises(ModelError, match="refusing to fill the disk"):
        vm.read_bytes("weights.bin")
    assert shutil.disk_usage(tempfile.gettempdir()).used - before < 64 << 20


def test_unhashed_file_of_a_partial_verification_is_refused(model: Path, p256: KeyPair) -> None:
    vm = open_verified(model, key=p256.public, files=["config.json"])
    _grow_beyond_free_space(model / "weights.bin")
    with (
        deadline(30),
        pytest.raises(ModelError, match="refusing to fill the disk"),
        vm.open("weights.bin") as f,
    ):
        f.read(10)


def test_size_proven_by_a_read_binds_later_opens(model: Path, p256: KeyPair) -> None:
    vm = open_verified(model, verify_content=False, key=p256.public)
    assert vm.read_bytes("weights.bin") == DATA
    os.truncate(model / "weights.bin", 1 << 40)  # 1 TiB, sparse, same inode
    with deadline(10), pytest.raises(IntegrityError, match="size changed"):
        vm.open("weights.bin")


def test_shards_are_read_only_up_to_the_signed_size(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "s", {"weights.bin": DATA})
    omsign.sign(model, key=p256.private, shard_size=1000)
    vm = open_verified(model, verify_content=False, key=p256.public)
    os.truncate(model / "weights.bin", 1 << 40)
    with deadline(10), pytest.raises(IntegrityError, match="differs from the signed size"):
        vm.open("weights.bin")


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE behaviour is Linux's")
def test_write_error_of_the_private_copy_is_one_line(model: Path, p256: KeyPair) -> None:
    """A copy that the system stops writing (as a full disk would) is an omsign error."""
    os.truncate(model / "weights.bin", 200 << 20)  # over the in-memory limit, sparse
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from omsign.errors import Error
        from omsign.loading import open_verified
        vm = open_verified({str(model)!r}, verify_content=False, key={str(p256.public)!r})
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (150 << 20, 150 << 20))
        try:
            vm.read_bytes("weights.bin")
        except Error as exc:
            print(type(exc).__name__, exc)
            sys.exit(3)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.startswith("ModelError ")
    assert "cannot write the private copy" in proc.stdout
    assert len(proc.stdout.strip().splitlines()) == 1
