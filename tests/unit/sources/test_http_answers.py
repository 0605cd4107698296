"""Every answer of a web server is checked before its bytes count: a server that ignores
``If-Match``, answers other bytes than asked, sends more than asked, codes the content,
gives no strong validator or redirects fails the run naming the file (exit 1 when
verifying), against a real server that misbehaves on request."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair
from omsign.errors import IntegrityError, ModelError, StorageAccessError
from services.misbehaving_http import Misbehaving


@pytest.mark.parametrize(
    ("fault", "refused"),
    [
        ("other-etag", r"w\.bin: file replaced while the model was read \(listed ETag \"v1\"\)"),
        ("wrong-range", r"w\.bin: the server answered a request of bytes 0-99999 with"),
        ("long-body", r"w\.bin: the server answered 100000 bytes of the file with a body of"),
        ("gzip", r"w\.bin: the server sends the file content-coded"),
        ("weak", r"w\.bin: the server gives no strong ETag and no Last-Modified"),
        ("redirect", r"w\.bin: the server redirects to https://elsewhere\.example/x; redirects"),
        ("gone", r"w\.bin: listed, but the server has no such file"),
    ],
)
def test_an_answer_that_is_not_the_pinned_bytes_asked_fails_verification(
    misbehaving_http: Misbehaving, tmp_path: Path, p256: KeyPair, fault: str, refused: str
) -> None:
    server = misbehaving_http
    server.files.update({"a.txt": b"a", "w.bin": os.urandom(100_000)})
    sig = tmp_path / "m.sig"
    omsign.sign(server.url, key=p256.private, signature=sig)
    server.faults["w.bin"] = fault
    with pytest.raises(IntegrityError, match=refused):
        omsign.verify(server.url, key=p256.public, signature=sig)
    with pytest.raises(ModelError, match=refused):
        omsign.digest(server.url, shard_size=30_000)  # shards: ranges inside the file


def test_a_model_url_that_redirects_elsewhere_is_refused(
    misbehaving_http: Misbehaving,
) -> None:
    server = misbehaving_http
    server.files["w.bin"] = b"x"
    server.faults["w.bin"] = "redirect"
    with pytest.raises(StorageAccessError, match=r"redirects to https://elsewhere\.example/x"):
        omsign.digest(server.url + "w.bin")  # a single-file model


def test_a_weak_etag_does_not_pin_a_file_its_date_does(
    misbehaving_http: Misbehaving, tmp_path: Path, p256: KeyPair
) -> None:
    """A weak ETag promises equivalent content, not the same bytes: the Last-Modified date
    pins the file instead, and every read is conditioned on it."""
    from omsign.sources import resolve_source

    server = misbehaving_http
    server.files.update({"w.bin": os.urandom(1000)})
    server.faults["w.bin"] = "weak-dated"
    (entry,) = resolve_source(server.url).entries()
    assert entry.pin.etag is None
    assert entry.pin.conditions() == {"If-Unmodified-Since": "Sun, 29 Nov 2026 00:00:00 GMT"}
    sig = tmp_path / "m.sig"
    omsign.sign(server.url, key=p256.private, signature=sig)
    assert omsign.verify(server.url, key=p256.public, signature=sig).verified == ("w.bin",)


def test_verified_loading_refuses_a_served_model_as_other_remote_models(
    misbehaving_http: Misbehaving, tmp_path: Path, p256: KeyPair
) -> None:
    server = misbehaving_http
    server.files.update({"w.bin": os.urandom(1000)})
    sig = tmp_path / "m.sig"
    omsign.sign(server.url, key=p256.private, signature=sig)
    model = omsign.open_verified(server.url, key=p256.public, signature=sig)
    with pytest.raises(ModelError, match="verified loading reads models on this machine"):
        model.open_raw("w.bin")


def test_a_file_pinned_by_its_etag_is_not_replaced_when_only_its_date_moves(
    misbehaving_http: Misbehaving, tmp_path: Path, p256: KeyPair
) -> None:
    """The validator pinned decides: a file re-dated (touched) with the same strong ETag is
    the same version, so reading it is not a change."""
    server = misbehaving_http
    server.files.update({"w.bin": os.urandom(1000)})
    server.faults["w.bin"] = "redated"
    sig = tmp_path / "m.sig"
    omsign.sign(server.url, key=p256.private, signature=sig)
    assert omsign.verify(server.url, key=p256.public, signature=sig).verified == ("w.bin",)
    assert server.answers >= 3  # listed, read and looked up again, each with its own date
