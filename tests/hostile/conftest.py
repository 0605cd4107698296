"""Fixtures shared by the hostile-input tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers.fixtures import CliResult, KeyPair, make_model

Cli = Callable[..., CliResult]


@pytest.fixture
def signed(tmp_path: Path, p256: KeyPair, cli: Cli) -> tuple[Path, dict[str, Any]]:
    """A model signed with the P-256 key; returns it and its bundle as JSON."""
    model = make_model(tmp_path / "model", {"a.bin": b"a" * 1000, "sub/b.txt": b"b"})
    assert cli("sign", model, "--key", p256.private).code == 0
    return model, json.loads((model / "model.sig").read_text())
