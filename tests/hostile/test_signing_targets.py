"""Signing never overwrites the model, and bad inputs end in one line, not a traceback.

- A signature path that is a file of the model (or the single-file model itself) would
  drop that file from the signature and overwrite it: refused as a usage error (exit 2)
  before anything is hashed or written.
- A model folder whose own name is not UTF-8 cannot be the signed subject name.
- A file that fails to read while it is hashed (here a permitted link to a kernel file
  that answers every read with EIO) is a one-line error naming it.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import CliResult, KeyPair, make_model
from omsign.errors import ModelError, UsageError

Cli = Callable[..., CliResult]
EIO_FILE = Path("/sys/devices/software/power/autosuspend_delay_ms")  # regular, 4096, EIO


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "model", {"weights.bin": b"w" * 1000, "sub/cfg.json": b"{}"})


@pytest.mark.parametrize("target", ["weights.bin", "sub/cfg.json"])
def test_signature_over_a_model_file_is_refused(
    model: Path, p256: KeyPair, cli: Cli, target: str
) -> None:
    before = _digest(model / target)
    res = cli("sign", model, "--key", p256.private, "--signature", model / target)
    assert res.code == 2
    assert "Traceback" not in res.err and len(res.err.strip().splitlines()) == 1
    assert "--" not in res.err.split(";")[0]  # the message itself names no flag
    assert _digest(model / target) == before
    assert not (model / "model.sig").exists()


def test_signature_over_the_single_file_model_is_refused(
    tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 1000)
    res = cli("sign", weights, "--key", p256.private, "--signature", weights)
    assert res.code == 2
    assert weights.read_bytes() == b"w" * 1000


def test_signature_through_a_link_to_the_single_file_model_is_refused(
    tmp_path: Path, p256: KeyPair
) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 1000)
    (tmp_path / "alias").symlink_to(weights.name)
    with pytest.raises(UsageError, match="the model itself"):
        omsign.sign(weights, key=p256.private, signature=tmp_path / "alias")
    assert weights.read_bytes() == b"w" * 1000


def test_resigning_over_an_earlier_signature_inside_the_model_works(
    model: Path, p256: KeyPair, cli: Cli
) -> None:
    sig = model / "sub" / "release.sig"
    assert cli("sign", model, "--key", p256.private, "--signature", sig).code == 0
    assert cli("sign", model, "--key", p256.private, "--signature", sig).code == 0
    assert cli("verify", model, "--key", p256.public, "--signature", sig).code == 0


def test_signature_in_an_ignored_folder_of_the_model_is_allowed(
    model: Path, p256: KeyPair, cli: Cli
) -> None:
    (model / "out").mkdir()
    (model / "out" / "notes.txt").write_text("scratch")
    res = cli(
        "sign",
        model,
        "--key",
        p256.private,
        "--ignore-paths",
        model / "out",
        "--signature",
        model / "out" / "notes.txt",
    )
    assert res.code == 0, res.err


def test_model_folder_name_not_utf8_is_one_line(tmp_path: Path, p256: KeyPair, cli: Cli) -> None:
    folder = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"model-\xff")))
    try:
        make_model(folder, {"a.bin": b"a"})
    except OSError:
        pytest.skip("the file system refuses names that are not UTF-8")
    res = cli("sign", folder, "--key", p256.private)
    assert res.code == 2
    assert "UTF-8" in res.err and "Traceback" not in res.err
    assert len(res.err.strip().splitlines()) == 1
    assert not (folder / "model.sig").exists()


@pytest.mark.skipif(not EIO_FILE.is_file(), reason="no sysfs file that fails to read")
def test_read_error_through_an_allowed_link_is_one_line(
    model: Path, p256: KeyPair, cli: Cli
) -> None:
    (model / "broken.bin").symlink_to(EIO_FILE)
    res = cli("sign", model, "--key", p256.private, "--allow-symlinks")
    assert res.code == 2
    assert "broken.bin" in res.err and "Traceback" not in res.err
    (error,) = [line for line in res.err.splitlines() if "error:" in line]
    assert "cannot read" in error
    assert not (model / "model.sig").exists()


def test_read_error_while_hashing_is_a_model_error(
    model: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same without sysfs: every read of the model's data fails as a dying disk would."""
    real_pread = os.pread

    def failing(fd: int, size: int, offset: int) -> bytes:
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) == "weights.bin":
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real_pread(fd, size, offset)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to tell descriptors apart")
    monkeypatch.setattr(os, "pread", failing)
    with pytest.raises(ModelError, match=r"weights\.bin.*Input/output error"):
        omsign.sign(model, key=p256.private)
    monkeypatch.undo()
    assert not (model / "model.sig").exists()
