"""Link fan-out: directory links that make the walk list the same files over and over.

About 2,000 empty files and 200 directory links (100 links to the folder of files, 100
links to the folder of links) would make a walk list 20 million entries: 10,000 times the
model on disk. The walk bounds the entries it lists again and refuses the structure,
quickly, in a model signed with links allowed and in a Hugging Face cache layout whose
signature forbids links.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import CliResult, KeyPair, make_model
from hostile.signed import deadline
from omsign.errors import IntegrityError, ModelError
from omsign.hashing import _walk

Cli = Callable[..., CliResult]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FILES, LINKS = 2000, 100


def _fan_out(where: Path) -> None:
    """``data/`` of empty files, ``l1/`` with links to it, ``l2/`` with links to ``l1/``."""
    data = where / "data"
    data.mkdir(parents=True)
    for i in range(FILES):
        (data / f"f{i:04}").touch()
    for level, target in (("l1", "data"), ("l2", "l1")):
        (where / level).mkdir()
        for i in range(LINKS):
            (where / level / f"d{i:03}").symlink_to(Path("..") / target)


def test_walk_refuses_link_fan_out(tmp_path: Path) -> None:
    model = make_model(tmp_path / "model", {"a.bin": b"a"})
    _fan_out(model)
    with deadline(30), pytest.raises(ModelError, match="more than 16 paths"):
        _walk.enumerate_model(model, allow_symlinks=True)


def test_walk_bounds_entries_listed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many folders each reached a few times: the total of repeated listings is bounded."""
    monkeypatch.setattr(_walk, "MAX_RELISTED_ENTRIES", 5000)
    model = make_model(tmp_path / "model", {"a.bin": b"a"})
    for d in range(10):
        data = model / f"data{d}"
        data.mkdir()
        for i in range(200):
            (data / f"f{i:03}").touch()
        for v in range(3):
            (model / f"view{d}-{v}").symlink_to(data.name)
    with deadline(30), pytest.raises(ModelError, match="listed again"):
        _walk.enumerate_model(model, allow_symlinks=True)


def test_links_to_one_folder_a_few_times_still_walk(tmp_path: Path) -> None:
    """A folder reached through a few links is listed each time (each path is a resource)."""
    model = make_model(tmp_path / "model", {"data/a": b"a", "data/b": b"b"})
    for i in range(3):
        (model / f"view{i}").symlink_to("data")
    names = [e.name for e in _walk.enumerate_model(model, allow_symlinks=True)]
    assert len(names) == 8


def test_verify_allow_symlinks_model_refuses_fan_out(
    tmp_path: Path, p256: KeyPair, cli: Cli
) -> None:
    model = make_model(tmp_path / "model", {"a.bin": b"a"})
    assert cli("sign", model, "--key", p256.private, "--allow-symlinks").code == 0
    _fan_out(model)
    with deadline(30):
        res = cli("verify", model, "--key", p256.public)
    assert res.code == 1  # the model is not what was signed
    assert "link structure this large" in res.err
    assert "Traceback" not in res.err and len(res.err.strip().splitlines()) == 1


def test_sign_refuses_fan_out(tmp_path: Path, p256: KeyPair, cli: Cli) -> None:
    model = make_model(tmp_path / "model", {"a.bin": b"a"})
    _fan_out(model)
    with deadline(30):
        res = cli("sign", model, "--key", p256.private, "--allow-symlinks")
    assert res.code == 2
    assert "link structure this large" in res.err
    assert not (model / "model.sig").exists()


def test_hf_cache_layout_refuses_fan_out(
    tmp_path: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links inside the repository's cache folder are permitted without allowing links."""
    repo = tmp_path / "hub" / "models--acme--tiny"
    snapshot = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    blob = repo / "blobs" / "config"
    blob.write_bytes(b"{}")
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").symlink_to(os.path.relpath(blob, snapshot))
    omsign.sign(snapshot, key=p256.private)
    _fan_out(snapshot)
    monkeypatch.chdir(tmp_path)
    with deadline(30), pytest.raises(IntegrityError, match="link structure this large"):
        omsign.verify(snapshot, key=p256.public)
