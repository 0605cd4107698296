"""Search places: signed copies indexed by the digest they claim, unsigned ones hashed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from omsign._lineage._search import SearchIndex
from omsign.errors import UsageError


def _signed(path: Path, key: KeyPair) -> str:
    make_model(path, {"w.bin": os.urandom(64)})
    return omsign.sign(path, key=key.private).root_digest


def test_folders_are_scanned_to_the_depth_asked(tmp_path: Path, p256: KeyPair) -> None:
    a = _signed(tmp_path / "models" / "a", p256)
    b = _signed(tmp_path / "models" / "group" / "b", p256)
    c = _signed(tmp_path / "models" / "group" / "deeper" / "c", p256)
    index = SearchIndex([tmp_path / "models"], depth=2)
    assert [x.location for x in index.signed(a)] == [str(tmp_path / "models" / "a")]
    assert [x.depth for x in index.signed(b)] == [2]
    assert index.signed(c) == []
    assert [x.depth for x in SearchIndex([tmp_path / "models"], depth=3).signed(c)] == [3]
    assert SearchIndex([tmp_path / "models"], depth=0).signed(a) == []
    assert SearchIndex([tmp_path / "models" / "a"], depth=0).signed(a)[0].depth == 0


def test_a_signed_folder_is_one_copy_not_looked_into(tmp_path: Path, p256: KeyPair) -> None:
    _signed(tmp_path / "m" / "outer", p256)
    inner = _signed(tmp_path / "m" / "outer" / "inner", p256)  # signed again inside
    omsign.sign(tmp_path / "m" / "outer", key=p256.private)
    assert SearchIndex([tmp_path / "m"], depth=3).signed(inner) == []


def test_hidden_folders_links_and_signature_files_are_skipped(
    tmp_path: Path, p256: KeyPair
) -> None:
    hidden = _signed(tmp_path / "m" / ".cache" / "x", p256)
    real = _signed(tmp_path / "elsewhere" / "y", p256)
    (tmp_path / "m" / "link").symlink_to(tmp_path / "elsewhere" / "y")
    index = SearchIndex([tmp_path / "m"], depth=3)
    assert index.signed(hidden) == [] and index.signed(real) == []
    assert all(not c.path.name.endswith(".sig") for c in index.candidates)


def test_a_signed_single_file_is_a_copy(tmp_path: Path, p256: KeyPair) -> None:
    (tmp_path / "m").mkdir()
    weights = tmp_path / "m" / "w.gguf"
    weights.write_bytes(os.urandom(100))
    digest = omsign.sign(weights, key=p256.private).root_digest
    (found,) = SearchIndex([tmp_path / "m"]).signed(digest)
    assert found.path == weights and found.signature == tmp_path / "m" / "w.gguf.sig"


def test_an_unsigned_dataset_is_found_by_hashing_it(tmp_path: Path, p256: KeyPair) -> None:
    data = make_model(tmp_path / "data" / "d1", {"a.jsonl": b"{}\n" * 10})
    make_model(tmp_path / "data" / "d2", {"b.jsonl": b"[]\n" * 10})
    digest = omsign.digest(data)
    index = SearchIndex([tmp_path / "data"])
    assert index.signed(digest) == []
    assert [c.path for c in index.hashed(digest)] == [data]
    assert [c.path for c in index.hashed(digest)] == [data]  # from what was hashed
    assert index.hashed("0" * 64) == []


def test_a_folder_holding_signed_copies_is_never_hashed(tmp_path: Path, p256: KeyPair) -> None:
    _signed(tmp_path / "shelf" / "m", p256)
    index = SearchIndex([tmp_path / "shelf"])
    # The shelf itself (m and its signature) would hash to this; it is not a copy of anything.
    shelf_digest = omsign.digest(tmp_path / "shelf")
    assert index.hashed(shelf_digest) == []


def test_a_missing_place_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such search place") as caught:
        SearchIndex([tmp_path / "nothing"])
    assert caught.value.options == ("search",)


def _hf_snapshot(hub: Path, repo: str, files: dict[str, bytes]) -> Path:
    folder = hub / repo
    commit = "1" * 40
    snap = folder / "snapshots" / commit
    snap.mkdir(parents=True)
    (folder / "blobs").mkdir()
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    for i, (name, data) in enumerate(files.items()):
        (folder / "blobs" / f"blob{i}").write_bytes(data)
        (snap / name).symlink_to(f"../../blobs/blob{i}")
    return snap


def test_the_hugging_face_cache_is_searched(
    tmp_path: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    snap = _hf_snapshot(hub, "models--acme--base", {"w.bin": os.urandom(100)})
    digest = omsign.sign(snap, key=p256.private).root_digest
    data = _hf_snapshot(hub, "datasets--acme--corpus", {"c.txt": b"corpus\n"})
    (found,) = SearchIndex(["hf://"]).signed(digest)
    assert found.path == snap and found.location == f"hf://acme/base@{'1' * 40}"
    assert SearchIndex(["hf://acme/base"]).signed(digest)[0].path == snap
    (hashed,) = SearchIndex(["hf://"]).hashed(omsign.digest(data))
    assert hashed.location == f"hf://datasets/acme/corpus@{'1' * 40}"
