"""Hostile signed manifests: validly signed statements that must still be refused.

The statements are signed with the trusted key (a compromised or careless signer).
Names that are absolute, climb out with ``..``, hold NUL or backslashes, have empty
components or repeat are rejected before any file of the model is opened: each such
model holds a FIFO, which the walk would report (and a blocking open would hang on).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers.fixtures import CliResult, KeyPair, make_model
from hostile.signed import (
    LEGACY_PREDICATE_TYPE,
    deadline,
    resource,
    statement,
    write_signed,
)

Cli = Callable[..., CliResult]


def _rejected(result: CliResult, *needles: str) -> None:
    assert result.code == 1, result
    assert "verified" not in result.out
    line = result.err.strip().splitlines()[0]
    assert line.startswith("omsign: error: "), result.err
    for needle in needles:
        assert needle in line, (needle, line)
    assert "Traceback" not in result.err


# --- signed manifests with hostile names: rejected before any file is opened --------------


@pytest.fixture
def fifo_model(tmp_path: Path) -> Path:
    """A model whose walk would fail on a FIFO: proof that names are checked first."""
    model = make_model(tmp_path / "fifo-model", {"a.bin": b"a"})
    os.mkfifo(model / "pipe")
    return model


_HOSTILE_NAMES = {
    "absolute": ("/etc/passwd", "is absolute"),
    "dotdot": ("../outside.bin", "'..' component"),
    "dotdot_inside": ("sub/../../outside.bin", "'..' component"),
    "nul": ("a.bin\0.txt", "contains NUL"),
    "backslash_separator": ("sub\\..\\..\\outside.bin", "contains a backslash"),
    "empty_component": ("sub//a.bin", "empty, '.' or '..' component"),
    "dot_component": ("./a.bin", "empty, '.' or '..' component"),
    "trailing_slash": ("sub/", "empty, '.' or '..' component"),
    "empty_name": ("", "resource name is empty"),
}


@pytest.mark.parametrize("attack", list(_HOSTILE_NAMES))
def test_resource_name_is_rejected_before_reading(
    fifo_model: Path, p256: KeyPair, cli: Cli, attack: str
) -> None:
    name, needle = _HOSTILE_NAMES[attack]
    st = statement([resource("a.bin", b"a"), resource(name)])
    sig = fifo_model.parent / "s.sig"
    write_signed(sig, p256.private, st)
    with deadline(10):
        result = cli("verify", fifo_model, "--key", p256.public, "--signature", sig)
    _rejected(result, "malformed statement", needle)
    assert "FIFO" not in result.err


@pytest.mark.parametrize("attack", ["dotdot", "absolute", "nul"])
def test_shard_resource_name_is_rejected_before_reading(
    fifo_model: Path, p256: KeyPair, cli: Cli, attack: str
) -> None:
    name, needle = _HOSTILE_NAMES[attack]
    ser = {"method": "shards", "hash_type": "sha256", "allow_symlinks": False, "shard_size": 10}
    st = statement([resource("a.bin:0:1", b"a"), resource(f"{name}:0:10")], serialization=ser)
    sig = fifo_model.parent / "s.sig"
    write_signed(sig, p256.private, st)
    with deadline(10):
        result = cli("verify", fifo_model, "--key", p256.public, "--signature", sig)
    _rejected(result, needle)
    assert "FIFO" not in result.err


def test_duplicate_resource_name_is_rejected_before_reading(
    fifo_model: Path, p256: KeyPair, cli: Cli
) -> None:
    st = statement([resource("a.bin", b"a"), resource("a.bin", b"b")])
    sig = fifo_model.parent / "s.sig"
    write_signed(sig, p256.private, st)
    result = cli("verify", fifo_model, "--key", p256.public, "--signature", sig)
    _rejected(result, "'a.bin' appears twice")


def test_legacy_format_dotdot_name_is_rejected_before_reading(
    fifo_model: Path, p256: KeyPair, cli: Cli
) -> None:
    st = {
        "_type": "https://in-toto.io/Statement/v1",
        "predicateType": LEGACY_PREDICATE_TYPE,
        "subject": [{"name": "../../etc/passwd", "digest": {"sha256": "00" * 32}}],
        "predicate": {},
    }
    sig = fifo_model.parent / "s.sig"
    write_signed(sig, p256.private, st)
    result = cli("verify", fifo_model, "--key", p256.public, "--signature", sig)
    _rejected(result, "'..' component")


def test_signed_root_digest_that_does_not_match_the_resources_is_rejected(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, _ = signed
    st = statement([resource("a.bin", b"a" * 1000), resource("sub/b.txt", b"b")], root="ab" * 32)
    sig = model.parent / "s.sig"
    write_signed(sig, p256.private, st)
    result = cli("verify", model, "--key", p256.public, "--signature", sig)
    _rejected(result, "root digest does not match")


@pytest.mark.parametrize(
    ("serialization", "needle"),
    [
        (
            {
                "method": "shards",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "shard_size": True,
            },
            "wrong type",
        ),
        (
            {"method": "shards", "hash_type": "sha256", "allow_symlinks": False, "shard_size": 0.5},
            "not an integer",
        ),
        ({"method": "files", "hash_type": "md5", "allow_symlinks": False}, "hash_type"),
        ({"method": "tar", "hash_type": "sha256", "allow_symlinks": False}, "method"),
        ({"method": "files", "hash_type": "sha256", "allow_symlinks": "yes"}, "wrong type"),
    ],
    ids=[
        "shard_size_bool",
        "shard_size_fraction",
        "unknown_hash",
        "unknown_method",
        "allow_symlinks_string",
    ],
)
def test_signed_serialization_with_bad_values_is_rejected(
    signed: tuple[Path, dict[str, Any]],
    p256: KeyPair,
    cli: Cli,
    serialization: dict[str, Any],
    needle: str,
) -> None:
    model, _ = signed
    st = statement([resource("a.bin:0:1", b"a")], serialization=serialization)
    sig = model.parent / "s.sig"
    write_signed(sig, p256.private, st)
    _rejected(cli("verify", model, "--key", p256.public, "--signature", sig), needle)


def test_signed_shard_offset_with_thousands_of_digits_is_rejected(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, _ = signed
    ser = {"method": "shards", "hash_type": "sha256", "allow_symlinks": False, "shard_size": 10}
    st = statement([resource(f"a.bin:0:{'9' * 5000}")], serialization=ser)
    sig = model.parent / "s.sig"
    write_signed(sig, p256.private, st)
    result = cli("verify", model, "--key", p256.public, "--signature", sig)
    _rejected(result, "is not 'path:start:end'")
    assert len(result.err) < 400


def test_signed_legacy_annotations_of_the_wrong_type_are_rejected(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, _ = signed
    st = {
        "_type": "https://in-toto.io/Statement/v1",
        "predicateType": LEGACY_PREDICATE_TYPE,
        "subject": [{"name": "a.bin", "digest": {"sha256": "00" * 32}, "annotations": [1]}],
    }
    sig = model.parent / "s.sig"
    write_signed(sig, p256.private, st)
    result = cli("verify", model, "--key", p256.public, "--signature", sig)
    _rejected(result, "annotations is not an object")


def test_signed_payload_that_is_not_json_is_rejected(
    signed: tuple[Path, dict[str, Any]], p256: KeyPair, cli: Cli
) -> None:
    model, _ = signed
    sig = model.parent / "s.sig"
    write_signed(sig, p256.private, b"\xff not json")
    result = cli("verify", model, "--key", p256.public, "--signature", sig)
    _rejected(result, "malformed statement: payload is not valid UTF-8 JSON")
