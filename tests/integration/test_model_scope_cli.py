"""What a model is on the command line: empty models and ``--ignore-paths``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.fixtures import CliResult, KeyPair, make_model

Cli = Callable[..., CliResult]


@pytest.mark.parametrize("shard", [[], ["--shard-size", "10"]])
def test_an_empty_model_is_refused_in_every_mode(
    cli: Cli, tmp_path: Path, p256: KeyPair, shard: list[str]
) -> None:
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    signed = cli("sign", empty_dir, "--key", p256.private, *shard)
    assert signed.code == 2
    assert "no files to sign" in signed.err
    assert cli("digest", empty_dir, *shard).code == 2
    assert not (empty_dir / "model.sig").exists()


def test_a_model_of_empty_files_is_refused_in_shards(
    cli: Cli, tmp_path: Path, p256: KeyPair
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"", "b.bin": b""})
    signed = cli("sign", model, "--key", p256.private, "--shard-size", "10")
    assert signed.code == 2
    assert "every file of the model is empty" in signed.err
    assert "without --shard-size" in signed.err
    assert "signed 0 files" not in signed.err
    assert not (model / "model.sig").exists()


def test_a_model_whose_every_file_is_ignored_is_refused(
    cli: Cli, tmp_path: Path, p256: KeyPair
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    signed = cli("sign", model, "--key", p256.private, "--ignore-paths", model / "a.bin")
    assert signed.code == 2
    assert "no files to sign after exclusions" in signed.err
    assert not (model / "model.sig").exists()


@pytest.mark.parametrize("command", ["sign", "verify", "digest"])
def test_an_ignore_path_outside_the_model_is_a_usage_error(
    cli: Cli, tmp_path: Path, p256: KeyPair, command: str
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a", "b.bin": b"b"})
    assert cli("sign", model, "--key", p256.private).code == 0
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes(b"x")
    method = {"sign": ["--key", p256.private], "verify": ["--key", p256.public]}
    result = cli(command, model, *method.get(command, []), "--ignore-paths", outside)
    assert result.code == 2
    assert f"{outside}: ignore path is not inside the model" in result.err
    assert "--ignore-paths takes paths inside the model" in result.err


def test_an_ignore_path_that_matches_nothing_is_reported(
    cli: Cli, tmp_path: Path, p256: KeyPair
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a", "b.bin": b"b"})
    typo = model / "b.bni"
    signed = cli("sign", model, "--key", p256.private, "--ignore-paths", typo)
    assert signed.code == 0, signed.err
    assert f"warning: ignore path {typo} matches nothing in the model" in signed.err
    verified = cli("verify", model, "--key", p256.public, "--ignore-paths", typo)
    assert verified.code == 0, verified.err
    assert f"ignore path {typo} matches nothing" in verified.err


def test_an_ignore_path_that_matches_is_not_reported(
    cli: Cli, tmp_path: Path, p256: KeyPair
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a", "sub/b.bin": b"b"})
    signed = cli("sign", model, "--key", p256.private, "--ignore-paths", model / "sub")
    assert signed.code == 0, signed.err
    assert "matches nothing" not in signed.err
