"""Model sources: local paths and ``hf://`` names resolve to sources that list entries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from test_hf_cache import FILES, hub  # noqa: F401  (the cache fixture)

import omsign
from helpers.fixtures import CliResult, KeyPair, make_model
from omsign.sources import SCHEMES, resolve_source
from omsign.sources._local import LocalSource

Cli = Callable[..., CliResult]


def test_a_path_is_a_local_source(model: Path) -> None:
    source = resolve_source(model)
    assert isinstance(source, LocalSource)
    assert (source.name, source.is_dir, source.path) == ("model", True, model)
    entries = source.entries()
    assert [e.name for e in entries] == sorted(e.name for e in entries)
    assert [e.name for e in source.entries(names=["README.md"])] == ["README.md"]


def test_stamp_changes_when_the_file_changes(model: Path) -> None:
    [before] = resolve_source(model).entries(names=["README.md"])
    assert before.stamp == resolve_source(model).entries(names=["README.md"])[0].stamp
    (model / "README.md").write_bytes(b"# another readme, longer\n")
    [after] = resolve_source(model).entries(names=["README.md"])
    assert after.stamp != before.stamp


@pytest.mark.usefixtures("hub")
def test_hf_name_is_the_cached_snapshot() -> None:
    source = resolve_source("hf://acme/tiny")
    assert source.name == "tiny"
    assert source.path is not None and source.path.parent.name == "snapshots"
    assert {e.name for e in source.entries()} == {*FILES, "model.sig"}
    assert "hf://" in SCHEMES


@pytest.mark.usefixtures("hub")
def test_digest_of_hf_name_equals_the_plain_folder(tmp_path: Path, cli: Cli) -> None:
    plain = make_model(tmp_path / "plain", FILES)
    expected = omsign.digest(plain)
    assert omsign.digest("hf://acme/tiny") == expected
    result = cli("digest", "hf://acme/tiny")
    assert (result.code, result.out.strip()) == (0, f"sha256:{expected}")
    shards = cli("digest", "hf://acme/tiny", "--shard-size", "10K")
    assert shards.out.strip() == f"sha256:{omsign.digest(plain, shard_size=10_000)}"


@pytest.mark.usefixtures("hub")
def test_sign_reuse_digests_goes_through_the_source(p256: KeyPair) -> None:
    first = omsign.sign("hf://acme/tiny", key=p256.private, reuse_digests=True)
    again = omsign.sign("hf://acme/tiny", key=p256.private, reuse_digests=True)
    assert first.root_digest == again.root_digest
    assert again.hashed == ()  # every digest came from the cache (files are old enough)
    assert omsign.verify("hf://acme/tiny", key=p256.public).root_digest == first.root_digest


@pytest.fixture(autouse=True)
def _digest_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A private digest cache that records even files written a moment ago."""
    monkeypatch.setattr("omsign._reuse.RACY_WINDOW_NS", -(10**12))
    monkeypatch.setenv("OMSIGN_CACHE_DIR", str(tmp_path / "cache"))
