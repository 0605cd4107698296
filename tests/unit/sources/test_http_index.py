"""Directory listings read as a model's file list: the pages real servers write, hostile
pages refused link by link, the walk's bounds, and Python's ``http.server`` for real."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair
from omsign.errors import IntegrityError, ModelError
from omsign.sources import _http, _http_index, resolve_source
from omsign.sources._http_index import Link, parse_page
from services._process import free_port, wait_until_up
from services.nginx import Nginx

PAGE = "https://models.example/org/bert/"

APACHE = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
<html><head><title>Index of /org/bert</title></head><body><h1>Index of /org/bert</h1>
<table><tr><th><img src="/icons/blank.gif" alt="[ICO]"></th>
<th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th></tr>
<tr><td><img src="/icons/back.gif" alt="[PARENTDIR]"></td>
<td><a href="/org/">Parent Directory</a></td></tr>
<tr><td><a href="config.json"><img src="/icons/text.gif" alt="[TXT]"></a></td>
<td><a href="config.json">config.json</a></td></tr>
<tr><td><a href="weights/">weights/</a></td></tr>
<tr><td><a href="R%26D%20notes.txt">R&amp;D notes.txt</a></td></tr>
</table></body></html>"""

NGINX = """<html><head><title>Index of /org/bert/</title></head><body>
<h1>Index of /org/bert/</h1><hr><pre><a href="../">../</a>
<a href="weights/">weights/</a>   29-Nov-2026 23:37    -
<a href="caf%C3%A9.bin">caf\u00e9.bin</a>   29-Nov-2026 23:37    100000
</pre><hr></body></html>"""


def test_the_pages_nginx_and_apache_write_give_their_entries() -> None:
    assert parse_page(APACHE.encode(), "text/html;charset=ISO-8859-1", PAGE) == [
        Link("config.json", False),  # linked twice (icon and name): one entry
        Link("weights", True),
        Link("R&D notes.txt", False),
    ]
    assert parse_page(NGINX.encode(), "text/html", PAGE) == [
        Link("weights", True),
        Link("caf\u00e9.bin", False),
    ]
    nginx_json = b'[{"name":"a b", "type":"directory"}, {"name":"c%.bin", "type":"file"}]'
    assert parse_page(nginx_json, "application/json", PAGE) == [
        Link("a b", True),
        Link("c%.bin", False),
    ]


@pytest.mark.parametrize(
    ("href", "refused"),
    [
        ("http://models.example/org/bert/x.bin", "outside the model"),  # another scheme
        ("https://models.example:8443/org/bert/x.bin", "outside the model"),  # another port
        ("mailto:someone@models.example", "outside the model"),
        ("/org/other/x.bin", "outside the model"),
        ("../bert2/x.bin", "outside the model"),
        ("x.bin#part", "query or fragment"),
        ("%2e%2e/", "not a valid model file name"),
        ("a%5Cb", "not a valid model file name"),
        ("a%00b", "not a valid model file name"),
        ("%ff.bin", "not UTF-8"),
        ("weights/inner.bin", "outside its own folder"),
    ],
)
def test_each_hostile_link_is_refused_naming_the_page(href: str, refused: str) -> None:
    page = f'<a href="{href}">x</a>'.encode()
    with pytest.raises(ModelError, match=refused) as caught:
        parse_page(page, "text/html", PAGE)
    assert str(caught.value).startswith(PAGE)


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "x"}',
        b'[{"name": "x", "type": "other"}]',
        b'[{"name": "../x", "type": "file"}]',
        b'[{"name": "a/b", "type": "file"}]',
        b'[{"name": "x", "type": "file"}, {"name": "x", "type": "directory"}]',
        b"[{",
    ],
)
def test_a_malformed_or_hostile_json_listing_is_refused(body: bytes) -> None:
    with pytest.raises(ModelError):
        parse_page(body, "application/json", PAGE)


def test_the_walk_is_bounded_in_files_depth_and_page_size(
    https_trust: Nginx, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"f{i}.bin": b"x" for i in range(4)} | {"a/b/c/d.bin": b"deep"}
    folder, path = https_trust.folder(files)
    url = https_trust.tls_url + path
    assert omsign.digest(url) == omsign.digest(folder)
    monkeypatch.setattr(_http_index, "MAX_FILES", 3)
    with pytest.raises(ModelError, match="more than 3 files"):
        omsign.digest(url)
    monkeypatch.undo()
    monkeypatch.setenv("SSL_CERT_FILE", str(https_trust.ca_path))
    monkeypatch.setattr(_http_index, "MAX_DEPTH", 3)
    with pytest.raises(ModelError, match="nested more than 3 deep"):
        omsign.digest(url)
    monkeypatch.setattr(_http_index, "MAX_DEPTH", 64)
    monkeypatch.setattr(_http, "MAX_PAGE_BYTES", 100)
    with pytest.raises(ModelError, match="listing is larger than"):
        omsign.digest(url + "a/")  # a subfolder's page: a model error


def test_a_model_served_by_python_http_server_verifies_in_files_mode(
    tmp_path: Path, p256: KeyPair
) -> None:
    """Python's ``http.server``: an HTML index, no ETag (the Last-Modified date pins each
    file) and no range requests (a whole file comes as 200: files mode only)."""
    root = tmp_path / "www"
    files = {"config.json": b"{}", "w/model.bin": os.urandom(50_000), "a b.txt": b"x"}
    for name, data in files.items():
        (root / "m" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "m" / name).write_bytes(data)
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "-b", "127.0.0.1", str(port), "-d", str(root)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/m/"
    try:

        def answers() -> bool:
            urllib.request.urlopen(url, timeout=1).close()
            return True

        wait_until_up(proc, answers, "python -m http.server")
        sig = tmp_path / "m.sig"
        signed = omsign.sign(url, key=p256.private, signature=sig)
        assert signed.root_digest == omsign.digest(root / "m")
        assert omsign.verify(url, key=p256.public, signature=sig).root_digest
        assert omsign.digest(f"http://127.0.0.1:{port}") == omsign.digest(root)  # root folder
        source = resolve_source(url)
        entry = next(e for e in source.entries() if e.name == "w/model.bin")
        opened = source.reader().open(entry)
        try:
            assert opened.read(0, 50_000) == files["w/model.bin"]  # the whole file: 200 is fine
            with pytest.raises(ModelError, match="does not answer range requests"):
                opened.read(10_000, 100)  # a shard of it cannot be read
        finally:
            opened.close()
        (root / "m" / "config.json").write_bytes(b"[]")
        with pytest.raises(IntegrityError, match=r"config\.json"):
            omsign.verify(url, key=p256.public, signature=sig)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
