"""Each request to a web server has a total time limit, headers and body, however the
server dribbles its answer (a byte at a time, each inside the per-read timeout), against a
real server that dribbles on request; the limit grows with the body a request may carry, so
a large range on a slow link is not cut."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair
from omsign.errors import StorageAccessError, UsageError
from omsign.sources._http_deadline import TIMEOUT_ENV, Watch, limit
from services.misbehaving_http import Misbehaving


def _served(server: Misbehaving, tmp_path: Path, p256: KeyPair, fault: str) -> Path:
    server.files.update({"a.txt": b"a", "w.bin": os.urandom(2000)})
    sig = tmp_path / "m.sig"
    omsign.sign(server.url, key=p256.private, signature=sig)
    server.faults["w.bin"] = fault
    return sig


def test_dribbled_headers_are_cut_at_the_time_limit(
    misbehaving_http: Misbehaving, tmp_path: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every answer about w.bin comes a byte each 50 ms (10 s for its headers alone)."""
    sig = _served(misbehaving_http, tmp_path, p256, "dribble-headers")
    monkeypatch.setenv(TIMEOUT_ENV, "1")
    with pytest.raises(StorageAccessError) as caught:
        omsign.verify(misbehaving_http.url, key=p256.public, signature=sig)
    message = str(caught.value)
    assert message.startswith(f"{misbehaving_http.url}w.bin: the answer's headers did not arrive")
    assert "time limit (1 s" in message and "\n" not in message
    assert caught.value.exit_code == 2


def test_a_dribbled_body_is_cut_at_the_time_limit(
    misbehaving_http: Misbehaving, tmp_path: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The headers come at once, the 2,000 bytes of w.bin a byte each 50 ms (100 s)."""
    sig = _served(misbehaving_http, tmp_path, p256, "dribble-body")
    monkeypatch.setenv(TIMEOUT_ENV, "1")
    started = time.monotonic()
    with pytest.raises(StorageAccessError, match=r"w\.bin: the body \(2000 bytes at most\) did"):
        omsign.verify(misbehaving_http.url, key=p256.public, signature=sig)
    assert time.monotonic() - started < 60  # cut, not read to its end


def test_a_dribbled_signature_is_cut_at_the_time_limit(
    misbehaving_http: Misbehaving, tmp_path: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``model.sig`` beside the model, a byte each 50 ms: cut, never taken in part."""
    server = misbehaving_http
    server.files["w.bin"] = b"w"
    sig = tmp_path / "m.sig"
    omsign.sign(server.url, key=p256.private, signature=sig)
    bundle = sig.read_bytes()
    server.raw["model.sig"] = (200, {"Content-Length": str(len(bundle))}, bundle)
    server.slow.add("model.sig")
    monkeypatch.setenv(TIMEOUT_ENV, "1")
    with pytest.raises(StorageAccessError, match=r"/m/model\.sig: the body \("):
        omsign.verify(server.url, key=p256.public)


def test_a_dribbled_listing_of_no_announced_length_is_cut_not_taken_in_part(
    misbehaving_http: Misbehaving, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page with no Content-Length, dribbled: what came before the cut would parse as a
    shorter listing; the run fails instead. (The body's time counts the page bound.)"""
    from omsign.sources import _http

    monkeypatch.setattr(_http, "MAX_PAGE_BYTES", 1 << 16)
    server = misbehaving_http
    page = b"".join(b'<a href="f%d.bin">f</a>\n' % i for i in range(100))
    server.raw[""] = (200, {"Content-Type": "text/html"}, page)
    server.slow.add("")
    monkeypatch.setenv(TIMEOUT_ENV, "1")
    with pytest.raises(StorageAccessError, match=r"/m/: the body \("):
        omsign.digest(server.url)


def test_a_dribbled_body_over_tls_is_cut_at_the_time_limit(
    misbehaving_https: Misbehaving, tmp_path: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The socket under the TLS layer is shut down: the TLS read blocked in it returns."""
    monkeypatch.setenv("SSL_CERT_FILE", str(misbehaving_https.ca_path))
    sig = _served(misbehaving_https, tmp_path, p256, "dribble-body")
    monkeypatch.setenv(TIMEOUT_ENV, "1")
    with pytest.raises(StorageAccessError, match=r"^https://.*w\.bin: the body \(2000 bytes"):
        omsign.verify(misbehaving_https.url, key=p256.public, signature=sig)


def test_a_tls_handshake_that_never_ends_is_cut_at_the_time_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that accepts the connection and never answers the client's hello (the
    handshake's reads would wait out the 15 s connect timeout, three times)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        monkeypatch.setenv(TIMEOUT_ENV, "1")
        with pytest.raises(StorageAccessError, match=r"headers did not arrive in time"):
            omsign.digest(f"https://127.0.0.1:{port}/m/")


def test_a_slow_answer_within_the_limit_is_read(
    misbehaving_http: Misbehaving, tmp_path: Path, p256: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit is a bound, not a cut of every slow answer: 40 bytes dribbled over 2 s
    pass under a limit of 30 s."""
    misbehaving_http.files.update({"a.txt": b"a", "w.bin": os.urandom(40)})
    sig = tmp_path / "m.sig"
    omsign.sign(misbehaving_http.url, key=p256.private, signature=sig)
    misbehaving_http.faults["w.bin"] = "dribble-body"
    monkeypatch.setenv(TIMEOUT_ENV, "30")
    omsign.verify(misbehaving_http.url, key=p256.public, signature=sig)


def test_the_limit_grows_with_the_body_so_large_ranges_on_slow_links_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert limit() == 60
    watch = Watch("https://h/x", limit())
    watch.body(32 << 20)  # a 32 MiB range: 60 s plus 60 s per 2 MiB, 17 minutes
    try:
        assert 1000 < watch.deadline - time.monotonic() <= 1020
    finally:
        watch.end()
    monkeypatch.setenv(TIMEOUT_ENV, "600")
    assert limit() == 600


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan", "inf"])
def test_a_limit_that_is_not_seconds_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(TIMEOUT_ENV, value)
    with pytest.raises(UsageError, match=rf"\${TIMEOUT_ENV}: expected a number of seconds"):
        limit()
