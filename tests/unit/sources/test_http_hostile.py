"""A hostile web server cannot make omsign do unbounded work before the signature is
checked: a compressed signature is never inflated, a listing with no announced length is
read only to its bound, a page of many folders is refused before they are walked, a size
too long to be one is refused, and the server's text in a message is cut short. Against
a real server that misbehaves on request; a page of malformed HTML is read in one pass."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair
from omsign.errors import MalformedSignatureError, ModelError, UsageError
from omsign.sources import _http_index
from omsign.sources._http_index import Link, parse_page
from services.misbehaving_http import Misbehaving

PAGE = "https://models.example/org/bert/"


def test_a_compressed_signature_is_refused_not_inflated(
    misbehaving_http: Misbehaving, tmp_path: Path, p256: KeyPair
) -> None:
    """``Content-Encoding: gzip`` on ``model.sig`` (asked for as ``identity``): the body is
    taken as sent and refused; inflated, 64 KiB would have become 64 MiB."""
    server = misbehaving_http
    server.files["w.bin"] = b"w"
    sig = tmp_path / "m.sig"
    omsign.sign(server.url, key=p256.private, signature=sig)
    bomb = gzip.compress(b"\0" * (64 << 20))
    coded = {"Content-Encoding": "gzip", "Content-Length": str(len(bomb))}
    server.raw["model.sig"] = (200, coded, bomb)
    with pytest.raises(MalformedSignatureError, match=r"model\.sig: the server sends it content-"):
        omsign.verify(server.url, key=p256.public)


def test_a_coded_listing_is_refused(misbehaving_http: Misbehaving) -> None:
    server = misbehaving_http
    page = gzip.compress(b'<a href="w.bin">w.bin</a>')
    headers = {"Content-Type": "text/html", "Content-Encoding": "gzip"}
    server.raw[""] = (200, headers | {"Content-Length": str(len(page))}, page)
    with pytest.raises(ModelError, match=r"/m/: the server sends the listing content-coded"):
        omsign.digest(server.url)


@pytest.mark.parametrize("status", [200, 403])
def test_a_listing_of_no_announced_length_is_read_only_to_its_bound(
    misbehaving_http: Misbehaving, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    """A page (or a refusal) that never ends: omsign reads at most the page bound and hangs
    up, instead of reading the rest to reuse the connection."""
    from omsign.sources import _http

    monkeypatch.setattr(_http, "MAX_PAGE_BYTES", 1 << 20)
    server = misbehaving_http
    page = b'<a href="sub/">sub/</a>'
    server.raw[""] = (200, {"Content-Type": "text/html", "Content-Length": str(len(page))}, page)
    server.raw["sub/"] = (status, {"Content-Type": "text/html"}, None)
    refused = "listing is larger than" if status == 200 else r"server refused the file \(HTTP 403"
    with pytest.raises(ModelError, match=r"/m/sub/: the " + refused):
        omsign.digest(server.url)
    assert server.done.wait(30)
    assert server.sent < 32 << 20  # of 128 MiB offered


def test_a_page_of_more_folders_than_the_bound_is_refused_before_they_are_read(
    misbehaving_http: Misbehaving, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_http_index, "MAX_PAGES", 100)
    server = misbehaving_http
    page = "".join(f'<a href="d{i}/">d{i}/</a>' for i in range(100)).encode()
    server.raw[""] = (200, {"Content-Type": "text/html", "Content-Length": str(len(page))}, page)
    with pytest.raises(ModelError, match="more than 100 folders in the listing"):
        omsign.digest(server.url)
    assert server.pages == 1  # the model's page only: none of its folders was asked for


@pytest.mark.parametrize("fault", ["length", "huge-total"])
def test_a_size_too_long_to_be_one_is_refused_as_a_model_error(
    misbehaving_http: Misbehaving, fault: str
) -> None:
    """5,000 digits: ``int()`` of them raises ``ValueError``, not a verification failure."""
    server = misbehaving_http
    server.files["w.bin"] = os.urandom(1000)
    if fault == "length":
        headers = {"ETag": '"v1"', "Content-Length": "9" * 5000}
        server.raw["w.bin"] = (200, headers, b"")
        refused = r"w\.bin: the server gives no size"
    else:
        server.faults["w.bin"] = fault
        refused = r"w\.bin: the server answered a request of bytes 0-999 with Content-Range"
    with pytest.raises(ModelError, match=refused) as caught:
        omsign.digest(server.url)
    assert len(str(caught.value)) < 400


def test_the_servers_text_in_a_message_is_cut_short(misbehaving_http: Misbehaving) -> None:
    server = misbehaving_http
    far = "https://elsewhere.example/" + "x" * 60_000
    server.files["w.bin"] = b"w"
    server.raw["w.bin"] = (302, {"Location": far, "Content-Length": "0"}, b"")
    with pytest.raises(ModelError, match=r"redirects to https://elsewhere\.example/x+\.\.\.") as c:
        omsign.digest(server.url)
    assert len(str(c.value)) < 400
    server.raw[""] = (200, {"Content-Type": "text/html"}, f'<a href="{far}">x</a>'.encode())
    with pytest.raises(ModelError, match=r"links outside the model \(https://elsewhere") as c:
        omsign.digest(server.url)
    assert len(str(c.value)) < 400


def test_a_signature_url_with_credentials_is_refused_without_echoing_them(
    misbehaving_http: Misbehaving, p256: KeyPair
) -> None:
    server = misbehaving_http
    server.files["w.bin"] = b"w"
    secret = server.url.replace("http://", "http://user:s3cret@") + "model.sig"
    with pytest.raises(UsageError, match="names a user") as caught:
        omsign.verify(server.url, key=p256.public, signature=secret)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("junk", ["<a ", "<!--", "<?", "</"])
def test_a_malformed_page_is_read_in_one_pass(junk: str) -> None:
    """Python's HTML parser takes minutes on 200 KB of ``<a `` (time quadratic in the
    page): a 4 MiB page of it is read here well inside a minute, as no links."""
    import threading

    page = (junk * ((4 << 20) // len(junk))).encode()
    found: list[object] = []
    reader = threading.Thread(
        target=lambda: found.append(parse_page(page, "text/html", PAGE)), daemon=True
    )
    reader.start()
    reader.join(60)
    assert found == [[]]


def test_links_are_found_as_html_reads_them() -> None:
    page = b"""<!-- <a href="hidden.bin"> --><A title='a>b' HREF="R%26D.bin">x</A>
    <abbr href="no.bin"></abbr><a href=b&amp;c.bin>y</a><a class="x">z</a><a href="d/">"""
    assert parse_page(page, "text/html", PAGE) == [
        Link("R&D.bin", False),
        Link("b&c.bin", False),
        Link("d", True),
    ]


def test_a_json_listing_nested_too_deeply_is_refused_as_a_model_error() -> None:
    with pytest.raises(ModelError, match="the JSON listing is not valid JSON"):
        parse_page(b"[" * 200_000, "application/json", PAGE)
