"""Hostile RFC 3161 timestamps in a bundle: too many or repeated tokens are refused
before any is verified (a real token repeated 30,000 times once cost 11 s)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers.fixtures import CliResult, KeyPair
from hostile.signed import deadline
from omsign.bundle import MAX_TIMESTAMPS, parse_bundle
from omsign.errors import MalformedSignatureError
from services.tsa import RunningTSA

Cli = Callable[..., CliResult]


# --- RFC 3161 timestamps in a bundle --------------------------------------------------------


@pytest.fixture
def stamped(
    tmp_path: Path, model: Path, p256: KeyPair, tsa: RunningTSA, cli: Cli
) -> dict[str, Any]:
    """A key signature over ``model`` with one real timestamp; returns the bundle JSON."""
    assert cli("sign", model, "--key", p256.private, "--tsa-url", tsa.url).code == 0
    bundle: dict[str, Any] = json.loads((model / "model.sig").read_text())
    return bundle


def _stamps(bundle: dict[str, Any]) -> list[dict[str, str]]:
    stamps: list[dict[str, str]] = bundle["verificationMaterial"]["timestampVerificationData"][
        "rfc3161Timestamps"
    ]
    return stamps


def _verify_stamped(cli: Cli, model: Path, p256: KeyPair, tsa: RunningTSA) -> CliResult:
    with deadline(20):
        return cli("verify", model, "--key", p256.public, "--tsa-cert", tsa.root_path)


def test_a_repeated_real_timestamp_is_refused_before_verification(
    model: Path, p256: KeyPair, tsa: RunningTSA, cli: Cli, stamped: dict[str, Any]
) -> None:
    assert _verify_stamped(cli, model, p256, tsa).code == 0
    _stamps(stamped).append(dict(_stamps(stamped)[0]))
    (model / "model.sig").write_text(json.dumps(stamped))
    result = _verify_stamped(cli, model, p256, tsa)
    assert result.code == 1, result
    assert "the same RFC 3161 timestamp is listed more than once" in result.err


def test_a_timestamp_repeated_thousands_of_times_is_refused_quickly(
    model: Path, p256: KeyPair, tsa: RunningTSA, cli: Cli, stamped: dict[str, Any]
) -> None:
    _stamps(stamped)[:] = _stamps(stamped) * 10_000
    (model / "model.sig").write_text(json.dumps(stamped))
    start = time.monotonic()
    result = _verify_stamped(cli, model, p256, tsa)
    assert result.code == 1, result
    assert f"more than {MAX_TIMESTAMPS} RFC 3161 timestamps" in result.err
    assert time.monotonic() - start < 10  # was 11 s of verification, and is mostly JSON now


def test_more_than_32_timestamps_are_refused_before_any_is_decoded(
    stamped: dict[str, Any],
) -> None:
    real = _stamps(stamped)[0]["signedTimestamp"]
    _stamps(stamped)[:] = [{"signedTimestamp": real}] + [
        {"signedTimestamp": base64.b64encode(b"not a token %d" % i).decode()} for i in range(32)
    ]
    with pytest.raises(MalformedSignatureError, match="more than 32 RFC 3161 timestamps"):
        parse_bundle(json.dumps(stamped).encode())
    del _stamps(stamped)[-1]  # 32 are accepted by the parser (each is verified later)
    assert len(parse_bundle(json.dumps(stamped).encode()).timestamps) == 32
