"""Fixtures shared by omsign's tests: keys per curve, small models, the CLI."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.pki import make_ec_key, write_private_key, write_public_key

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "tests" / "assets"
COMPAT = ASSETS / "compat-vectors"
SPEC = ASSETS / "oms-spec"


@dataclass(frozen=True)
class CliResult:
    """Exit code and output of one command."""

    code: int
    out: str
    err: str


@dataclass(frozen=True)
class KeyPair:
    """A private and public PEM key on disk."""

    curve: str
    private: Path
    public: Path


def run_cli(*args: str | os.PathLike[str]) -> CliResult:
    """Runs ``omsign`` in-process and captures its exit code and output."""
    from omsign.cli import run

    # The CLI configures the "omsign" logger (own handler, no propagation): put it back, so
    # tests run later in this process still see log records (caplog).
    logger = logging.getLogger("omsign")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = run([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        finally:
            logger.handlers[:], logger.level, logger.propagate = saved
    return CliResult(code, out.getvalue(), err.getvalue())


def run_omsign_process(*args: str | os.PathLike[str], **kw: object) -> CliResult:
    """Runs the installed ``omsign`` command as a subprocess."""
    exe = Path(sys.executable).parent / "omsign"
    proc = subprocess.run(
        [str(exe), *map(str, args)], capture_output=True, text=True, check=False, **kw
    )  # type: ignore[call-overload]
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """The in-process CLI runner."""
    return run_cli


def make_model(root: Path, files: dict[str, bytes] | None = None) -> Path:
    """Writes a small directory model (default: an HF-like layout) and returns it."""
    files = files or {
        "config.json": b'{"hidden_size": 8}\n',
        "model.safetensors": os.urandom(300_000),
        "tokenizer/tokenizer.json": b'{"vocab": {}}\n',
        "README.md": b"# a model\n",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A small directory model."""
    return make_model(tmp_path / "model")


@pytest.fixture(scope="session", params=["P-256", "P-384", "P-521"])
def keypair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """A PEM key pair for each supported curve."""
    d = tmp_path_factory.mktemp(f"key-{request.param}")
    key = make_ec_key(request.param)
    write_private_key(d / "private.pem", key)
    write_public_key(d / "public.pem", key)
    return KeyPair(request.param, d / "private.pem", d / "public.pem")


@pytest.fixture(scope="session")
def p256(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """One P-256 key pair."""
    d = tmp_path_factory.mktemp("key-p256")
    key = make_ec_key("P-256")
    write_private_key(d / "private.pem", key)
    write_public_key(d / "public.pem", key)
    return KeyPair("P-256", d / "private.pem", d / "public.pem")


def require(condition: bool, reason: str) -> None:
    """Skips with ``reason`` unless running under CI, where a missing dependency fails."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def copy_vector(tmp_path: Path) -> Callable[[str], Path]:
    """Copies a compat vector folder into a writable temporary directory."""

    def copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(COMPAT / name, dest)
        for p in dest.rglob("*"):
            p.chmod(0o755 if p.is_dir() else 0o644)
        return dest

    return copy


def need_module(name: str) -> types.ModuleType:
    """Imports an optional test dependency; skips the module without it, fails under CI."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{name} is not installed ('make test' installs it)", allow_module_level=True)


def grow_beyond_memory(path: Path, header: Callable[[int], bytes] = lambda size: b"") -> None:
    """Grows a file in place (same inode, sparse: no disk used) to four times the
    machine's memory and swap; its first bytes become ``header(new size)``. Linux only."""
    fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    kib = int(fields["MemTotal"].split()[0]) + int(fields["SwapTotal"].split()[0])
    size = 4 * kib * 1024
    with open(path, "r+b") as f:
        f.write(header(size))
        f.truncate(size)
