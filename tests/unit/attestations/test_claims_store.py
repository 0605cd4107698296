"""The claims file: append-only, one bundle per line, each bad line reported on its own."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers.fixtures import KeyPair
from omsign.errors import Error, MalformedSignatureError, ModelError
from omsign.sources import resolve_source
from omsign.storage import _claims, resolve_store
from omsign.storage._file import FileStore, claims_path


def _store(model: Path) -> FileStore:
    store = resolve_store(resolve_source(model))
    assert isinstance(store, FileStore)
    return store


def test_claims_file_is_beside_the_signature(model: Path, tmp_path: Path) -> None:
    assert _store(model).claims_file == model / "claims.jsonl"
    single = tmp_path / "weights.bin"
    single.write_bytes(b"w")
    assert _store(single).claims_file == tmp_path / "weights.bin.claims.jsonl"
    assert claims_path(tmp_path / "other.sig") == tmp_path / "other.claims.jsonl"


def test_always_excluded_even_before_it_exists(model: Path) -> None:
    store = _store(model)
    assert not store.claims_file.exists()
    assert store.excluded() == ["claims.jsonl", "model.sig", "model.sig.d"]


def test_appends_are_numbered_lines_read_back_raw(model: Path) -> None:
    store = _store(model)
    assert store.claims() == []
    first = store.append_claim({"a": 1})
    second = store.append_claim({"b": [1, 2]})
    assert first == f"{store.claims_file}:1"
    assert second == f"{store.claims_file}:2"
    lines = store.claims()
    assert lines == [(first, b'{"a":1}'), (second, b'{"b":[1,2]}')]
    assert store.claims_file.read_bytes().endswith(b"\n")


def test_a_torn_last_line_is_reported_and_the_next_append_starts_afresh(model: Path) -> None:
    store = _store(model)
    store.append_claim({"a": 1})
    with open(store.claims_file, "ab") as f:
        f.write(b'{"half": ')  # a crash in the middle of an append
    lines = store.claims()
    assert lines[0][1] == b'{"a":1}'
    location, torn = lines[1]
    assert isinstance(torn, MalformedSignatureError)
    assert location.endswith(":2") and "torn" in str(torn)
    added = store.append_claim({"c": 3})
    assert added.endswith(":3")  # the torn line stays alone on line 2
    raw = [value for _, value in store.claims()]
    assert raw[0] == b'{"a":1}' and raw[1] == b'{"half": ' and raw[2] == b'{"c":3}'


def test_blank_lines_are_skipped(model: Path) -> None:
    store = _store(model)
    store.claims_file.write_bytes(b'\n{"a":1}\n  \n{"b":2}\n')
    assert [loc.rsplit(":", 1)[1] for loc, _ in store.claims()] == ["2", "4"]


def test_an_overlong_line_is_one_error_and_the_others_are_read(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_claims, "MAX_LINE_BYTES", 64)
    store = _store(model)
    store.claims_file.write_bytes(b'{"a":1}\n' + b"x" * 500 + b'\n{"b":2}\n')
    lines = store.claims()
    assert lines[0][1] == b'{"a":1}'
    assert isinstance(lines[1][1], Error) and "longer than" in str(lines[1][1])
    assert lines[2] == (f"{store.claims_file}:3", b'{"b":2}')


def test_line_count_is_bounded(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_claims, "MAX_LINES", 3)
    store = _store(model)
    store.claims_file.write_bytes(b"{}\n" * 10)
    lines = store.claims()
    assert len(lines) == 4
    assert isinstance(lines[3][1], Error) and "more than 3 lines" in str(lines[3][1])


def test_a_line_too_long_to_read_is_refused_when_appending(
    model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_claims, "MAX_LINE_BYTES", 16)
    with pytest.raises(ModelError, match="larger than"):
        _store(model).append_claim({"data": "x" * 100})


def test_a_claims_path_that_is_not_a_regular_file_is_refused(model: Path) -> None:
    store = _store(model)
    os.mkfifo(store.claims_file)
    with pytest.raises(MalformedSignatureError, match="not a regular file"):
        store.claims()
    with pytest.raises(ModelError, match="not a regular file"):
        store.append_claim({"a": 1})


def test_a_link_is_not_appended_through(model: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.jsonl"
    target.write_bytes(b"")
    store = _store(model)
    store.claims_file.symlink_to(target)
    with pytest.raises(ModelError):
        store.append_claim({"a": 1})
    assert target.read_bytes() == b""


def test_appended_lines_are_compact_json(model: Path) -> None:
    store = _store(model)
    store.append_claim({"b": 1, "a": {"x": "y\nz"}})
    (line,) = store.claims_file.read_bytes().splitlines()
    assert json.loads(line) == {"a": {"x": "y\nz"}, "b": 1}


def _append_many(model: str, writer: int, count: int) -> list[str]:
    store = FileStore(Path(model))
    return [store.append_claim({"w": writer, "i": i, "pad": "x" * 50_000}) for i in range(count)]


def test_concurrent_appends_never_interleave(model: Path) -> None:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(_append_many, str(model), w, 20) for w in range(4)]
        locations = [loc for run in runs for loc in run.result()]
    assert len(set(locations)) == 80  # each append got its own line number
    lines = _store(model).claims()
    assert len(lines) == 80
    seen = {(json.loads(raw)["w"], json.loads(raw)["i"]) for _, raw in lines}  # type: ignore[arg-type]
    assert seen == {(w, i) for w in range(4) for i in range(20)}


def test_signing_warns_when_the_claims_file_is_not_attestations(
    model: Path, p256: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    import omsign

    (model / "claims.jsonl").write_text('{"claim": "a data file of the model"}\n')
    with caplog.at_level("WARNING", logger="omsign"):
        omsign.sign(model, key=p256.private)
    assert "does not hold signature bundles; if it is part of the model, rename it" in caplog.text
    caplog.clear()
    (model / "claims.jsonl").unlink()
    omsign.sign(model, key=p256.private)
    omsign.attest(model, key=p256.private, predicate_type="https://example.com/x", predicate={})
    with caplog.at_level("WARNING", logger="omsign"):
        omsign.sign(model, key=p256.private)  # real attestations: no warning
    assert "rename it" not in caplog.text
