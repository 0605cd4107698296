"""A signature path that leads to a FIFO or a device is refused before it is opened.

Opening a device can have side effects, and opening a FIFO's read end releases a writer
waiting on it: the signature's type is checked (through its links) first, and a
non-regular target is never opened.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from helpers.fixtures import CliResult, KeyPair, make_model
from hostile.signed import deadline

Cli = Callable[..., CliResult]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "model", {"a.bin": b"a"})


@pytest.fixture
def waiting_writer(tmp_path: Path) -> Iterator[tuple[Path, threading.Event]]:
    """A FIFO with a writer blocked until someone opens the read end; the event says so."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    opened = threading.Event()

    def write() -> None:
        fd = os.open(fifo, os.O_WRONLY)  # blocks until a reader opens the FIFO
        opened.set()
        os.close(fd)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    yield fifo, opened
    if not opened.is_set():  # release the writer
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        writer.join(5)
        os.close(fd)


def test_verify_never_opens_a_fifo_behind_a_signature_link(
    model: Path, p256: KeyPair, cli: Cli, waiting_writer: tuple[Path, threading.Event]
) -> None:
    fifo, opened = waiting_writer
    (model / "model.sig").symlink_to(fifo)
    with deadline(20):
        res = cli("verify", model, "--key", p256.public)
    assert res.code == 1
    assert "not a regular file" in res.err and "Traceback" not in res.err
    assert not opened.wait(0.5), "the FIFO was opened"


def test_inspect_never_opens_a_fifo_behind_a_signature_link(
    tmp_path: Path, cli: Cli, waiting_writer: tuple[Path, threading.Event]
) -> None:
    fifo, opened = waiting_writer
    sig = tmp_path / "model.sig"
    sig.symlink_to(fifo)
    with deadline(20):
        res = cli("inspect", sig)
    assert res.code == 1
    assert "not a regular file" in res.err
    assert not opened.wait(0.5), "the FIFO was opened"


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero", "/dev/tty"])
def test_verify_refuses_a_device_behind_a_signature_link(
    model: Path, p256: KeyPair, cli: Cli, device: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not os.path.exists(device):
        pytest.skip(f"{device} is not available")
    (model / "model.sig").symlink_to(device)
    opened: list[str] = []
    real_open = os.open

    def spy(path: object, flags: int, *args: object, **kw: object) -> int:
        locating = flags & getattr(os, "O_PATH", 0)  # names the file, opens nothing
        if str(path) in (device, str(model / "model.sig")) and not locating:
            opened.append(str(path))
        return real_open(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", spy)
    res = cli("verify", model, "--key", p256.public)
    monkeypatch.undo()
    assert res.code == 1
    assert "not a regular file" in res.err
    assert opened == []


def test_signature_given_as_a_fifo_is_refused_unopened(
    model: Path, p256: KeyPair, cli: Cli, waiting_writer: tuple[Path, threading.Event]
) -> None:
    fifo, opened = waiting_writer
    with deadline(20):
        res = cli("verify", model, "--key", p256.public, "--signature", fifo)
    assert res.code == 1
    assert not opened.wait(0.5), "the FIFO was opened"
