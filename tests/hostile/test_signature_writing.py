"""Writing signatures: atomic (temporary file and rename), never half-written, never signed."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import omsign
from helpers.fixtures import CliResult, KeyPair, make_model
from omsign.bundle import Signed
from omsign.errors import ModelError

Cli = Callable[..., CliResult]


class _FailingSigner:
    """A signer that fails (a token expired, a hardware key was unplugged)."""

    def sign_statement(self, payload: bytes) -> Signed:
        raise ModelError("the signer failed")


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_failing_signer_leaves_no_signature_and_no_temporary_file(tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    with pytest.raises(ModelError, match="the signer failed"):
        omsign.sign(model, signer=_FailingSigner())
    assert sorted(p.name for p in model.iterdir()) == ["a.bin"]


def test_failing_signer_keeps_the_previous_signature(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    omsign.sign(model, key=p256.private)
    before = (model / "model.sig").read_bytes()
    with pytest.raises(ModelError):
        omsign.sign(model, signer=_FailingSigner())
    assert (model / "model.sig").read_bytes() == before
    assert _leftovers(model) == []


def test_existing_signature_is_replaced_by_a_rename(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    omsign.sign(model, key=p256.private)
    old = (model / "model.sig").stat().st_ino
    opened = os.open(model / "model.sig", os.O_RDONLY)  # a reader of the old signature
    try:
        (model / "a.bin").write_bytes(b"b")
        omsign.sign(model, key=p256.private)
        assert os.fstat(opened).st_ino == old
        old_text = os.pread(opened, 1 << 20, 0)
    finally:
        os.close(opened)
    new = model / "model.sig"
    assert new.stat().st_ino != old
    assert json.loads(old_text) != json.loads(new.read_text())  # the reader saw a whole file
    assert _leftovers(model) == []


def test_failed_write_keeps_the_previous_signature_and_no_temporary_file(
    tmp_path: Path, p256: KeyPair, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    omsign.sign(model, key=p256.private)
    before = (model / "model.sig").read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    result = cli("sign", model, "--key", p256.private)
    assert result.code == 2
    assert "model.sig: cannot write signature (No space left on device)" in result.err
    assert (model / "model.sig").read_bytes() == before
    assert _leftovers(model) == []


def test_interrupted_write_leaves_no_temporary_file(
    tmp_path: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})

    def interrupt(src: Any, dst: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        omsign.sign(model, key=p256.private)
    assert sorted(p.name for p in model.iterdir()) == ["a.bin"]


def test_signature_path_that_is_a_link_is_replaced_not_written_through(
    tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (model / "model.sig").symlink_to(victim)
    result = cli("sign", model, "--key", p256.private)
    assert result.code == 0, result
    assert victim.read_bytes() == b"precious"
    assert not (model / "model.sig").is_symlink()
    assert cli("verify", model, "--key", p256.public).code == 0


def test_signature_written_inside_the_model_is_not_in_the_signed_set(
    tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a", "sub/b.bin": b"b"})
    sig = model / "sub" / "custom.sig"
    for _ in range(2):  # the second time, the first signature exists and must stay out
        result = omsign.sign(model, key=p256.private, signature=sig)
        names = [item.name for item in result.manifest.items]
        assert names == ["a.bin", "sub/b.bin"]
        assert result.manifest.serialization.ignore_paths is not None
        assert "sub/custom.sig" in result.manifest.serialization.ignore_paths
    assert cli("verify", model, "--key", p256.public, "--signature", sig).code == 0


def test_default_signature_of_a_directory_is_not_signed(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    omsign.sign(model, key=p256.private)
    again = omsign.sign(model, key=p256.private)
    assert [item.name for item in again.manifest.items] == ["a.bin"]


def test_signature_inside_the_model_reached_by_another_path_is_not_signed(
    tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    real = make_model(tmp_path / "real" / "m", {"a.bin": b"a"})
    (tmp_path / "link").symlink_to(tmp_path / "real")
    model, sig = tmp_path / "link" / "m", real / "custom.sig"
    for _ in range(2):  # the second time, the first signature exists
        result = omsign.sign(model, key=p256.private, signature=sig)
    assert [item.name for item in result.manifest.items] == ["a.bin"]
    assert cli("verify", model, "--key", p256.public, "--signature", sig).code == 0
