"""``omsign verify --allow-missing`` and ``--files`` on the command line, with the JSON report."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.fixtures import CliResult, KeyPair, make_model
from helpers.reports import parse_report

EIGHT = {f"w/shard-{i}.bin": os.urandom(4_000 + i) for i in range(6)} | {
    "config.json": b'{"layers": 2}\n',
    "tokenizer.json": b'{"vocab": {}}\n',
}
Cli = Callable[..., CliResult]


@pytest.fixture
def signed(tmp_path: Path, p256: KeyPair, cli: Cli) -> Path:
    model = make_model(tmp_path / "model", EIGHT)
    assert cli("sign", model, "--key", p256.private).code == 0
    return model


def test_allow_missing_json_report(signed: Path, p256: KeyPair, cli: Cli) -> None:
    for name in ("w/shard-0.bin", "w/shard-1.bin", "tokenizer.json"):
        (signed / name).unlink()
    strict = cli("verify", signed, "--key", p256.public)
    assert strict.code == 1
    assert "missing" in strict.err
    r = cli("verify", signed, "--key", p256.public, "--allow-missing", "--json")
    assert r.code == 0, r.err
    files = parse_report(r.out)["files"]
    assert files["absent"] == ["tokenizer.json", "w/shard-0.bin", "w/shard-1.bin"]
    assert len(files["verified"]) == 5
    assert files["unchecked"] == []


def test_allow_missing_edited_file_fails(signed: Path, p256: KeyPair, cli: Cli) -> None:
    (signed / "w/shard-0.bin").unlink()
    (signed / "config.json").write_bytes(b'{"layers": 3}\n')
    for extra in ((), ("--allow-missing",)):
        r = cli("verify", signed, "--key", p256.public, *extra, "--json")
        assert r.code == 1
        assert parse_report(r.out)["difference"]["changed"] == ["config.json"]


def test_allow_missing_human_output(signed: Path, p256: KeyPair, cli: Cli) -> None:
    (signed / "tokenizer.json").unlink()
    r = cli("verify", signed, "--key", p256.public, "--allow-missing")
    assert r.code == 0
    assert "absent: 1 file(s): tokenizer.json" in r.out


def _fifos_for_the_rest(model: Path, keep: set[str]) -> None:
    """Replaces every other signed file with a FIFO: opening one for reading would block."""
    for name in EIGHT:
        if name not in keep:
            (model / name).unlink()
            os.mkfifo(model / name)


def test_files_reads_nothing_else(signed: Path, p256: KeyPair) -> None:
    _fifos_for_the_rest(signed, {"config.json", "w/shard-2.bin"})
    exe = Path(sys.executable).parent / "omsign"
    proc = subprocess.run(
        [
            str(exe),
            "verify",
            str(signed),
            "--key",
            str(p256.public),
            "--json",
            "--files",
            "config.json",
            "w/shard-2.*",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    files = parse_report(proc.stdout)["files"]
    assert files["verified"] == ["config.json", "w/shard-2.bin"]
    assert len(files["unchecked"]) == 6
    assert "tokenizer.json" in files["unchecked"]
    assert files["absent"] == []


def test_fifos_do_fail_a_full_verification(signed: Path, p256: KeyPair, cli: Cli) -> None:
    _fifos_for_the_rest(signed, {"config.json", "w/shard-2.bin"})
    r = cli("verify", signed, "--key", p256.public)
    assert r.code == 1
    assert "FIFO" in r.err


def test_files_edited_chosen_file_fails(signed: Path, p256: KeyPair, cli: Cli) -> None:
    (signed / "w/shard-3.bin").write_bytes(b"edited")
    r = cli("verify", signed, "--key", p256.public, "--files", "w/shard-3.bin")
    assert r.code == 1
    assert "changed: w/shard-3.bin" in r.err


def test_files_absent_chosen_file_fails(signed: Path, p256: KeyPair, cli: Cli) -> None:
    (signed / "config.json").unlink()
    r = cli("verify", signed, "--key", p256.public, "--files", "config.json")
    assert r.code == 1
    assert "missing: config.json" in r.err


def test_files_unknown_pattern_fails(signed: Path, p256: KeyPair, cli: Cli) -> None:
    r = cli("verify", signed, "--key", p256.public, "--files", "nothing*")
    assert r.code == 1
    assert "no signed file matches" in r.err
