"""Hostile model folders: swaps, races, special files, unreadable files, look-alike names.

Races are made deterministic by acting at a known point: between enumeration and
hashing (wrapping the hashing step), between a directory's stat and its listing
(wrapping the walk), or in the middle of hashing (the progress callback, called after
each read).
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import omsign
import omsign.manifest
from helpers.fixtures import CliResult, KeyPair, make_model
from hostile.signed import deadline
from omsign.errors import IntegrityError, ModelError
from omsign.hashing import _walk

Cli = Callable[..., CliResult]
OLD = 1_000_000_000  # a modification time long before any test runs


@pytest.fixture
def signed_model(tmp_path: Path, p256: KeyPair, cli: Cli) -> Path:
    """A signed model with a 3 MiB file (several reads) and a subdirectory."""
    model = make_model(
        tmp_path / "model",
        {"big.bin": os.urandom(3 << 20), "sub/b.txt": b"b" * 100, "c.txt": b"c"},
    )
    for path in model.rglob("*"):
        os.utime(path, (OLD, OLD))
    assert cli("sign", model, "--key", p256.private).code == 0
    return model


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the model, with a secret that must never be read."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret").write_bytes(b"secret")
    return d


def _rejected(result: CliResult, code: int, *needles: str) -> None:
    assert result.code == code, result
    assert "verified" not in result.out
    errors = [line for line in result.err.splitlines() if line.startswith("omsign: error: ")]
    assert len(errors) == 1, result.err
    line = errors[0]
    for needle in needles:
        assert needle in line, (needle, line)
    assert "Traceback" not in result.err


@pytest.fixture
def between_listing_and_hashing(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[list[Callable[[], None]]]:
    """Actions to run after the model was enumerated and before any file is hashed."""
    actions: list[Callable[[], None]] = []
    import omsign._verify

    original = omsign._verify.hash_entries

    def hook(entries: Sequence[Any], *args: Any, **kw: Any) -> Any:
        while actions:
            actions.pop(0)()
        return original(entries, *args, **kw)

    monkeypatch.setattr(omsign._verify, "hash_entries", hook)
    yield actions
    assert not actions, "the hook never ran"


# --- swaps after enumeration --------------------------------------------------------------


def test_file_replaced_by_a_link_outside_after_listing_fails(
    signed_model: Path,
    outside: Path,
    p256: KeyPair,
    cli: Cli,
    between_listing_and_hashing: list[Callable[[], None]],
) -> None:
    def swap() -> None:
        (signed_model / "c.txt").unlink()
        (signed_model / "c.txt").symlink_to(outside / "secret")

    between_listing_and_hashing.append(swap)
    result = cli("verify", signed_model, "--key", p256.public)
    _rejected(result, 1, "c.txt", "symbolic link")


def test_directory_replaced_by_a_link_outside_after_listing_fails(
    signed_model: Path,
    outside: Path,
    p256: KeyPair,
    cli: Cli,
    between_listing_and_hashing: list[Callable[[], None]],
) -> None:
    def swap() -> None:  # the same names and bytes, but other files, outside the model
        shutil.copytree(signed_model / "sub", outside / "sub")
        shutil.rmtree(signed_model / "sub")
        (signed_model / "sub").symlink_to(outside / "sub")

    between_listing_and_hashing.append(swap)
    result = cli("verify", signed_model, "--key", p256.public)
    _rejected(result, 1, "sub/b.txt", "was replaced")


def test_file_replaced_by_a_fifo_after_listing_fails_without_blocking(
    signed_model: Path,
    p256: KeyPair,
    cli: Cli,
    between_listing_and_hashing: list[Callable[[], None]],
) -> None:
    def swap() -> None:
        (signed_model / "c.txt").unlink()
        os.mkfifo(signed_model / "c.txt")

    between_listing_and_hashing.append(swap)
    with deadline(10):
        result = cli("verify", signed_model, "--key", p256.public)
    _rejected(result, 1, "c.txt", "replaced")


def test_file_removed_after_listing_fails(
    signed_model: Path,
    p256: KeyPair,
    cli: Cli,
    between_listing_and_hashing: list[Callable[[], None]],
) -> None:
    between_listing_and_hashing.append((signed_model / "c.txt").unlink)
    result = cli("verify", signed_model, "--key", p256.public)
    _rejected(result, 1, "c.txt", "cannot open")


# --- a directory swapped while the walk is between stat and listing --------------------------


def test_directory_swapped_for_a_link_during_the_walk_is_not_listed(
    signed_model: Path,
    outside: Path,
    p256: KeyPair,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = _walk._Walker.walk
    listed: list[Path] = []

    def swapping(self: Any, directory: Path, *args: Any) -> None:
        if directory.name == "sub" and not directory.is_symlink():
            shutil.rmtree(directory)
            directory.symlink_to(outside)
        listed.append(directory)
        original(self, directory, *args)

    monkeypatch.setattr(_walk._Walker, "walk", swapping)
    result = cli("verify", signed_model, "--key", p256.public)
    _rejected(result, 1, "sub", "was replaced or removed while the model was read")
    assert "secret" not in result.err


# --- files that change while they are hashed ------------------------------------------------


def _verify_while(model: Path, key: KeyPair, action: Callable[[Path], None]) -> IntegrityError:
    done: list[bool] = []

    def progress(hashed: int, total: int) -> None:
        if hashed and not done:
            done.append(True)
            action(model / "big.bin")

    with pytest.raises(IntegrityError) as caught:
        omsign.verify(model, key=key.public, progress=progress, workers=1)
    assert done, "the file was never read"
    assert caught.value.exit_code == 1
    return caught.value


def test_file_growing_while_hashed_fails(signed_model: Path, p256: KeyPair) -> None:
    def grow(path: Path) -> None:
        with path.open("ab") as f:
            f.write(b"more")

    exc = _verify_while(signed_model, p256, grow)
    assert "big.bin: file changed while it was being hashed" in str(exc)


def test_file_shrinking_while_hashed_fails(signed_model: Path, p256: KeyPair) -> None:
    def shrink(path: Path) -> None:
        os.truncate(path, 1 << 20)

    exc = _verify_while(signed_model, p256, shrink)
    assert "big.bin: file shrank while it was being hashed" in str(exc)


def test_file_modified_in_place_while_hashed_fails(signed_model: Path, p256: KeyPair) -> None:
    def modify(path: Path) -> None:  # same size; the byte was already hashed
        with path.open("r+b") as f:
            f.write(b"Z")

    exc = _verify_while(signed_model, p256, modify)
    assert "big.bin: file changed while it was being hashed" in str(exc)


def test_file_changed_while_signing_is_not_signed(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"big.bin": os.urandom(3 << 20)})
    os.utime(model / "big.bin", (OLD, OLD))
    calls: list[int] = []

    def progress(hashed: int, total: int) -> None:
        if hashed and not calls:
            calls.append(hashed)
            with (model / "big.bin").open("ab") as f:
                f.write(b"x")

    with pytest.raises(ModelError, match=r"big\.bin: file changed while it was being hashed"):
        omsign.sign(model, key=p256.private, progress=progress, workers=1)
    assert not (model / "model.sig").exists()


# --- special files --------------------------------------------------------------------------


def test_fifo_in_the_model_is_refused_without_blocking(
    signed_model: Path, p256: KeyPair, cli: Cli
) -> None:
    os.mkfifo(signed_model / "sub" / "pipe")
    with deadline(10):
        verified = cli("verify", signed_model, "--key", p256.public)
        signing = cli("sign", signed_model, "--key", p256.private)
    _rejected(verified, 1, "sub/pipe", "is a FIFO")
    _rejected(signing, 2, "sub/pipe", "is a FIFO")


def test_unix_socket_in_the_model_is_refused(
    signed_model: Path, p256: KeyPair, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(signed_model)  # socket paths are limited to ~100 bytes
    server = socket.socket(socket.AF_UNIX)
    server.bind("sock")
    with server, deadline(10):
        result = cli("verify", signed_model, "--key", p256.public)
    _rejected(result, 1, "sock", "is a socket")


def test_link_to_a_device_is_refused_even_with_allow_symlinks(
    tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    (model / "zero").symlink_to("/dev/zero")
    with deadline(10):
        result = cli("sign", model, "--key", p256.private, "--allow-symlinks")
    _rejected(result, 2, "zero", "is a device")


def test_signed_file_replaced_by_a_link_to_a_device_is_refused(
    tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a", "zero": b"z"})
    assert cli("sign", model, "--key", p256.private, "--allow-symlinks").code == 0
    (model / "zero").unlink()
    (model / "zero").symlink_to("/dev/zero")
    with deadline(10):
        result = cli("verify", model, "--key", p256.public)
    _rejected(result, 1, "zero", "is a device")


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a device node needs root")
def test_device_node_in_the_model_is_refused(signed_model: Path, p256: KeyPair, cli: Cli) -> None:
    os.mknod(signed_model / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    with deadline(10):
        result = cli("verify", signed_model, "--key", p256.public)
    _rejected(result, 1, "null", "is a device")


# --- unreadable files -------------------------------------------------------------------------


def _deny(monkeypatch: pytest.MonkeyPatch, victim: Path) -> None:
    """Makes opening ``victim`` fail with EACCES, as chmod 000 does for a non-root user.

    Tests run as root in CI, where permission bits do not stop reads; failing the open
    itself exercises the same path in omsign whoever runs the tests.
    """
    real_open = os.open

    def guarded(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if os.fspath(path) == str(victim):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", guarded)


def test_unreadable_file_is_named_in_the_error(
    signed_model: Path, p256: KeyPair, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deny(monkeypatch, signed_model / "sub" / "b.txt")
    result = cli("verify", signed_model, "--key", p256.public)
    _rejected(result, 1, "sub/b.txt: cannot open (Permission denied)")


def test_unreadable_directory_is_named_in_the_error(
    signed_model: Path, p256: KeyPair, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deny(monkeypatch, signed_model / "sub")
    result = cli("sign", signed_model, "--key", p256.private)
    _rejected(result, 2, "sub: cannot list directory (Permission denied)")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_with_mode_000_is_named_in_the_error(
    signed_model: Path, p256: KeyPair, cli: Cli
) -> None:
    victim = signed_model / "c.txt"
    victim.chmod(0)
    try:
        result = cli("verify", signed_model, "--key", p256.public)
    finally:
        victim.chmod(0o644)
    _rejected(result, 1, "c.txt: cannot open (Permission denied)")


# --- deep trees and look-alike names ----------------------------------------------------------


def test_directories_nested_too_deep_are_refused(tmp_path: Path, p256: KeyPair, cli: Cli) -> None:
    model = tmp_path / "deep"
    path = model
    for _ in range(300):
        path = path / "d"
    path.mkdir(parents=True)
    (path / "f").write_bytes(b"f")
    result = cli("sign", model, "--key", p256.private)
    _rejected(result, 2, "nested deeper than 256 levels")


@pytest.mark.parametrize(
    ("first", "second"),
    [("caf\u00e9.txt", "cafe\u0301.txt"), ("Model.bin", "model.bin"), ("STRASSE", "stra\u00dfe")],
    ids=["nfc_nfd", "case", "case_fold"],
)
def test_names_equal_after_normalisation_or_case_folding_are_reported(
    tmp_path: Path, p256: KeyPair, cli: Cli, first: str, second: str
) -> None:
    model = make_model(tmp_path / "m", {first: b"1", second: b"2", "other": b"3"})
    signing = cli("sign", model, "--key", p256.private)
    verifying = cli("verify", model, "--key", p256.public)
    assert signing.code == 0
    assert verifying.code == 0
    for result in (signing, verifying):
        warnings = [line for line in result.err.splitlines() if "warning" in line]
        assert len(warnings) == 1, result.err
        assert first in warnings[0]
        assert second in warnings[0]
        assert "letter case" in warnings[0]


def test_directories_equal_after_case_folding_are_reported_once(
    tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    model = make_model(tmp_path / "m", {"Weights/a.bin": b"1", "weights/a.bin": b"2"})
    result = cli("sign", model, "--key", p256.private)
    assert result.code == 0
    warnings = [line for line in result.err.splitlines() if "warning" in line]
    assert len(warnings) == 1, result.err
    assert "Weights and weights differ only" in warnings[0]


def test_distinct_names_give_no_look_alike_warning(tmp_path: Path, p256: KeyPair, cli: Cli) -> None:
    model = make_model(tmp_path / "m", {"a/x.bin": b"1", "b/x.bin": b"2", "caf\u00e9": b"3"})
    result = cli("sign", model, "--key", p256.private)
    assert result.code == 0
    assert "warning" not in result.err


def test_model_that_is_a_fifo_is_refused_without_blocking(
    tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    os.mkfifo(tmp_path / "model.bin")
    with deadline(10):
        signing = cli("sign", tmp_path / "model.bin", "--key", p256.private)
    _rejected(signing, 2, "model.bin", "is a FIFO")
