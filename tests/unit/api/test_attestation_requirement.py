"""``AttestationRequirement`` and durations: what ``--require-attestation`` accepts."""

from __future__ import annotations

import datetime as dt

import pytest

from omsign.errors import UsageError
from omsign.options import AttestationRequirement, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", dt.timedelta(days=30)),
        ("12h", dt.timedelta(hours=12)),
        ("1d12h", dt.timedelta(days=1, hours=12)),
        ("90m", dt.timedelta(minutes=90)),
        ("2w", dt.timedelta(weeks=2)),
        ("45s", dt.timedelta(seconds=45)),
    ],
)
def test_durations(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "3 days", "-1d", "0d", "1.5h", "P30D"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def test_requirements_are_parsed() -> None:
    assert AttestationRequirement.parse("scan") == AttestationRequirement("scan")
    assert AttestationRequirement.parse("scan:max-age=7d") == AttestationRequirement(
        "scan", dt.timedelta(days=7)
    )
    uri = "https://slsa.dev/provenance/v1"
    assert AttestationRequirement.parse(uri) == AttestationRequirement(uri)
    assert AttestationRequirement.parse(f"{uri}:max-age=1h").max_age == dt.timedelta(hours=1)
    assert AttestationRequirement("scan", dt.timedelta(hours=36)).describe() == "scan:max-age=1d12h"


@pytest.mark.parametrize("text", ["scan:max-age=soon", "scan:min-age=1d", ":max-age=1d", ""])
def test_bad_requirements(text: str) -> None:
    with pytest.raises(UsageError):
        AttestationRequirement.parse(text)
