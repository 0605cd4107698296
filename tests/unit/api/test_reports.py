"""The JSON report format: versioned, one schema shipped in the package, for every report."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from helpers.reports import check_report
from omsign.errors import IntegrityError, SignatureError, SignatureNotFoundError
from omsign.inspect import describe_signature
from omsign.reports import REPORT_FORMAT, REPORT_VERSION, failure_report, report_schema


def test_the_schema_ships_in_the_package_and_is_valid() -> None:
    shipped = resources.files("omsign").joinpath("schemas/report-v1.json")
    assert shipped.is_file()
    schema = report_schema()
    assert schema == json.loads(shipped.read_text("utf-8"))
    jsonschema.validators.validator_for(schema).check_schema(schema)
    assert schema["properties"]["format"] == {"const": REPORT_FORMAT}
    assert schema["properties"]["version"] == {"const": REPORT_VERSION}


def test_a_verification_result_is_a_report(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    omsign.sign(model, key=p256.private)
    result = omsign.verify(model, key=p256.public)
    report = check_report(result.to_json(warnings=["a warning"]))
    assert (report["report"], report["verified"]) == ("verification", True)
    assert report["warnings"] == ["a warning"]
    assert check_report(result.to_json())["warnings"] == []


def test_a_failure_says_what_failed(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a", "b.bin": b"b"})
    omsign.sign(model, key=p256.private)
    (model / "a.bin").write_bytes(b"changed")
    with pytest.raises(IntegrityError) as caught:
        omsign.verify(model, key=p256.public)
    report = check_report(failure_report(caught.value))
    assert report["verified"] is False
    assert report["kind"] == "IntegrityError"
    assert report["message"] == str(caught.value)
    assert report["difference"] == {"changed": ["a.bin"], "missing": [], "unsigned": []}


@pytest.mark.parametrize("error", [SignatureError("bad"), SignatureNotFoundError("none")])
def test_a_failure_without_a_difference_is_a_report(error: Exception) -> None:
    assert isinstance(error, SignatureError | SignatureNotFoundError)
    report = check_report(failure_report(error, warnings=["w"]))
    assert report["difference"] is None
    assert report["kind"] == type(error).__name__


def test_a_report_that_breaks_the_schema_is_caught(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    omsign.sign(model, key=p256.private)
    good = omsign.verify(model, key=p256.public).to_json()
    for broken in (
        {**good, "version": 2},
        {k: v for k, v in good.items() if k != "format"},
        {**good, "verified": False},
        {**good, "files": {"verified": "a.bin"}},
    ):
        with pytest.raises(jsonschema.ValidationError):
            check_report(broken)


def test_an_inspection_is_a_report(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"a.bin": b"a"})
    omsign.sign(model, key=p256.private)
    report = check_report(describe_signature(model).to_json())
    assert (report["report"], report["verified"]) == ("inspection", False)
    assert report["statement_format"] == "OMS v1.0"
    assert [r["name"] for r in report["resources"]] == ["a.bin"]
