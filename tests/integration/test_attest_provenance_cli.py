"""Provenance made by ``omsign attest --provenance`` is what ``omsign lineage`` follows."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.fixtures import CliResult, KeyPair, make_model

Cli = Callable[..., CliResult]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _into_hf_cache(hub: Path, model: Path) -> None:
    """Moves a signed folder into a Hugging Face cache as ``acme/base`` (files as blobs)."""
    repo = hub / "models--acme--base"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    for item in sorted(model.iterdir()):
        data = item.read_bytes()  # the hub links every file, model.sig included, into blobs/
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / item.name).symlink_to(f"../../blobs/{blob.name}")
        item.unlink()
    model.rmdir()


def test_a_fine_tune_attested_on_the_command_line_has_a_verified_lineage(
    cli: Cli, tmp_path: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GITHUB_ACTIONS", "GITLAB_CI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    key = ("--key", p256.private)
    base = make_model(tmp_path / "models" / "base", {"w.bin": os.urandom(2048)})
    data = make_model(tmp_path / "data" / "corpus", {"train.jsonl": b'{"t": 1}\n' * 20})
    assert cli("sign", base, *key).code == 0
    builder = ("--builder-id", "https://ci.example.com/runner")
    made = cli("attest", base, *key, "--provenance", "--step", "train", "--dataset", data, *builder)
    assert made.code == 0, made.err
    hub = tmp_path / "hub"
    _into_hf_cache(hub, base)  # the base is now only in the Hugging Face cache
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tuned = make_model(tmp_path / "models" / "tuned", {"w.bin": os.urandom(2048)})
    assert cli("sign", tuned, *key).code == 0
    made = cli(
        "attest", tuned, *key, "--provenance", "--step", "fine-tune",
        "--base", "hf://acme/base", "--dataset", data, *builder,
    )  # fmt: skip
    assert made.code == 0, made.err
    search = ("--search", tmp_path / "models", "--search", tmp_path / "data", "--search", "hf://")
    found = cli("lineage", tuned, *search, "--key", p256.public, "--json")
    assert found.code == 0, found.out + found.err
    graph = json.loads(found.out)
    steps = {n["name"]: n.get("step") for n in graph["nodes"]}
    assert steps["tuned"] == "fine-tune" and steps["base"] == "train"
    assert {n["status"] for n in graph["nodes"]} == {"verified"}
    # The dataset changed after the fine-tune: the link to it breaks.
    (data / "train.jsonl").write_bytes(b'{"t": 2}\n')
    broken = cli("lineage", tuned, *search, "--key", p256.public)
    assert broken.code == 1
    assert "corpus" in broken.err
