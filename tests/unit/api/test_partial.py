"""Partial verification through the library: ``allow_missing`` and ``files``."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from omsign.errors import IntegrityError

EIGHT = {f"part-{i}/weights-{i}.bin": os.urandom(5_000 + i) for i in range(6)} | {
    "config.json": b'{"a": 1}\n',
    "README.md": b"# readme\n",
}


@pytest.fixture
def eight(tmp_path: Path, p256: KeyPair) -> Path:
    model = make_model(tmp_path / "eight", EIGHT)
    omsign.sign(model, key=p256.private)
    return model


def _delete_three(model: Path) -> list[str]:
    gone = ["part-0/weights-0.bin", "part-3/weights-3.bin", "README.md"]
    for name in gone:
        (model / name).unlink()
    return sorted(gone)


def test_allow_missing_reports_absent_files(eight: Path, p256: KeyPair) -> None:
    gone = _delete_three(eight)
    result = omsign.verify(eight, key=p256.public, allow_missing=True)
    assert list(result.absent) == gone
    assert len(result.verified) == 5
    assert not set(gone) & set(result.verified)
    assert result.to_json()["files"]["absent"] == gone


def test_missing_files_fail_without_allow_missing(eight: Path, p256: KeyPair) -> None:
    _delete_three(eight)
    with pytest.raises(IntegrityError, match="missing") as info:
        omsign.verify(eight, key=p256.public)
    assert len(info.value.difference.missing) == 3  # type: ignore[attr-defined]


@pytest.mark.parametrize("allow_missing", [False, True])
def test_edited_present_file_fails(eight: Path, p256: KeyPair, allow_missing: bool) -> None:
    _delete_three(eight)
    (eight / "config.json").write_bytes(b'{"a": 2}\n')
    with pytest.raises(IntegrityError, match=re.escape("changed: config.json")):
        omsign.verify(eight, key=p256.public, allow_missing=allow_missing)


def test_strict_default_rejects_unsigned_files(eight: Path, p256: KeyPair) -> None:
    (eight / "extra.bin").write_bytes(b"not signed")
    with pytest.raises(IntegrityError, match=re.escape("unsigned: extra.bin")):
        omsign.verify(eight, key=p256.public)


def test_allow_missing_still_rejects_unsigned_files(eight: Path, p256: KeyPair) -> None:
    _delete_three(eight)
    (eight / "extra.bin").write_bytes(b"not signed")
    with pytest.raises(IntegrityError, match=re.escape("unsigned: extra.bin")):
        omsign.verify(eight, key=p256.public, allow_missing=True)
    result = omsign.verify(eight, key=p256.public, allow_missing=True, ignore_unsigned_files=True)
    assert result.unsigned == ("extra.bin",)


def test_files_verifies_exactly_the_chosen_files(eight: Path, p256: KeyPair) -> None:
    (eight / "README.md").write_bytes(b"tampered but not chosen")
    result = omsign.verify(eight, key=p256.public, files=["config.json", "part-1/*.bin"])
    assert result.verified == ("config.json", "part-1/weights-1.bin")
    assert "README.md" in result.unchecked
    assert len(result.unchecked) == 6


def test_files_fails_on_a_chosen_file_that_changed(eight: Path, p256: KeyPair) -> None:
    (eight / "config.json").write_bytes(b"{}")
    with pytest.raises(IntegrityError, match=re.escape("changed: config.json")):
        omsign.verify(eight, key=p256.public, files=["config.json"])


def test_files_fails_on_a_chosen_file_that_is_absent(eight: Path, p256: KeyPair) -> None:
    (eight / "config.json").unlink()
    with pytest.raises(IntegrityError, match=re.escape("missing: config.json")):
        omsign.verify(eight, key=p256.public, files=["config.json", "README.md"])


def test_files_pattern_matching_no_signed_file_fails(eight: Path, p256: KeyPair) -> None:
    (eight / "new.txt").write_bytes(b"present but unsigned")
    for pattern in ("new.txt", "*.safetensors"):
        with pytest.raises(IntegrityError, match="no signed file matches"):
            omsign.verify(eight, key=p256.public, files=[pattern])


def test_files_with_a_bad_signature_fails_before_reading(
    eight: Path, p256: KeyPair, tmp_path: Path
) -> None:
    from helpers.pki import make_ec_key, write_public_key

    other = tmp_path / "other.pem"
    write_public_key(other, make_ec_key("P-256"))
    with pytest.raises(omsign.errors.VerificationError):
        omsign.verify(eight, key=other, files=["config.json"])


def test_allow_missing_in_shards_mode(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", EIGHT)
    omsign.sign(model, key=p256.private, shard_size=2_000)
    _delete_three(model)
    result = omsign.verify(model, key=p256.public, allow_missing=True)
    assert len(result.absent) == 3
    with open(model / "part-1/weights-1.bin", "r+b") as f:
        f.seek(3_000)
        f.write(b"X")
    with pytest.raises(IntegrityError, match=re.escape("changed: part-1/weights-1.bin")):
        omsign.verify(model, key=p256.public, allow_missing=True)


def test_shards_sizes_are_checked_before_reading(tmp_path: Path, p256: KeyPair) -> None:
    """A signed file grown to a huge sparse file is reported at once, not hashed for hours;
    an emptied one is changed (not absent); an empty file is covered, not unsigned."""
    import time

    model = make_model(tmp_path / "m", {"w.bin": b"A" * 100, "config.json": b"{}", "empty": b""})
    omsign.sign(model, key=p256.private, shard_size=16)
    assert omsign.verify(model, key=p256.public).verified == ("config.json", "w.bin")
    with (model / "w.bin").open("r+b") as f:
        f.truncate(1 << 40)  # 1 TiB, sparse
    start = time.monotonic()
    with pytest.raises(IntegrityError) as caught:
        omsign.verify(model, key=p256.public)
    assert time.monotonic() - start < 5
    assert caught.value.difference.changed == ("w.bin",)
    (model / "w.bin").write_bytes(b"A" * 100)
    (model / "config.json").write_bytes(b"")
    with pytest.raises(IntegrityError) as caught:
        omsign.verify(model, key=p256.public, allow_missing=True)
    assert caught.value.difference.changed == ("config.json",)


def test_files_with_allow_missing_reports_absent_matches(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a", "b.bin": b"b", "c.json": b"{}"})
    omsign.sign(model, key=p256.private)
    (model / "b.bin").unlink()
    with pytest.raises(IntegrityError):
        omsign.verify(model, key=p256.public, files=["*.bin"])
    result = omsign.verify(model, key=p256.public, files=["*.bin"], allow_missing=True)
    assert (result.verified, result.absent, result.unchecked) == (
        ("a.bin",),
        ("b.bin",),
        ("c.json",),
    )


def test_a_key_file_with_several_keys_trusts_each(tmp_path: Path, p256: KeyPair) -> None:
    from helpers.pki import make_ec_key, write_public_key

    write_public_key(tmp_path / "other.pem", make_ec_key("P-384"))
    both = tmp_path / "both.pem"
    both.write_bytes((tmp_path / "other.pem").read_bytes() + p256.public.read_bytes())
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    omsign.sign(model, key=p256.private)
    assert omsign.verify(model, key=both).verified == ("a.bin",)
