"""Partial verification that proves nothing, and files a shards signature cannot cover.

- ``--allow-missing`` with ``--ignore-unsigned-files`` or ``--files``: when no signed file
  is present at all, nothing was verified, and that is a failure (exit 1), not success.
- Shards signatures leave empty files out (OMS 6.3.2): an empty file present locally,
  added after signing or not, cannot be told from a signed one. It is reported with a
  warning (log and ``verify --json``), never silently passed over.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import CliResult, KeyPair, make_model
from helpers.reports import parse_report
from omsign.errors import IntegrityError

Cli = Callable[..., CliResult]


@pytest.fixture
def signed(tmp_path: Path, p256: KeyPair, cli: Cli) -> Path:
    model = make_model(tmp_path / "model", {"a.bin": b"a" * 100, "sub/b.txt": b"b"})
    assert cli("sign", model, "--key", p256.private).code == 0
    return model


def _strip(model: Path) -> None:
    """Removes every signed file and leaves one file nobody signed."""
    (model / "a.bin").unlink()
    shutil.rmtree(model / "sub")
    (model / "planted.bin").write_bytes(b"x")


def test_allow_missing_ignore_unsigned_with_no_signed_file_fails(
    signed: Path, p256: KeyPair, cli: Cli
) -> None:
    _strip(signed)
    res = cli("verify", signed, "--key", p256.public, "--allow-missing", "--ignore-unsigned-files")
    assert res.code == 1
    assert "nothing was verified" in res.err
    assert res.err.startswith("omsign: error:") and "Traceback" not in res.err


def test_allow_missing_files_with_no_selected_file_fails(
    signed: Path, p256: KeyPair, cli: Cli
) -> None:
    (signed / "a.bin").unlink()
    res = cli("verify", signed, "--key", p256.public, "--allow-missing", "--files", "a.bin")
    assert res.code == 1
    assert "nothing was verified" in res.err


def test_allow_missing_files_json_says_not_verified(signed: Path, p256: KeyPair, cli: Cli) -> None:
    _strip(signed)
    res = cli("verify", signed, "--key", p256.public, "--allow-missing", "--files", "*", "--json")
    assert res.code == 1
    assert parse_report(res.out)["verified"] is False


def test_library_refuses_verifying_nothing(signed: Path, p256: KeyPair) -> None:
    _strip(signed)
    with pytest.raises(IntegrityError, match="nothing was verified"):
        omsign.verify(signed, key=p256.public, allow_missing=True, ignore_unsigned_files=True)


def test_allow_missing_with_one_signed_file_present_still_verifies(
    signed: Path, p256: KeyPair, cli: Cli
) -> None:
    shutil.rmtree(signed / "sub")
    res = cli("verify", signed, "--key", p256.public, "--allow-missing", "--ignore-unsigned-files")
    assert res.code == 0, res.err
    assert "absent: 1 file(s): sub/b.txt" in res.out


@pytest.fixture
def sharded(tmp_path: Path, p256: KeyPair, cli: Cli) -> Path:
    model = make_model(tmp_path / "model", {"a.bin": b"a" * 100, "signed-empty": b""})
    assert cli("sign", model, "--key", p256.private, "--shard-size", "64").code == 0
    return model


def test_shards_empty_file_added_after_signing_is_reported(
    sharded: Path, p256: KeyPair, cli: Cli
) -> None:
    (sharded / "added-later.txt").touch()
    res = cli("verify", sharded, "--key", p256.public)
    assert res.code == 0  # the format cannot prove it was not signed
    assert "warning" in res.err and "added-later.txt" in res.err
    assert "signed-empty" in res.err  # present locally too: equally unprovable
    assert "cannot be told" in res.err


def test_shards_empty_file_is_a_json_warning(sharded: Path, p256: KeyPair, cli: Cli) -> None:
    (sharded / "added-later.txt").touch()
    res = cli("verify", sharded, "--key", p256.public, "--json")
    assert res.code == 0
    warnings = parse_report(res.out)["warnings"]
    assert any("added-later.txt" in w and "cannot be told" in w for w in warnings)


def test_shards_without_empty_files_warns_nothing(tmp_path: Path, p256: KeyPair, cli: Cli) -> None:
    model = make_model(tmp_path / "model", {"a.bin": b"a" * 100})
    assert cli("sign", model, "--key", p256.private, "--shard-size", "64").code == 0
    res = cli("verify", model, "--key", p256.public)
    assert res.code == 0
    assert "empty file" not in res.err
