"""A reader that stops early never turns a failed verification into success.

``omsign verify --json | head`` closes the pipe while the report is still being written;
the exit code must still say what happened to the model (1 failed, 0 verified), with no
traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.fixtures import CliResult, KeyPair, make_model
from helpers.pki import make_ec_key, write_private_key
from hostile.signed import sign_payload

Cli = Callable[..., CliResult]
RUN = "from omsign.cli import main; main()"


def _run_into_closed_pipe(*args: str | Path) -> tuple[int, str]:
    """Runs omsign with stdout a pipe whose reader is already gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", RUN, *map(str, args)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=120,
        )
    finally:
        os.close(write)
    return proc.returncode, proc.stderr


def _run_into_head(*args: str | Path, keep: int = 100) -> tuple[int, str]:
    """Runs omsign with a reader that takes the first bytes and stops (like ``head``)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(keep)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return proc.wait(timeout=120), err


@pytest.fixture
def tampered(tmp_path: Path, p256: KeyPair, cli: Cli) -> Path:
    """A signed model with thousands of unsigned files added: a report far larger than a pipe."""
    model = make_model(tmp_path / "model", {"a.bin": b"a" * 100})
    assert cli("sign", model, "--key", p256.private).code == 0
    for i in range(3000):
        (model / f"added-after-signing-with-a-long-name-{i:05}.bin").write_bytes(b"x")
    return model


def test_failed_verify_json_into_head_exits_1(tampered: Path, p256: KeyPair) -> None:
    code, err = _run_into_head("verify", tampered, "--key", p256.public, "--json")
    assert code == 1
    assert "Traceback" not in err


def test_failed_verify_json_into_closed_pipe_exits_1(tampered: Path, p256: KeyPair) -> None:
    code, err = _run_into_closed_pipe("verify", tampered, "--key", p256.public, "--json")
    assert code == 1
    assert "Traceback" not in err
    assert "omsign: error:" in err  # the reason still reaches stderr


def test_failed_verify_text_into_closed_pipe_exits_1(tampered: Path, p256: KeyPair) -> None:
    code, err = _run_into_closed_pipe("verify", tampered, "--key", p256.public)
    assert code == 1
    assert "Traceback" not in err


def test_malformed_inspect_into_closed_pipe_exits_1(tmp_path: Path) -> None:
    """inspect prints first and fails after: the failure survives a closed pipe."""
    priv = tmp_path / "k.pem"
    write_private_key(priv, make_ec_key())
    sig = tmp_path / "model.sig"
    sig.write_text(json.dumps(sign_payload(priv, b"not a statement")))
    code, err = _run_into_closed_pipe("inspect", sig, "--json")
    assert code == 1
    assert "Traceback" not in err


def test_verified_model_into_closed_pipe_exits_0(tmp_path: Path, p256: KeyPair, cli: Cli) -> None:
    """A success whose output nobody read is still a success (documented in the CLI)."""
    model = make_model(tmp_path / "model", {"a.bin": b"a"})
    assert cli("sign", model, "--key", p256.private).code == 0
    code, err = _run_into_closed_pipe("verify", model, "--key", p256.public, "--json")
    assert code == 0
    assert "Traceback" not in err and "Exception ignored" not in err


def _run_into_full_disk(*args: str | Path) -> tuple[int, str]:
    """Runs omsign with stdout on ``/dev/full``, where every write fails with ENOSPC."""
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-c", RUN, *map(str, args)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            timeout=120,
        )
    return proc.returncode, proc.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_failed_verify_onto_a_full_disk_exits_1(tampered: Path, p256: KeyPair) -> None:
    code, err = _run_into_full_disk("verify", tampered, "--key", p256.public, "--json")
    assert code == 1
    assert "Traceback" not in err


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_verified_model_onto_a_full_disk_is_an_environment_error(
    tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    """The report was asked for and lost: not a silent success."""
    model = make_model(tmp_path / "model", {"a.bin": b"a"})
    assert cli("sign", model, "--key", p256.private).code == 0
    code, err = _run_into_full_disk("verify", model, "--key", p256.public, "--json")
    assert code == 2
    assert "cannot write the output" in err and "Traceback" not in err
    assert "Exception ignored" not in err
