"""Incremental re-signing: only changed files are hashed, the payload equals a full run's."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import CliResult, KeyPair, make_model
from omsign._reuse import DigestCache, cache_dir

Cli = Callable[..., CliResult]
FILES = {f"weights/part-{i}.bin": os.urandom(20_000 + i) for i in range(5)} | {
    "config.json": b'{"n": 1}\n',
}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache directory; files written by the test count as settled."""
    directory = tmp_path / "digest-cache"
    monkeypatch.setenv("OMSIGN_CACHE_DIR", str(directory))
    monkeypatch.setattr("omsign._reuse.RACY_WINDOW_NS", 0)
    return directory


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return make_model(tmp_path / "model", FILES)


def _payload(result: omsign.SignResult) -> str:
    envelope = result.bundle["dsseEnvelope"]
    assert isinstance(envelope, dict)
    payload: str = envelope["payload"]
    return payload


@pytest.mark.parametrize("shard_size", [None, 4_096])
def test_only_the_changed_file_is_hashed(
    cache: Path, model: Path, p256: KeyPair, shard_size: int | None
) -> None:
    first = omsign.sign(model, key=p256.private, shard_size=shard_size, reuse_digests=True)
    assert len(first.hashed) == len(FILES)
    (model / "config.json").write_bytes(b'{"n": 2}\n')
    again = omsign.sign(model, key=p256.private, shard_size=shard_size, reuse_digests=True)
    assert again.hashed == ("config.json",)
    full = omsign.sign(model, key=p256.private, shard_size=shard_size)
    assert len(full.hashed) == len(FILES)
    assert _payload(again) == _payload(full)
    assert again.root_digest == full.root_digest
    omsign.verify(model, key=p256.public)
    unchanged = omsign.sign(model, key=p256.private, shard_size=shard_size, reuse_digests=True)
    assert unchanged.hashed == ()
    assert _payload(unchanged) == _payload(full)


def test_cache_lives_outside_model_and_signature(cache: Path, model: Path, p256: KeyPair) -> None:
    result = omsign.sign(model, key=p256.private, reuse_digests=True)
    assert sorted(p.name for p in model.rglob("*") if p.is_file()) == sorted(
        [*(Path(n).name for n in FILES), "model.sig"]
    )
    (written,) = cache.iterdir()
    assert written.suffix == ".json"
    assert oct(written.stat().st_mode & 0o777) == "0o600"
    assert str(cache) not in json.dumps(result.bundle)
    assert "digest-cache" not in json.dumps(result.bundle)


def test_stat_changes_trigger_rehash(cache: Path, model: Path, p256: KeyPair) -> None:
    omsign.sign(model, key=p256.private, reuse_digests=True)
    part = model / "weights/part-1.bin"
    copy = model / "weights/copy.tmp"
    copy.write_bytes(part.read_bytes())
    os.replace(copy, part)  # same bytes, new inode
    st = (model / "weights/part-2.bin").stat()
    os.utime(model / "weights/part-2.bin", ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    again = omsign.sign(model, key=p256.private, reuse_digests=True)
    assert again.hashed == ("weights/part-1.bin", "weights/part-2.bin")


def test_settings_are_part_of_the_key(cache: Path, model: Path, p256: KeyPair) -> None:
    omsign.sign(model, key=p256.private, reuse_digests=True)
    other = omsign.sign(model, key=p256.private, reuse_digests=True, hash_algorithm="blake2b")
    assert len(other.hashed) == len(FILES)
    shards = omsign.sign(model, key=p256.private, reuse_digests=True, shard_size=8_192)
    assert len(shards.hashed) == len(FILES)


def test_recently_modified_files_are_not_trusted(
    cache: Path, model: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("omsign._reuse.RACY_WINDOW_NS", 3_600 * 10**9)
    omsign.sign(model, key=p256.private, reuse_digests=True)
    again = omsign.sign(model, key=p256.private, reuse_digests=True)
    assert len(again.hashed) == len(FILES)  # all written within the window: re-hashed


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"key": [1], "files": {}}'])
def test_corrupt_cache_is_ignored_with_a_warning(
    cache: Path, model: Path, p256: KeyPair, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    omsign.sign(model, key=p256.private, reuse_digests=True)
    (path,) = cache.iterdir()
    path.write_bytes(content)
    again = omsign.sign(model, key=p256.private, reuse_digests=True)
    assert len(again.hashed) == len(FILES)
    assert "digest cache" in caplog.text
    assert omsign.sign(model, key=p256.private, reuse_digests=True).hashed == ()


def test_verification_never_reads_the_cache(
    cache: Path, model: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    omsign.sign(model, key=p256.private, reuse_digests=True)
    (model / "config.json").write_bytes(b'{"n": 666}\n')
    # Poison the cache: the edited file's current metadata with the old digest.
    poisoned = DigestCache.load(model, "sha256", None)
    (entry,) = omsign.hashing.entries_for(model, ["config.json"])
    poisoned._files["config.json"]["stat"] = [
        entry.size,
        entry.mtime_ns,
        entry.inode,
        entry.ctime_ns,
        entry.device,
    ]
    poisoned.save()
    stale = omsign.sign(model, key=p256.private, reuse_digests=True)
    assert stale.hashed == ()  # the signer trusts its own cache...

    def forbidden(*_args: object) -> None:
        raise AssertionError("verification must not read the digest cache")

    monkeypatch.setattr(DigestCache, "load", forbidden)
    with pytest.raises(omsign.errors.IntegrityError, match=r"changed: config\.json"):
        omsign.verify(model, key=p256.public)  # ...verification does not
    omsign.sign(model, key=p256.private)  # nor does a plain sign
    omsign.verify(model, key=p256.public)


def test_cache_dir_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OMSIGN_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "omsign"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "omsign"


def test_cli_reuse_and_no_cache(cache: Path, model: Path, p256: KeyPair, cli: Cli) -> None:
    sig = model.parent / "model.sig"
    full = cli("sign", model, "--key", p256.private, "--signature", sig, "--reuse-digests")
    assert full.code == 0, full.err
    assert f"({len(FILES)} re-hashed)" in full.err
    (model / "config.json").write_bytes(b'{"n": 3}\n')
    inc = cli("sign", model, "--key", p256.private, "--signature", sig, "--reuse-digests")
    assert "(1 re-hashed)" in inc.err
    inc_payload = json.loads(sig.read_text())["dsseEnvelope"]["payload"]
    before = sorted(p.name for p in cache.iterdir())
    nocache = cli("sign", model, "--key", p256.private, "--signature", sig, "--no-cache")
    assert nocache.code == 0
    assert json.loads(sig.read_text())["dsseEnvelope"]["payload"] == inc_payload
    assert sorted(p.name for p in cache.iterdir()) == before
    assert inc.out == nocache.out  # same root digest
    both = cli("sign", model, "--key", p256.private, "--reuse-digests", "--no-cache")
    assert both.code == 2
    assert cli("verify", model, "--key", p256.public, "--signature", sig).code == 0
