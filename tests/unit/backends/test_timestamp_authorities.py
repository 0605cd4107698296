"""Timestamp authorities of a trust config: only the listed certificate, only within its
``validFor`` window, its listed chain checked at the token's time."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from helpers.pki import Issued, days, issue_tsa_cert, make_ca, now
from omsign._timestamp import request_timestamp, verify_timestamp
from omsign.backends._timestamp_authorities import TimestampAuthority, load_timestamp_authorities
from omsign.errors import KeyLoadError, SignatureError
from omsign.policy import load_tsa_anchors
from services.tsa import start_tsa

SIGNATURE = b"0E\x02 DSSE signature bytes under test"


def _der(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode()


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _entry(
    chain: tuple[x509.Certificate, ...],
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> dict[str, Any]:
    window = {"start": _iso(start or now() - days(1))}
    if end is not None:
        window["end"] = _iso(end)
    return {
        "subject": {"organization": "omsign tests", "commonName": "listed TSA"},
        "certChain": {"certificates": [{"rawBytes": _der(c)} for c in chain]},
        "validFor": window,
    }


def _write_config(path: Path, *entries: dict[str, Any], client: bool = True) -> Path:
    root = {
        "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        "timestampAuthorities": list(entries),
    }
    doc = {"trustedRoot": root} if client else root
    path.write_text(json.dumps(doc))
    return path


class Pki:
    """A root, an intermediate, the listed TSA and a sibling TSA from the same intermediate."""

    def __init__(self) -> None:
        self.root = make_ca("TSA root")
        self.inter = make_ca("TSA intermediate", parent=self.root)
        self.listed = issue_tsa_cert(self.inter, name="listed TSA")
        self.sibling = issue_tsa_cert(self.inter, name="sibling TSA")


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


def _stamp(tmp_path: Path, root: Issued, tsa: Issued) -> bytes:
    running = start_tsa(tmp_path / "tsa", root=root, tsa=tsa)
    try:
        return request_timestamp(running.url, SIGNATURE)
    finally:
        running.stop()


@pytest.fixture(scope="module")
def listed_token(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _stamp(tmp_path_factory.mktemp("listed"), pki.root, pki.listed)


def _authority(
    pki: Pki, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> TimestampAuthority:
    return TimestampAuthority(pki.listed.full_chain, start or now() - days(1), end, "listed TSA")


def test_a_token_of_the_listed_authority_within_its_window_verifies(
    pki: Pki, listed_token: bytes
) -> None:
    proven = verify_timestamp(listed_token, SIGNATURE, [_authority(pki)])
    assert abs(proven - now()) < dt.timedelta(minutes=5)


def test_a_trust_config_file_round_trips(pki: Pki, listed_token: bytes, tmp_path: Path) -> None:
    for client in (True, False):
        config = _write_config(tmp_path / "tc.json", _entry(pki.listed.full_chain), client=client)
        (authority,) = load_timestamp_authorities(config)
        assert authority.chain == pki.listed.full_chain
        assert authority.name == "listed TSA, omsign tests"
        verify_timestamp(listed_token, SIGNATURE, load_tsa_anchors(trust_config=config))


def test_a_sibling_of_the_listed_authority_is_not_trusted(pki: Pki, tmp_path: Path) -> None:
    """Same intermediate, same root, but not the certificate the trust config lists."""
    token = _stamp(tmp_path, pki.root, pki.sibling)
    with pytest.raises(SignatureError, match=r"untrusted authority \(CN=sibling TSA"):
        verify_timestamp(token, SIGNATURE, [_authority(pki)])
    config = _write_config(tmp_path / "tc.json", _entry(pki.listed.full_chain))
    with pytest.raises(SignatureError, match="untrusted authority"):
        verify_timestamp(token, SIGNATURE, load_tsa_anchors(trust_config=config))


def test_an_issuer_listed_first_does_not_vouch_for_what_it_issued(
    pki: Pki, listed_token: bytes
) -> None:
    """The chain's certificates are not roots: listing [intermediate, root] trusts neither
    the intermediate's other certificates nor the listed TSA under it."""
    authority = TimestampAuthority((pki.inter.cert, pki.root.cert), now() - days(1))
    with pytest.raises(SignatureError, match="untrusted authority"):
        verify_timestamp(listed_token, SIGNATURE, [authority])


