"""The first-use history: pins, rollbacks by proven or claimed time, a damaged file, locking."""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from omsign.errors import Error
from omsign.policy._history import (
    PinningError,
    RollbackError,
    default_history_path,
    record_pins,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Sig:
    signer: str = "key sha256:aa"
    signed_at: dt.datetime | None = None
    claimed_at: dt.datetime | None = None
    method: str = "key"
    issuer: str | None = None


def test_first_use_pins_and_another_identity_fails_until_accepted(tmp_path: Path) -> None:
    history = tmp_path / "h.json"
    first = record_pins(history, "/m", [Sig()], "d1")
    assert first.status == "first-use" and first.pinned == ("key sha256:aa",)
    assert record_pins(history, "/m", [Sig()], "d1").status == "pinned"
    with pytest.raises(PinningError, match="signed by key sha256:bb, not by the signer"):
        record_pins(history, "/m", [Sig("key sha256:bb")], "d2")
    # an extra signer beside the pinned one is another identity too
    with pytest.raises(PinningError):
        record_pins(history, "/m", [Sig(), Sig("key sha256:bb")], "d2")
    assert record_pins(history, "/m", [Sig("key sha256:bb")], "d2", accept=True).status == (
        "accepted"
    )
    assert record_pins(history, "/m", [Sig("key sha256:bb")], "d2").status == "pinned"
    with pytest.raises(PinningError):  # the old signer is no longer the pinned one
        record_pins(history, "/m", [Sig()], "d1")
    # other models have their own pins
    assert record_pins(history, "/other", [Sig("key sha256:cc")], "d3").status == "first-use"


def test_same_signer_other_issuer_is_another_identity(tmp_path: Path) -> None:
    history = tmp_path / "h.json"
    record_pins(history, "/m", [Sig("me@x", method="sigstore", issuer="https://a")], "d")
    with pytest.raises(PinningError, match="issuer https://b"):
        record_pins(history, "/m", [Sig("me@x", method="sigstore", issuer="https://b")], "d")


@pytest.mark.parametrize(("field", "word"), [("signed_at", "proven"), ("claimed_at", "claimed")])
def test_an_older_signature_over_other_content_is_a_rollback(
    tmp_path: Path, field: str, word: str
) -> None:
    history = tmp_path / "h.json"
    record_pins(history, "/m", [Sig(**{field: T0 + dt.timedelta(days=2)})], "new")
    with pytest.raises(RollbackError, match=rf"signed at 2026-01-02.*\({word}"):
        record_pins(history, "/m", [Sig(**{field: T0 + dt.timedelta(days=1)})], "old")
    # the same content signed earlier again is no rollback; a newer version moves the mark
    record_pins(history, "/m", [Sig(**{field: T0})], "new")
    record_pins(history, "/m", [Sig(**{field: T0 + dt.timedelta(days=3)})], "newer")
    with pytest.raises(RollbackError):
        record_pins(history, "/m", [Sig(**{field: T0 + dt.timedelta(days=2)})], "new")
    # accepting the older version records it as the newest
    record_pins(history, "/m", [Sig(**{field: T0 + dt.timedelta(days=1)})], "old", accept=True)
    record_pins(history, "/m", [Sig(**{field: T0 + dt.timedelta(days=1)})], "old")


def test_a_proven_time_is_preferred_to_a_claimed_one(tmp_path: Path) -> None:
    history = tmp_path / "h.json"
    late = T0 + dt.timedelta(days=9)
    check = record_pins(history, "/m", [Sig(signed_at=T0, claimed_at=late)], "d")
    assert check.signed_at == T0 and check.proven


def test_no_signing_time_is_noted_not_judged(tmp_path: Path) -> None:
    history = tmp_path / "h.json"
    record_pins(history, "/m", [Sig(signed_at=T0 + dt.timedelta(days=5))], "new")
    check = record_pins(history, "/m", [Sig()], "other")
    assert check.notes == ("no signing time: whether this is a rollback cannot be told",)


@pytest.mark.parametrize(
    "text", ["{not json", '{"format": "x", "version": 1, "models": {}}', "[]", ""]
)
def test_a_damaged_history_is_an_error_not_an_empty_one(tmp_path: Path, text: str) -> None:
    history = tmp_path / "h.json"
    history.write_text(text)
    with pytest.raises(Error, match="signer history is damaged"):
        record_pins(history, "/m", [Sig()], "d")
    assert history.read_text() == text  # left as it was


def test_a_damaged_entry_is_an_error(tmp_path: Path) -> None:
    history = tmp_path / "h.json"
    record_pins(history, "/m", [Sig()], "d")
    doc = json.loads(history.read_text())
    doc["models"]["/m"] = {"newest": None}
    history.write_text(json.dumps(doc))
    with pytest.raises(Error, match="entry for /m is damaged"):
        record_pins(history, "/m", [Sig()], "d")


def test_the_history_is_private_and_written_whole(tmp_path: Path) -> None:
    history = tmp_path / "state" / "omsign" / "h.json"
    record_pins(history, "/m", [Sig()], "d")
    assert history.stat().st_mode & 0o777 == 0o600
    assert history.parent.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in history.parent.iterdir()) == ["h.json", "h.json.lock"]


def test_concurrent_writers_lose_no_entry(tmp_path: Path) -> None:
    # Each writer reads, adds its model and replaces the file: without the lock, writers
    # that read the same version overwrite each other's entries.
    history = tmp_path / "h.json"

    def writer(n: int) -> None:
        for i in range(25):
            record_pins(history, f"/m/{n}/{i}", [Sig()], "d")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(json.loads(history.read_text())["models"]) == 100


def test_default_history_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OMSIGN_HISTORY", str(tmp_path / "x.json"))
    assert default_history_path() == tmp_path / "x.json"
    monkeypatch.delenv("OMSIGN_HISTORY")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_history_path() == tmp_path / "state" / "omsign" / "history.json"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_history_path() == tmp_path / ".local" / "state" / "omsign" / "history.json"
