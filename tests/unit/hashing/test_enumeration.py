"""Model enumeration follows OMS 6.1 and 6.2."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from helpers.fixtures import make_model
from omsign.errors import ModelError
from omsign.hashing import enumerate_model


def names(model: Path, **kw: object) -> list[str]:
    return [e.name for e in enumerate_model(model, **kw)]  # type: ignore[arg-type]


def test_directory_names_are_relative_slash_separated_and_code_point_sorted(tmp_path: Path) -> None:
    m = make_model(tmp_path / "m", {"b": b"1", "a/z": b"2", "a-b": b"3", "B": b"4", "é": b"5"})
    assert names(m) == sorted(["b", "a/z", "a-b", "B", "é"])
    assert names(m) == ["B", "a-b", "a/z", "b", "é"]


def test_default_ignores_apply_only_at_the_top_level(tmp_path: Path) -> None:
    m = make_model(
        tmp_path / "m",
        {
            ".git/HEAD": b"x",
            ".gitignore": b"x",
            ".gitattributes": b"x",
            ".github/ci.yml": b"x",
            "sub/.git/HEAD": b"x",
            "sub/.gitignore": b"x",
            "w.bin": b"w",
        },
    )
    assert names(m) == ["sub/.git/HEAD", "sub/.gitignore", "w.bin"]


def test_user_ignores_match_exact_paths_and_subtrees_only(tmp_path: Path) -> None:
    m = make_model(tmp_path / "m", {"cache/a": b"1", "cache2": b"2", "sub/cache": b"3", "x": b"4"})
    assert names(m, ignore_paths=["cache"]) == ["cache2", "sub/cache", "x"]


def test_single_file_model_is_named_by_its_basename(tmp_path: Path) -> None:
    f = tmp_path / "dir" / "weights.bin"
    f.parent.mkdir()
    f.write_bytes(b"abc")
    [entry] = enumerate_model(f)
    assert (entry.name, entry.size) == ("weights.bin", 3)


def test_empty_model_is_rejected(tmp_path: Path) -> None:
    m = make_model(tmp_path / "m", {".git/HEAD": b"x"})
    with pytest.raises(ModelError, match="no files to sign"):
        enumerate_model(m)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no such file or directory"):
        enumerate_model(tmp_path / "absent")


def test_symlink_is_rejected_unless_allowed(tmp_path: Path) -> None:
    m = make_model(tmp_path / "m", {"real.bin": b"data"})
    (m / "link.bin").symlink_to("real.bin")
    with pytest.raises(ModelError, match=r"link\.bin: is a symbolic link"):
        enumerate_model(m)
    assert names(m, allow_symlinks=True) == ["link.bin", "real.bin"]


def test_followed_link_outside_root_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"o")
    m = make_model(tmp_path / "m", {"a": b"a"})
    (m / "ext").symlink_to(outside)
    with caplog.at_level(logging.WARNING, logger="omsign"):
        assert names(m, allow_symlinks=True) == ["a", "ext"]
    assert "points outside the model" in caplog.text


def test_link_cycle_warns_and_is_not_followed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    m = make_model(tmp_path / "m", {"d/f": b"f"})
    (m / "d" / "loop").symlink_to("..")
    with caplog.at_level(logging.WARNING, logger="omsign"):
        assert names(m, allow_symlinks=True) == ["d/f"]
    assert "cycle" in caplog.text


def test_non_utf8_name_is_rejected(tmp_path: Path) -> None:
    m = make_model(tmp_path / "m", {"ok": b"1"})
    with open(os.path.join(os.fsencode(m), b"bad\xff"), "wb") as f:
        f.write(b"x")
    with pytest.raises(ModelError, match="not valid UTF-8"):
        enumerate_model(m)


def test_a_link_swapped_after_its_target_was_checked_is_refused(tmp_path: Path) -> None:
    m = make_model(tmp_path / "m", {"inside.bin": b"same"})
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"same")
    (m / "x").symlink_to("inside.bin")

    def policy_then_swap(link: Path, target: Path) -> bool:
        allowed = target.parent == m.resolve()
        link.unlink()
        link.symlink_to(outside)  # the race: after the check, before the read
        return allowed

    with pytest.raises(ModelError, match="changed while the model was read"):
        enumerate_model(m, link_policy=policy_then_swap)


def test_chained_directory_links_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from omsign.hashing import _walk

    monkeypatch.setattr(_walk, "MAX_LINKED_DIRECTORIES", 100)
    monkeypatch.setattr(_walk, "MAX_DIRECTORY_VISITS", 10**6)  # this bound alone
    m = make_model(tmp_path / "m", {"d0/f": b"f"})
    for level in range(1, 12):  # each level links twice to the one below: 2^11 walks
        (m / f"d{level}").mkdir()
        (m / f"d{level}" / "a").symlink_to(f"../d{level - 1}")
        (m / f"d{level}" / "b").symlink_to(f"../d{level - 1}")
    with pytest.raises(ModelError, match="more than 100 links to directories"):
        enumerate_model(m, allow_symlinks=True)
