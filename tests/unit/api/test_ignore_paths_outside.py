"""Ignore paths: inside the model or refused; one that matches nothing is reported."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from omsign.errors import UsageError


def test_a_path_outside_the_model_is_refused_before_hashing(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    with pytest.raises(UsageError, match="not inside the model") as caught:
        omsign.sign(model, key=p256.private, ignore_paths=[tmp_path / "other"])
    assert "ignore_paths=" in str(caught.value)
    assert "--" not in str(caught.value)
    assert not (model / "model.sig").exists()
    with pytest.raises(UsageError, match="not inside the model"):
        omsign.digest(model, ignore_paths=[model.parent])


def test_the_model_root_itself_is_not_an_ignore_path(tmp_path: Path) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    with pytest.raises(UsageError, match="not inside the model"):
        omsign.digest(model, ignore_paths=[model])


def test_an_unmatched_path_is_a_warning_naming_it(
    tmp_path: Path, p256: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a", "b.bin": b"b"})
    with caplog.at_level(logging.WARNING, logger="omsign"):
        omsign.sign(model, key=p256.private, ignore_paths=[model / "nope"])
    warned = [r.getMessage() for r in caplog.records if "matches nothing" in r.getMessage()]
    assert warned == [f"ignore path {model / 'nope'} matches nothing in the model {model}"]
