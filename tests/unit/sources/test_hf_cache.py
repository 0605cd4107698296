"""Verifying a Hugging Face cache snapshot: by folder and by ``hf://`` name, links checked."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import CliResult, KeyPair, make_model
from helpers.reports import parse_report
from omsign.errors import ModelError, UsageError
from omsign.sources._hf import hub_cache_dir, resolve_hf_name, snapshot_link_policy

Cli = Callable[..., CliResult]
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FILES = {
    "config.json": b'{"model_type": "tiny"}\n',
    "model.safetensors": os.urandom(50_000),
    "tokenizer/tokenizer.json": b'{"vocab": {"a": 0}}\n',
}


def _blob(repo: Path, data: bytes) -> Path:
    blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    return blob


def _link(snapshot: Path, name: str, target: Path) -> None:
    path = snapshot / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(os.path.relpath(target, path.parent))


def build_cache(hub: Path, files: dict[str, bytes], signature: bytes | None) -> Path:
    """Writes ``models--acme--tiny`` the way huggingface_hub lays it out; returns the snapshot."""
    repo = hub / "models--acme--tiny"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    for name, data in files.items():
        _link(snapshot, name, _blob(repo, data))
    if signature is not None:
        _link(snapshot, "model.sig", _blob(repo, signature))
    return snapshot


@pytest.fixture
def hub(tmp_path: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An HF_HOME whose hub holds acme/tiny with a model.sig signed by the publisher."""
    publisher = make_model(tmp_path / "publisher", FILES)
    omsign.sign(publisher, key=p256.private)
    home = tmp_path / "hf-home"
    build_cache(home / "hub", FILES, (publisher / "model.sig").read_bytes())
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return home / "hub"


def _snapshot_via_hub(hub: Path) -> Path:
    from huggingface_hub import scan_cache_dir, snapshot_download

    info = scan_cache_dir(hub)
    (repo,) = info.repos
    assert repo.repo_id == "acme/tiny"
    assert {r.commit_hash for r in repo.revisions} == {COMMIT}
    path = Path(snapshot_download("acme/tiny", cache_dir=hub, local_files_only=True))
    assert path.name == COMMIT
    return path


def test_snapshot_folder_verifies_without_allow_symlinks(
    hub: Path, p256: KeyPair, cli: Cli
) -> None:
    snapshot = _snapshot_via_hub(hub)
    r = cli("verify", snapshot, "--key", p256.public, "--json")
    assert r.code == 0, r.err
    assert parse_report(r.out)["files"]["verified"] == sorted(FILES)


@pytest.mark.parametrize(
    "name", ["hf://acme/tiny", "hf://acme/tiny@main", f"hf://acme/tiny@{COMMIT}"]
)
def test_hf_name_verifies(hub: Path, p256: KeyPair, cli: Cli, name: str) -> None:
    r = cli("verify", name, "--key", p256.public, "--json")
    assert r.code == 0, r.err
    report = parse_report(r.out)
    assert report["model"] == str(_snapshot_via_hub(hub))
    assert report["files"]["verified"] == sorted(FILES)


def test_hf_name_with_files_and_verified_loading(hub: Path, p256: KeyPair) -> None:
    result = omsign.verify("hf://acme/tiny", key=p256.public, files=["config.json"])
    assert result.verified == ("config.json",)
    vm = omsign.open_verified("hf://acme/tiny", key=p256.public, verify_content=False)
    assert vm.read_bytes("model.safetensors") == FILES["model.safetensors"]


def test_hf_cache_env_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    assert hub_cache_dir() == tmp_path / "cache"


def test_unknown_revision_or_repo(hub: Path, p256: KeyPair, cli: Cli) -> None:
    for name in ("hf://acme/tiny@v2", "hf://acme/other", f"hf://acme/tiny@{'f' * 40}"):
        with pytest.raises(ModelError):
            resolve_hf_name(name)
        assert cli("verify", name, "--key", p256.public).code == 2


@pytest.mark.parametrize("name", ["hf://acme", "hf://a/b/c/d", "hf://../x", "hf://a/b@../../x"])
def test_malformed_names(name: str) -> None:
    with pytest.raises(UsageError):
        resolve_hf_name(name)


def _relink(snapshot: Path, name: str, target: Path) -> None:
    (snapshot / name).unlink()
    _link(snapshot, name, target)


def test_link_outside_the_repository_is_refused(
    hub: Path, p256: KeyPair, cli: Cli, tmp_path: Path
) -> None:
    snapshot = hub / "models--acme--tiny" / "snapshots" / COMMIT
    outside = tmp_path / "same-bytes.json"
    outside.write_bytes(FILES["config.json"])  # identical content: only the link is wrong
    _relink(snapshot, "config.json", outside)
    for model in (snapshot, "hf://acme/tiny"):
        r = cli("verify", model, "--key", p256.public)
        assert r.code == 1
        assert "symbolic link" in r.err


def test_link_into_another_repository_is_refused(hub: Path, p256: KeyPair, cli: Cli) -> None:
    other = hub / "models--evil--twin"
    blob = _blob(other, FILES["config.json"])
    snapshot = hub / "models--acme--tiny" / "snapshots" / COMMIT
    _relink(snapshot, "config.json", blob)
    r = cli("verify", snapshot, "--key", p256.public)
    assert r.code == 1
    assert "symbolic link" in r.err


def test_blob_content_changed_fails(hub: Path, p256: KeyPair, cli: Cli) -> None:
    blob = hub / "models--acme--tiny" / "blobs" / hashlib.sha256(FILES["config.json"]).hexdigest()
    blob.write_bytes(b'{"model_type": "evil"}\n')
    r = cli("verify", "hf://acme/tiny", "--key", p256.public)
    assert r.code == 1
    assert "changed: config.json" in r.err


def test_a_copy_outside_the_cache_gets_no_link_exception(
    hub: Path, p256: KeyPair, cli: Cli, tmp_path: Path
) -> None:
    snapshot = hub / "models--acme--tiny" / "snapshots" / COMMIT
    copy = tmp_path / "copy"
    for name in FILES:  # absolute links to the very same blobs
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).symlink_to((snapshot / name).resolve())
    shutil.copyfile(snapshot / "model.sig", copy / "model.sig")
    assert snapshot_link_policy(copy) is None
    r = cli("verify", copy, "--key", p256.public)
    assert r.code == 1
    assert "symbolic link" in r.err


def test_signing_a_snapshot_follows_only_repository_links(
    hub: Path, p256: KeyPair, cli: Cli, tmp_path: Path
) -> None:
    snapshot = hub / "models--acme--tiny" / "snapshots" / COMMIT
    sig = tmp_path / "resigned.sig"
    r = cli("sign", snapshot, "--key", p256.private, "--signature", sig)
    assert r.code == 0, r.err
    assert cli("verify", "hf://acme/tiny", "--key", p256.public, "--signature", sig).code == 0
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"elsewhere")
    _link(snapshot, "extra.txt", outside)
    r = cli("sign", snapshot, "--key", p256.private, "--signature", sig)
    assert r.code == 2
    assert "symbolic link" in r.err


def test_cli_start_up_imports_no_heavy_module(hub: Path, p256: KeyPair) -> None:
    code = (
        "import sys\n"
        "from omsign.cli import run\n"
        f"assert run(['verify', 'hf://acme/tiny', '--key', {str(p256.public)!r}]) == 0\n"
        "heavy = {'huggingface_hub', 'safetensors', 'numpy'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