@pytest.mark.parametrize(
    ("start", "end"),
    [(now() + days(1), None), (now() - days(10), now() - days(1))],
    ids=["window-not-yet-open", "window-closed"],
)
def test_a_token_outside_the_validfor_window_is_rejected(
    pki: Pki, listed_token: bytes, start: dt.datetime, end: dt.datetime | None
) -> None:
    with pytest.raises(SignatureError, match=r"outside the window .*\(listed TSA\)"):
        verify_timestamp(listed_token, SIGNATURE, [_authority(pki, start, end)])


def test_the_window_is_read_from_the_trust_config(
    pki: Pki, listed_token: bytes, tmp_path: Path
) -> None:
    entry = _entry(pki.listed.full_chain, now() - days(10), now() - days(1))
    config = _write_config(tmp_path / "tc.json", entry)
    with pytest.raises(SignatureError, match="outside the window"):
        verify_timestamp(listed_token, SIGNATURE, load_tsa_anchors(trust_config=config))


def test_the_listed_chain_is_checked_at_the_token_time(tmp_path: Path) -> None:
    """An intermediate that expired before the token was made breaks the listed chain."""
    root = make_ca("Root", not_before=now() - days(30))
    old = make_ca("Expired intermediate", parent=root, not_before=now() - days(20),
                  not_after=now() - days(10))  # fmt: skip
    tsa = issue_tsa_cert(old, name="TSA under an expired CA")
    token = _stamp(tmp_path, root, tsa)
    authority = TimestampAuthority(tsa.full_chain, now() - days(30), name="TSA")
    with pytest.raises(SignatureError, match="not valid at the timestamp"):
        verify_timestamp(token, SIGNATURE, [authority])
    with pytest.raises(SignatureError, match="not valid at the timestamp"):
        authority.check(now())


def test_a_broken_listed_chain_is_rejected(pki: Pki) -> None:
    other_root = make_ca("Unrelated root")
    authority = TimestampAuthority((pki.listed.cert, pki.inter.cert, other_root.cert), now())
    with pytest.raises(SignatureError, match="chain is broken"):
        authority.check(now())


# Loading a trust config


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("validFor"), "lacks its certChain or validFor start"),
        (lambda e: e["validFor"].pop("start"), "lacks its certChain or validFor start"),
        (lambda e: e["validFor"].update(start="yesterday"), "is not RFC 3339"),
        (lambda e: e["validFor"].update(start="2024-01-01T00:00:00"), "has no time zone"),
        (lambda e: e["certChain"].update(certificates=[]), "has no certificate"),
        (lambda e: e["certChain"]["certificates"][0].update(rawBytes="@@"), "cannot be parsed"),
        (lambda e: e["certChain"]["certificates"][0].update(rawBytes=7), "not base64 text"),
    ],
    ids=["no-validfor", "no-start", "bad-time", "naive-time", "no-certs", "bad-b64", "not-str"],
)
def test_a_malformed_authority_is_a_load_error_naming_the_file(
    pki: Pki, tmp_path: Path, mutate: Any, message: str
) -> None:
    entry = _entry(pki.listed.full_chain)
    mutate(entry)
    config = _write_config(tmp_path / "tc.json", entry)
    with pytest.raises(
        KeyLoadError, match=rf"^{tmp_path}/tc.json: timestamp authority 1.*{message}"
    ):
        load_timestamp_authorities(config)


def test_a_config_without_authorities_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(KeyLoadError, match="lists no timestamp authority"):
        load_timestamp_authorities(_write_config(tmp_path / "tc.json"))
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(KeyLoadError, match="not a valid Sigstore trust config"):
        load_timestamp_authorities(tmp_path / "list.json")
