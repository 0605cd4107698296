"""Each scanner flags hostile pickles in the bytes omsign verified, and passes clean models."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

from helpers.fixtures import make_model
from helpers.pickles import (
    clean_pickle,
    hostile_pickle,
    hostile_torch_zip,
    need_scanner,
    pickle_of_size,
    safetensors_model,
)
from omsign.errors import BackendUnavailableError, IntegrityError, UsageError
from omsign.predicates._scan import PREDICATE_TYPE, SCAN_EXTENSION, read_scan_verdict
from omsign.scanners import SCANNERS, hashed_model, load_scanner, scan_model, scan_verified

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(params=SCANNERS)
def scanner(request: pytest.FixtureRequest) -> str:
    need_scanner(request.param)
    return str(request.param)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("evil.pkl", hostile_pickle()),  # by its suffix
        ("weights.data2", hostile_pickle(2)),  # a name no scanner reads: found by content
        ("weights.data0", hostile_pickle(0)),  # the same in the text protocol 0
        ("model.pt", hostile_torch_zip()),  # a PyTorch zip checkpoint
    ],
)
def test_each_scanner_flags_a_hostile_pickle(
    tmp_path: Path, scanner: str, name: str, data: bytes
) -> None:
    model = safetensors_model(tmp_path / "m")
    (model / name).write_bytes(data)
    report = scan_model(model, scanner, now=NOW)
    verdict = report.verdict
    assert not verdict.passed
    assert report.predicate["verificationResult"] == "FAILED"
    flagged = verdict.file(name)
    assert flagged is not None and not flagged.passed
    assert any("system" in f for f in flagged.findings), flagged.findings
    # the clean files are not blamed
    assert "model.safetensors" in verdict.skipped
    assert verdict.file("config.json") is None


def test_a_pickle_the_scanner_cannot_read_fails(tmp_path: Path, scanner: str) -> None:
    model = make_model(tmp_path / "m", {"state.pkl": clean_pickle()[:-8], "config.json": b"{}"})
    verdict = scan_model(model, scanner, now=NOW).verdict
    assert not verdict.passed  # cut short: nothing proves it harmless
    failed = verdict.file("state.pkl")
    assert failed is not None and not failed.passed and failed.findings


def test_each_scanner_passes_clean_models(tmp_path: Path, scanner: str) -> None:
    model = safetensors_model(tmp_path / "m")
    (model / "state.pkl").write_bytes(clean_pickle())
    (model / "notes.yaml").write_text("config: true\nname: tiny\n")  # text, not a pickle
    report = scan_model(model, scanner, now=NOW, valid_for=dt.timedelta(days=7))
    verdict = report.verdict
    assert verdict.passed, verdict.scanned
    assert verdict.skipped["notes.yaml"].startswith("no pickle content")
    assert verdict.file("state.pkl") == verdict.scanned[0]
    assert verdict.skipped["model.safetensors"] == "not a pickle-based format"
    assert verdict.scanner == scanner
    assert verdict.expires - verdict.time_verified == dt.timedelta(days=7)
    assert verdict.root_digest == report.root_digest == hashed_model(model).result.root_digest


def test_the_predicate_is_a_verification_summary(tmp_path: Path) -> None:
    need_scanner("picklescan")
    model = safetensors_model(tmp_path / "m")
    (model / "evil.pkl").write_bytes(hostile_pickle())
    predicate = scan_model(model, "picklescan", now=NOW).predicate
    # every field SLSA VSA v1 requires
    assert predicate["verifier"]["id"] == "https://omsign.dev/scanners/picklescan"
    assert predicate["timeVerified"] == "2026-05-01T12:00:00Z"
    assert predicate["resourceUri"] == model.absolute().as_uri()
    assert predicate["policy"]["uri"]
    assert predicate["verifiedLevels"] == ["FAILED"]
    ext = predicate[SCAN_EXTENSION]
    assert ext["scanner"]["name"] == "picklescan"
    assert ext["expires"] == "2026-05-31T12:00:00Z"
    assert [f["name"] for f in ext["scanned"]] == ["evil.pkl"]
    assert PREDICATE_TYPE == "https://slsa.dev/verification_summary/v1"


def test_a_file_changed_after_hashing_is_not_scanned(tmp_path: Path, scanner: str) -> None:
    model = make_model(tmp_path / "m", {"state.pkl": clean_pickle(), "config.json": b"{}"})
    hashed = hashed_model(model)
    (model / "state.pkl").write_bytes(hostile_pickle())  # after hashing, before scanning
    with pytest.raises(IntegrityError):
        scan_verified(hashed, scanner, now=NOW)


def test_a_shard_changed_after_hashing_is_caught_whatever_the_scanner_does(
    tmp_path: Path, scanner: str
) -> None:
    from omsign.options import HashOptions

    data = pickle_of_size(20_000)
    model = make_model(tmp_path / "m", {"state.pkl": data})
    hashed = hashed_model(model, hashing=HashOptions(shard_size=4096))
    with open(model / "state.pkl", "r+b") as f:  # a late shard, same size and inode
        f.seek(15_000)
        f.write(b"\xff")
    with pytest.raises(IntegrityError, match=r"state\.pkl"):
        scan_verified(hashed, scanner, now=NOW)


def test_a_single_file_model_is_scanned(tmp_path: Path) -> None:
    need_scanner("picklescan")
    path = tmp_path / "model.pkl"
    path.write_bytes(hostile_pickle())
    verdict = scan_model(path, "picklescan", now=NOW).verdict
    assert [f.name for f in verdict.scanned] == ["model.pkl"]
    assert not verdict.passed


def test_random_bytes_without_pickle_content_do_not_fail(tmp_path: Path, scanner: str) -> None:
    model = make_model(tmp_path / "m", {"weights.bin": b"\x00\x01" * 500, "config.json": b"{}"})
    verdict = scan_model(model, scanner, now=NOW).verdict
    assert verdict.passed
    skipped_or_clean = verdict.skipped.get("weights.bin") or verdict.file("weights.bin")
    assert skipped_or_clean


def test_a_missing_scanner_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picklescan", None)  # import fails as if not installed
    with pytest.raises(BackendUnavailableError) as err:
        load_scanner("picklescan")
    assert "the picklescan scanner is not installed" in str(err.value)
    assert "omsign[scan-picklescan]" in str(err.value)
    assert err.value.exit_code == 2


def test_an_unknown_scanner_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown scanner 'clamav'"):
        load_scanner("clamav")


def test_a_validity_must_be_positive(tmp_path: Path) -> None:
    need_scanner("picklescan")
    hashed = hashed_model(make_model(tmp_path / "m", {"a.json": b"{}"}))
    with pytest.raises(UsageError, match="positive"):
        scan_verified(hashed, "picklescan", valid_for=dt.timedelta(0))


def _predicate(**ext: object) -> dict[str, object]:
    base: dict[str, object] = {
        "scanner": {"name": "picklescan", "version": "1"},
        "rootDigest": {"sha256": "ab" * 32},
        "expires": "2026-06-01T00:00:00Z",
        "scanned": [{"name": "a.pkl", "result": "PASSED", "findings": []}],
        "skipped": [],
    }
    base.update(ext)
    return {
        "verificationResult": "PASSED",
        "timeVerified": "2026-05-01T00:00:00Z",
        SCAN_EXTENSION: base,
    }


def test_reading_a_verdict_back() -> None:
    verdict = read_scan_verdict(_predicate())
    assert verdict.passed and verdict.root_digest == "ab" * 32
    assert verdict.expires == dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scanned": [{"name": "a.pkl", "result": "FAILED"}]}, "PASSED but a scanned file"),
        ({"rootDigest": {"sha256": "XY"}}, "not a lowercase hex"),
        ({"expires": "tomorrow"}, "not an RFC 3339 time"),
        ({"expires": "2026-06-01T00:00:00"}, "no time zone"),
        ({"scanned": [{"name": "a.pkl", "result": "MAYBE"}]}, "not PASSED or FAILED"),
        ({"skipped": [{"name": 3, "reason": "x"}]}, "name is missing or not a str"),
    ],
)
def test_malformed_verdicts_are_refused(change: dict[str, object], message: str) -> None:
    from omsign.errors import MalformedSignatureError

    with pytest.raises(MalformedSignatureError, match=message):
        read_scan_verdict(_predicate(**change))


def test_a_predicate_without_the_scan_fields_is_not_a_verdict() -> None:
    from omsign.errors import MalformedSignatureError

    with pytest.raises(MalformedSignatureError, match="not a scan verdict written by omsign"):
        read_scan_verdict({"verificationResult": "PASSED", "timeVerified": "x"})
