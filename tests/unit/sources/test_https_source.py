"""Models on a web server (``https://HOST/PATH/``, ``http://``) against a real nginx.

Every test writes a small model into a fresh folder of the root that ``services.nginx``
serves (HTML and JSON autoindex, HTTP and HTTPS with a test CA) and signs, verifies or
digests it from there: the same root digest as the local folder, a local signature or
one published beside the model, partial verification, files replaced between listing and
reading, missing, denied or added files, hostile listings and untrusted certificates.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

import omsign
from helpers.fixtures import KeyPair
from helpers.pki import make_ca, write_certs
from omsign.errors import IntegrityError, ModelError, StorageAccessError, UsageError
from omsign.options import HashOptions
from services.nginx import Nginx

_FILES = {
    "config.json": b'{"hidden_size": 8}\n',
    "weights/model-1.safetensors": os.urandom(300_001),
    "weights/model-2.safetensors": os.urandom(100_000),
    "tokenizer.json": b"{}",
    "empty.txt": b"",
    "name with spaces & %.txt": b"odd name\n",
}


def _served(server: Nginx, listing: str = "", tls: bool = True) -> tuple[Path, str]:
    """A fresh model folder: (its local path, its URL); ``listing`` is ``""`` or ``/json``."""
    folder, path = server.folder(_FILES)
    return folder, (server.tls_url if tls else server.url) + listing + path


def _rewrite(path: Path, data: bytes) -> None:
    """Replaces a served file; its date moves on, so its ETag changes even at equal size."""
    stat = path.stat()
    path.write_bytes(data)
    os.utime(path, (stat.st_atime + 100, stat.st_mtime + 100))


@pytest.mark.parametrize("listing", ["", "/json"], ids=["html", "json"])
def test_a_served_model_has_the_digest_of_its_local_copy_in_every_mode(
    https_trust: Nginx, listing: str
) -> None:
    folder, url = _served(https_trust, listing)
    for hashing in (HashOptions(), HashOptions("blake3", 100_000), HashOptions("sha256", 64)):
        assert omsign.digest(url, hashing=hashing) == omsign.digest(folder, hashing=hashing)
    one = url + "weights/model-1.safetensors"
    assert omsign.digest(one) == omsign.digest(folder / "weights" / "model-1.safetensors")
    assert omsign.digest(url.rstrip("/")) == omsign.digest(folder)  # nginx adds the slash


@pytest.mark.parametrize("shard_size", [None, 100_000], ids=["files", "shards"])
def test_a_served_model_signs_to_a_local_file_and_verifies_from_the_server(
    https_trust: Nginx, tmp_path: Path, p256: KeyPair, shard_size: int | None
) -> None:
    folder, url = _served(https_trust)
    sig = tmp_path / "m.sig"
    signed = omsign.sign(url, key=p256.private, signature=sig, shard_size=shard_size)
    assert signed.signature == sig
    assert signed.root_digest == omsign.digest(folder, shard_size=shard_size)
    result = omsign.verify(url, key=p256.public, signature=sig)
    assert result.root_digest == signed.root_digest
    assert result.model == url
    assert "weights/model-1.safetensors" in result.verified
    shutil.copy(sig, folder / "model.sig")  # published beside the model: found by default
    published = omsign.verify(url, key=p256.public)
    assert published.signature == url + "model.sig"
    assert "model.sig" not in published.verified
    assert omsign.verify(url, key=p256.public, signature=sig).root_digest == signed.root_digest
    named = omsign.verify(url, key=p256.public, signature=url + "model.sig")  # a URL given
    assert named.signature == url + "model.sig"


def test_signing_a_served_model_needs_a_local_signature_path(
    https_trust: Nginx, p256: KeyPair
) -> None:
    _, url = _served(https_trust)
    with pytest.raises(UsageError, match=r"cannot be written to a web server.*signature="):
        omsign.sign(url, key=p256.private)
    with pytest.raises(UsageError, match="cannot be written to a web server"):
        omsign.sign(url, key=p256.private, signature=url + "other.sig")


def test_partial_verification_reads_only_the_chosen_files(
    https_trust: Nginx, tmp_path: Path, p256: KeyPair
) -> None:
    folder, url = _served(https_trust)
    sig = tmp_path / "m.sig"
    omsign.sign(url, key=p256.private, signature=sig)
    (folder / "tokenizer.json").write_bytes(b"changed")
    (folder / "weights" / "model-2.safetensors").unlink()
    (folder / "index.html").write_text("<a href='https://elsewhere/x'>x</a>")  # never read
    chosen = ["config.json", "weights/model-1*", "name with spaces & %.txt"]
    result = omsign.verify(url, key=p256.public, signature=sig, files=chosen)
    assert result.verified == (
        "config.json",
        "name with spaces & %.txt",
        "weights/model-1.safetensors",
    )
    with pytest.raises(IntegrityError, match=r"tokenizer\.json"):
        omsign.verify(url, key=p256.public, signature=sig, files=["tokenizer.json"])


@pytest.mark.parametrize("listing", ["", "/noetag"], ids=["etag", "last-modified"])
@pytest.mark.parametrize("when", ["before-reading", "after-reading"])
def test_a_file_replaced_during_the_run_fails_verification_naming_it(
    https_trust: Nginx, tmp_path: Path, p256: KeyPair, when: str, listing: str
) -> None:
    """The file is rewritten (same size) once the model is listed and pinned: before its
    bytes are read (the conditional GET answers 412) or after (the look-up after hashing
    sees another version); either way the run fails, never a digest of mixed bytes. Without
    ETags (``etag off``) the pin is the Last-Modified date."""
    folder, url = _served(https_trust, listing)
    sig = tmp_path / "m.sig"
    omsign.sign(url, key=p256.private, signature=sig)
    name = "weights/model-1.safetensors"
    before = sum(len(d) for n, d in _FILES.items() if n < name)  # read first, in name order
    read = before + len(_FILES[name])  # done once the file's one chunk is hashed
    replaced: list[int] = []

    def progress(done: int, total: int) -> None:
        del total
        due = done == 0 if when == "before-reading" else done >= read
        if due and not replaced:
            _rewrite(folder / name, os.urandom(300_001))
            replaced.append(done)

    with pytest.raises(IntegrityError, match=rf"{url}weights/model-1\.safetensors: file") as err:
        omsign.verify(url, key=p256.public, signature=sig, workers=1, progress=progress)
    assert replaced
    # Before: the conditional GET answers 412. After: the look-up finds another version.
    seen = "replaced or deleted" if when == "before-reading" else "replaced (now "
    assert seen in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_denied_and_added_files_fail_verification_naming_them(
    https_trust: Nginx, tmp_path: Path, p256: KeyPair
) -> None:
    folder, url = _served(https_trust)
    sig = tmp_path / "m.sig"
    omsign.sign(url, key=p256.private, signature=sig)
    (folder / "extra.bin").write_bytes(b"added on the server")
    with pytest.raises(IntegrityError, match=r"extra\.bin"):
        omsign.verify(url, key=p256.public, signature=sig)
    (folder / "extra.bin").unlink()
    (folder / "weights" / "model-2.safetensors").unlink()
    with pytest.raises(IntegrityError, match=r"missing.*weights/model-2\.safetensors"):
        omsign.verify(url, key=p256.public, signature=sig)
    (folder / "weights" / "model-2.safetensors").write_bytes(_FILES["weights/model-2.safetensors"])
    assert omsign.verify(url, key=p256.public, signature=sig).root_digest
    (folder / "w.denied").write_bytes(b"listed, but nginx denies it")
    with pytest.raises(IntegrityError, match=r"w\.denied: the server refused the file \(HTTP 403"):
        omsign.verify(url, key=p256.public, signature=sig)
    with pytest.raises(ModelError, match=r"w\.denied: the server refused"):
        omsign.digest(url)


@pytest.mark.parametrize(
    ("page", "refused"),
    [
        ('<a href="https://elsewhere.example/m/x.bin">x.bin</a>', "links outside the model"),
        ('<a href="../../secret.bin">secret.bin</a>', "links outside the model"),
        ('<a href="//127.0.0.1:1/x.bin">x.bin</a>', "links outside the model"),
        ('<a href="sub/deeper.bin">deeper</a>', "outside its own folder"),
        ('<a href="x.bin?download=1">x</a>', "query or fragment"),
        ('<a href="a%2Fb.bin">a/b</a>', "not a valid model file name"),
        ('<a href="%2e%2e/">up</a>', "not a valid model file name"),
        ('<a href="config.json">c</a><a href="confi%67.json">c</a>', "twice"),
    ],
)
def test_a_hostile_listing_fails_verification_naming_the_link(
    https_trust: Nginx, tmp_path: Path, p256: KeyPair, page: str, refused: str
) -> None:
    folder, url = _served(https_trust)
    sig = tmp_path / "m.sig"
    omsign.sign(url, key=p256.private, signature=sig)
    (folder / "index.html").write_text(f"<html><body>{page}</body></html>")
    with pytest.raises(IntegrityError, match=refused):
        omsign.verify(url, key=p256.public, signature=sig)


def test_a_folder_without_an_index_is_an_environment_error_saying_how_to_serve_one(
    https_trust: Nginx, tmp_path: Path, p256: KeyPair, cli: Any
) -> None:
    folder, url = _served(https_trust)
    sig = tmp_path / "m.sig"
    omsign.sign(url, key=p256.private, signature=sig)
    hidden = url.replace(https_trust.tls_url, https_trust.tls_url + "/noindex")
    with pytest.raises(StorageAccessError, match=r"no directory listing \(HTTP 403.*autoindex"):
        omsign.digest(hidden)
    got = cli("verify", hidden, "--key", p256.public, "--signature", sig)
    assert got.code == 2
    assert "no directory listing" in got.err
    assert len(got.err.strip().splitlines()) == 1
    with pytest.raises(ModelError, match="no such file or folder"):
        omsign.digest(https_trust.tls_url + "/nothing-here")
    (folder / "index.txt").write_text("not a listing")
    with pytest.raises(StorageAccessError, match=r"not a directory listing \(application/oc"):
        omsign.digest(url)


def test_plain_http_works_with_a_warning(
    nginx: Nginx, tmp_path: Path, p256: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    folder, url = _served(nginx, tls=False)
    with caplog.at_level(logging.WARNING, logger="omsign"):
        assert omsign.digest(url) == omsign.digest(folder)
    assert "plain HTTP" in caplog.text
    sig = tmp_path / "m.sig"
    omsign.sign(url, key=p256.private, signature=sig)
    assert omsign.verify(url, key=p256.public, signature=sig).root_digest


def test_an_untrusted_certificate_is_refused_with_a_clear_message(
    nginx: Nginx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = _served(nginx)
    other = write_certs(tmp_path / "other-ca.pem", [make_ca("some other CA").cert])
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    with pytest.raises(StorageAccessError, match=r"TLS certificate is not trusted.*SSL_CERT_FILE"):
        omsign.digest(url)


def test_the_cli_signs_digests_and_verifies_a_served_model(
    https_trust: Nginx, tmp_path: Path, p256: KeyPair, cli: Any
) -> None:
    folder, url = _served(https_trust)
    got = cli("digest", url, "--shard-size", "100000")
    assert got.code == 0, got.err
    assert got.out.strip() == f"sha256:{omsign.digest(folder, shard_size=100_000)}"
    refused = cli("sign", url, "--key", p256.private)
    assert refused.code == 2
    assert "--signature" in refused.err
    sig = tmp_path / "m.sig"
    signed = cli("sign", url, "--key", p256.private, "--signature", sig)
    assert signed.code == 0, signed.err
    ok = cli("verify", url, "--key", p256.public, "--signature", sig)
    assert ok.code == 0, ok.err
    _rewrite(folder / "tokenizer.json", b"changed")
    bad = cli("verify", url, "--key", p256.public, "--signature", sig)
    assert bad.code == 1
    assert "tokenizer.json" in bad.err


def test_every_read_is_one_ranged_request_pinned_to_the_listed_etag(
    https_trust: Nginx, tmp_path: Path
) -> None:
    """nginx's access log shows each GET of a file: a Range inside the file and the
    If-Match of the ETag listed, answered 206, every byte of the model fetched once."""
    folder, url = _served(https_trust)
    path = url.removeprefix(https_trust.tls_url)
    for shard_size in (None, 100_000):
        start = https_trust.access_log.stat().st_size
        assert omsign.digest(url, shard_size=shard_size) == omsign.digest(
            folder, shard_size=shard_size
        )
        with https_trust.access_log.open() as log:
            log.seek(start)
            lines = [line.split() for line in log if f" {path}" in line]
        gets = [x for x in lines if x[0] == "GET" and not x[1].endswith("/")]
        heads = {x[1] for x in lines if x[0] == "HEAD"}
        fetched: dict[str, int] = {}
        for _, uri, ranged, if_match, status, sent in gets:
            first, last = (int(n) for n in ranged.strip('"').removeprefix("bytes=").split("-"))
            assert uri in heads  # pinned (HEAD) before it is read
            local = os.stat(folder / unquote(uri).removeprefix(path))
            etag = f'"{int(local.st_mtime):x}-{local.st_size:x}"'  # nginx's strong ETag
            assert if_match.replace("\\x22", '"') == f'"{etag}"', uri  # nginx escapes quotes
            assert status == "206"
            assert int(sent) == last - first + 1
            fetched[uri] = fetched.get(uri, 0) + int(sent)
        sizes = {path + n: len(d) for n, d in _FILES.items() if d}
        assert {unquote(u): n for u, n in fetched.items()} == sizes  # each byte fetched once


def test_the_signature_store_beside_a_served_model_reads_claims_and_writes_nothing(
    https_trust: Nginx,
) -> None:
    from omsign.errors import MalformedSignatureError
    from omsign.sources import resolve_source
    from omsign.storage import resolve_store

    folder, url = _served(https_trust)
    store = resolve_store(resolve_source(url))
    assert store.location == url + "model.sig"
    assert store.locations() == []
    assert store.claims() == []
    (folder / "claims.jsonl").write_bytes(b'{"a": 1}\n\n{"b": 2}\n{"torn"')
    claims = store.claims()
    assert [c[0] for c in claims] == [f"{url}claims.jsonl:{n}" for n in (1, 3, 4)]
    assert claims[0][1] == b'{"a": 1}'
    assert isinstance(claims[2][1], MalformedSignatureError)
    with pytest.raises(UsageError, match="not appended on a web server"):
        store.append_claim({})
    with pytest.raises(UsageError, match="cannot be written to a web server"):
        store.write({})
    assert store.excluded() == ["claims.jsonl", "model.sig", "model.sig.d"]
    assert omsign.digest(url) == omsign.digest(folder, ignore_paths=[folder / "claims.jsonl"])


def test_worker_processes_read_the_served_files_themselves(https_trust: Nginx) -> None:
    """The reader and the pinned entries travel to a process pool, which reads the server."""
    from omsign.executors import make_executor

    folder, url = _served(https_trust)
    with make_executor("processes", 2) as pool:
        got = omsign.digest(url, shard_size=100_000, executor=pool)
    assert got == omsign.digest(folder, shard_size=100_000)


def test_a_threshold_policy_counts_the_companion_bundles_the_server_lists(
    https_trust: Nginx, tmp_path: Path, p256: KeyPair
) -> None:
    from helpers.pki import make_ec_key, write_private_key, write_public_key
    from omsign.errors import IdentityError
    from omsign.policy import KeyPolicy, Threshold
    from omsign.sources import resolve_source
    from omsign.storage import resolve_store

    folder, url = _served(https_trust)
    other_private, other_public = tmp_path / "other.pem", tmp_path / "other.pub.pem"
    key = make_ec_key("P-384")
    write_private_key(other_private, key)
    write_public_key(other_public, key)
    both = Threshold(2, [KeyPolicy.from_files([p256.public]), KeyPolicy.from_files([other_public])])
    (folder / "model.sig.d").mkdir()  # signed on the server's disk, then served
    second = omsign.sign(folder, key=other_private)
    resolve_store(resolve_source(folder)).add(second.bundle)
    omsign.sign(folder, key=p256.private)
    store = resolve_store(resolve_source(url))
    (added,) = (folder / "model.sig.d").iterdir()
    assert store.locations() == [url + "model.sig", url + "model.sig.d/" + added.name]
    result = omsign.verify(url, policy=both)
    assert len(result.signers) == 2
    added.unlink()
    with pytest.raises(IdentityError, match="1 of 2 required signers verified"):
        omsign.verify(url, policy=both)
