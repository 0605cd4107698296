"""Reading a signature where the system cannot name a file without opening it (no O_PATH).

There the signature's type is checked by path, and the file then opened must be the
one checked: a file swapped in between (a race with an attacker) is refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omsign.bundle import read_bundle
from omsign.errors import MalformedSignatureError, ModelError


@pytest.fixture(autouse=True)
def no_o_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "O_PATH", raising=False)


def test_a_fifo_is_refused_unopened(tmp_path: Path) -> None:
    fifo = tmp_path / "model.sig"
    os.mkfifo(fifo)
    with pytest.raises(MalformedSignatureError, match="not a regular file"):
        read_bundle(fifo)


def test_a_directory_is_a_usage_problem(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="signature path is a directory"):
        read_bundle(tmp_path)


def test_a_missing_signature_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="signature file not found"):
        read_bundle(tmp_path / "model.sig")


def test_a_file_swapped_after_the_check_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    signature = tmp_path / "model.sig"
    signature.write_text("{}")
    swapped = tmp_path / "swapped.sig"
    swapped.write_text('{"mediaType": "attacker"}')
    real_stat = os.stat

    def stat_then_swap(path: object, *args: object, **kwargs: object) -> os.stat_result:
        result = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        if Path(str(path)) == signature:
            os.replace(swapped, signature)
        return result

    monkeypatch.setattr(os, "stat", stat_then_swap)
    with pytest.raises(MalformedSignatureError, match="was replaced while it was read"):
        read_bundle(signature)
