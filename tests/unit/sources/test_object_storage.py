"""Models in S3 (``s3://BUCKET/PREFIX``) against a real S3 server: moto's, on 127.0.0.1.

Every test uploads a small model to a fresh bucket of the server that ``services.s3``
starts, and signs, verifies or digests it from there: the same root digest as the local
folder, signatures in the bucket or in a local file, partial verification, objects
changed, replaced while the run reads them, missing, and requests the server refuses.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from omsign.errors import IntegrityError, ModelError, SignatureNotFoundError, StorageAccessError
from omsign.options import HashOptions
from services.s3 import deny_all, s3_client, upload

Bucket = Callable[..., str]


def _model(root: Path) -> Path:
    return make_model(
        root,
        {
            "config.json": b'{"hidden_size": 8}\n',
            "weights/model-1.safetensors": os.urandom(700_001),
            "weights/model-2.safetensors": os.urandom(300_000),
            "tokenizer.json": b"{}",
            "empty.txt": b"",
        },
    )


def _put(url: str, name: str, data: bytes) -> None:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    s3_client().put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=data)


def _delete(url: str, name: str) -> None:
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    s3_client().delete_object(Bucket=bucket, Key=f"{prefix}/{name}")


@pytest.mark.parametrize("versioned", [False, True], ids=["plain", "versioned"])
def test_a_model_in_s3_has_the_digest_of_its_local_copy_in_every_mode(
    s3_bucket: Bucket, tmp_path: Path, versioned: bool
) -> None:
    local = _model(tmp_path / "m")
    url = upload(local, s3_bucket(versioned=versioned), "org/m")
    for hashing in (HashOptions(), HashOptions("blake3", 250_000), HashOptions("sha256", 64)):
        assert omsign.digest(url, hashing=hashing) == omsign.digest(local, hashing=hashing)
    single = upload(tmp_path / "m" / "weights", s3_bucket(), "w")
    one = local / "weights" / "model-1.safetensors"
    assert omsign.digest(single + "/model-1.safetensors") == omsign.digest(one)


def test_a_model_in_s3_signs_and_verifies_with_its_signature_in_the_bucket(
    s3_bucket: Bucket, tmp_path: Path, p256: KeyPair
) -> None:
    url = upload(_model(tmp_path / "m"), s3_bucket(versioned=True), "org/m")
    signed = omsign.sign(url, key=p256.private, shard_size=250_000)
    assert signed.signature == url + "/model.sig"
    result = omsign.verify(url, key=p256.public)
    assert result.root_digest == signed.root_digest
    assert result.model == url
    assert result.signature == url + "/model.sig"
    assert "model.sig" not in result.verified
    assert result.subject_name == "m"
    assert omsign.digest(url, shard_size=250_000) == signed.root_digest  # model.sig left out
    _put(url, "config.json", b'{"hidden_size": 9}\n')
    with pytest.raises(IntegrityError, match=r"config\.json"):
        omsign.verify(url, key=p256.public)


def test_a_signature_of_a_model_in_s3_can_be_a_local_file(
    s3_bucket: Bucket, tmp_path: Path, p256: KeyPair
) -> None:
    url = upload(_model(tmp_path / "m"), s3_bucket(), "m")
    sig = tmp_path / "m.sig"
    signed = omsign.sign(url, key=p256.private, signature=sig)
    assert signed.signature == sig
    assert sig.is_file()
    assert omsign.verify(url, key=p256.public, signature=sig).signature == sig
    with pytest.raises(SignatureNotFoundError, match=r"model\.sig"):
        omsign.verify(url, key=p256.public)  # nothing was written into the bucket


def test_partial_verification_reads_only_the_chosen_objects(
    s3_bucket: Bucket, tmp_path: Path, p256: KeyPair
) -> None:
    url = upload(_model(tmp_path / "m"), s3_bucket(), "m")
    omsign.sign(url, key=p256.private)
    _put(url, "tokenizer.json", b"changed")
    _delete(url, "weights/model-2.safetensors")
    result = omsign.verify(url, key=p256.public, files=["config.json", "weights/model-1*"])
    assert result.verified == ("config.json", "weights/model-1.safetensors")
    assert "tokenizer.json" in result.unchecked
    with pytest.raises(IntegrityError, match=r"tokenizer\.json"):
        omsign.verify(url, key=p256.public, files=["tokenizer.json"])
    allowed = omsign.verify(
        url, key=p256.public, allow_missing=True, ignore_paths=["tokenizer.json"]
    )
    assert allowed.absent == ("tokenizer.json", "weights/model-2.safetensors")


def test_a_missing_object_fails_verification_and_a_missing_model_is_an_error(
    s3_bucket: Bucket, tmp_path: Path, p256: KeyPair
) -> None:
    bucket = s3_bucket()
    url = upload(_model(tmp_path / "m"), bucket, "m")
    omsign.sign(url, key=p256.private)
    _delete(url, "weights/model-2.safetensors")
    with pytest.raises(IntegrityError, match=r"missing.*weights/model-2\.safetensors"):
        omsign.verify(url, key=p256.public)
    with pytest.raises(ModelError, match=f"s3://{bucket}/nothing-here: no such object"):
        omsign.digest(f"s3://{bucket}/nothing-here")


@pytest.mark.parametrize("versioned", [False, True], ids=["plain", "versioned"])
@pytest.mark.parametrize("when", ["before-reading", "after-reading"])
@pytest.mark.parametrize("change", ["replaced", "deleted"])
def test_an_object_replaced_or_deleted_during_the_run_fails_verification_naming_it(
    s3_bucket: Bucket, tmp_path: Path, p256: KeyPair, versioned: bool, when: str, change: str
) -> None:
    """The object is overwritten or deleted once the model is listed: before any byte is
    read (the conditional read refuses it) or once every byte is hashed (the look-up after
    the run, a listing and then the object's own look-up, sees another version or none);
    either way the run fails, never a digest of mixed bytes."""
    url = upload(_model(tmp_path / "m"), s3_bucket(versioned=versioned), "m")
    omsign.sign(url, key=p256.private)
    name = "weights/model-1.safetensors"
    replaced: list[int] = []

    def progress(done: int, total: int) -> None:
        due = done == 0 if when == "before-reading" else done == total
        if due and not replaced:
            if change == "replaced":
                _put(url, name, os.urandom(700_001))
            else:
                _delete(url, name)
            replaced.append(done)

    said = "replaced" if change == "replaced" else "(replaced or )?deleted"
    with pytest.raises(IntegrityError, match=rf"{url}/{name}: object {said}") as caught:
        omsign.verify(url, key=p256.public, workers=1, progress=progress)
    assert replaced
    assert "\n" not in str(caught.value)


def test_requests_the_store_refuses_are_environment_errors(
    s3_bucket: Bucket, s3_env: str, tmp_path: Path, p256: KeyPair, monkeypatch: Any
) -> None:
    url = upload(_model(tmp_path / "m"), s3_bucket(), "m")
    omsign.sign(url, key=p256.private)
    undo = deny_all(s3_env)
    try:
        with pytest.raises(StorageAccessError, match=f"{url}: the store refused the request"):
            omsign.verify(url, key=p256.public)
    finally:
        undo()
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageAccessError, match=url):
        omsign.digest(url)


def test_the_cli_signs_and_verifies_a_model_in_s3(
    s3_bucket: Bucket, s3_env: str, tmp_path: Path, p256: KeyPair, cli: Any
) -> None:
    local = _model(tmp_path / "m")
    url = upload(local, s3_bucket(), "org/m")
    got = cli("digest", url, "--shard-size", "100000")
    assert got.code == 0, got.err
    assert got.out.strip() == f"sha256:{omsign.digest(local, shard_size=100_000)}"
    signed = cli("sign", url, "--key", p256.private, "--shard-size", "100000")
    assert signed.code == 0, signed.err
    assert f"{url}/model.sig" in signed.err
    ok = cli("verify", url, "--key", p256.public, "--json")
    assert ok.code == 0, ok.err
    _put(url, "tokenizer.json", b"changed")
    bad = cli("verify", url, "--key", p256.public)
    assert bad.code == 1
    assert "tokenizer.json" in bad.err
    missing = cli("verify", url + "-nothing", "--key", p256.public)
    assert missing.code == 2
    assert "no such object or prefix" in missing.err
    undo = deny_all(s3_env)
    try:
        denied = cli("verify", url, "--key", p256.public)
    finally:
        undo()
    assert denied.code == 2
    assert "refused the request" in denied.err
    assert len(denied.err.strip().splitlines()) <= 2


def test_a_large_object_in_files_mode_is_said_to_be_read_by_one_worker(
    s3_bucket: Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    from omsign.sources import _fsspec

    monkeypatch.setattr(_fsspec, "LARGE_OBJECT", 500_000)  # the real bound is 4 GiB
    url = upload(_model(tmp_path / "m"), s3_bucket(), "m")
    omsign.digest(url)
    assert "sign with shards" in caplog.text
    assert "model-1.safetensors" in caplog.text
    caplog.clear()
    omsign.digest(url, shard_size=100_000)
    assert "sign with shards" not in caplog.text


def test_each_unit_is_one_pinned_request_streamed_in_chunks_with_no_byte_fetched_twice(
    s3_bucket: Bucket, tmp_path: Path, monkeypatch: Any
) -> None:
    """Every request the reader sends to the server is counted: a unit (or the run of
    units of one object a batch hashes) is ONE ranged GET pinned to the listed ETag, its
    body taken in chunks of bounded size; every byte of the model is requested once; the
    objects are looked up again once per run, however many units they have: one listing
    of their prefix, no request per object."""
    import s3fs

    from omsign.hashing import hash_entries, plan_units
    from omsign.sources import _fsspec, resolve_source
    from omsign.sources._stores import S3Store, _S3Body

    monkeypatch.setattr(S3Store, "chunk", 100_000)
    monkeypatch.setattr(_fsspec, "_BLOCK", 100_000)  # a request per block would show
    local = make_model(tmp_path / "m", {"a.bin": os.urandom(3_000_000), "b.bin": b"b" * 70})
    url = upload(local, s3_bucket(), "m")
    gets: list[dict[str, Any]] = []
    heads: list[str] = []
    lists: list[tuple[str, str]] = []
    taken: list[int] = []
    call_s3, take = s3fs.S3FileSystem._call_s3, _S3Body.take

    async def counting_call(fs: Any, method: str, *args: Any, **kw: Any) -> Any:
        if method == "get_object":
            gets.append(kw)
        if method == "head_object":
            heads.append(kw["Key"].rsplit("/", 1)[-1])
        if method.startswith("list_object"):
            lists.append((method, kw["Prefix"]))
        return await call_s3(fs, method, *args, **kw)

    async def counting_take(body: _S3Body, size: int) -> bytes:
        data = await take(body, size)
        taken.append(len(data))
        return data

    monkeypatch.setattr(s3fs.S3FileSystem, "_call_s3", counting_call)
    monkeypatch.setattr(_S3Body, "take", counting_take)
    source = resolve_source(url)
    entries = source.entries()
    for shard_size in (None, 1_200_000):
        gets.clear()
        heads.clear()
        lists.clear()
        taken.clear()
        got = hash_entries(entries, "sha256", shard_size, workers=2, reader=source.reader())
        assert got == hash_entries(
            resolve_source(str(local)).entries(), "sha256", shard_size, workers=1
        )
        units = plan_units(entries, shard_size)
        starts = {(u.entry.key.rsplit("/", 1)[-1], u.start) for u in units}
        ends = {(u.entry.key.rsplit("/", 1)[-1], u.end) for u in units}
        etags = {e.key.rsplit("/", 1)[-1]: e.pinned.etag for e in entries}
        spans = []
        for kw in gets:
            name = kw["Key"].rsplit("/", 1)[-1]
            first, last = kw["Range"].removeprefix("bytes=").split("-")
            spans.append((name, int(first), int(last) + 1))
            assert kw["IfMatch"] == etags[name]  # pinned to the version listed
        for name, start, stop in spans:  # a request is whole units, never a block of one
            assert (name, start) in starts and (name, stop) in ends
        assert len(spans) <= len(units)
        if shard_size is None:
            assert sorted(n for n, *_ in spans) == ["a.bin", "b.bin"]  # one request each
        covered = {n: sum(stop - start for m, start, stop in spans if m == n) for n, *_ in spans}
        assert covered == {"a.bin": 3_000_000, "b.bin": 70}  # each byte fetched once
        assert len(taken) > len(spans)  # bodies are taken in chunks
        assert max(taken) <= 1 << 20  # no more than the engine's read at a time
        assert lists == [("list_objects_v2", "m/")]  # the look-up after the run: a listing
        assert not heads  # (of versions only where objects were pinned to one)


def test_the_signature_store_in_a_bucket_keeps_more_bundles_and_reads_claims(
    s3_bucket: Bucket, tmp_path: Path, p256: KeyPair
) -> None:
    """Further signatures go under model.sig.d/, claims.jsonl beside model.sig is read
    line by line (a torn last line reported by itself), appending is refused, and all of
    them stay out of the model's files."""
    from omsign.errors import MalformedSignatureError, UsageError
    from omsign.sources import resolve_source
    from omsign.storage import resolve_store

    url = upload(_model(tmp_path / "m"), s3_bucket(), "m")
    first = omsign.sign(url, key=p256.private)
    second = omsign.sign(url, key=p256.private, add=True, hashing=HashOptions("blake3"))
    assert str(second.signature).startswith(f"{url}/model.sig.d/")
    store = resolve_store(resolve_source(url))
    assert store.locations() == [str(first.signature), str(second.signature)]
    assert len(store.read_all()) == 2
    assert store.read(str(second.signature)).payload != store.read().payload
    _put(url, "claims.jsonl", b'{"a": 1}\n\n{"b": 2}\n{"torn"')
    claims = store.claims()
    assert [c[0] for c in claims] == [f"{url}/claims.jsonl:{n}" for n in (1, 3, 4)]
    assert claims[0][1] == b'{"a": 1}'
    assert isinstance(claims[2][1], MalformedSignatureError)
    with pytest.raises(UsageError, match="no atomic append"):
        store.append_claim({})
    assert store.excluded() == ["claims.jsonl", "model.sig", "model.sig.d"]
    result = omsign.verify(url, key=p256.public)  # the companions are not unsigned files
    assert "claims.jsonl" not in result.verified


def test_a_signature_url_elsewhere_in_the_store_and_one_in_another_store(
    s3_bucket: Bucket, tmp_path: Path, p256: KeyPair
) -> None:
    bucket = s3_bucket()
    url = upload(_model(tmp_path / "m"), bucket, "m")
    elsewhere = f"s3://{bucket}/signatures/m.sig"
    signed = omsign.sign(url, key=p256.private, signature=elsewhere)
    assert signed.signature == elsewhere
    assert omsign.verify(url, key=p256.public, signature=elsewhere).signature == elsewhere
    with pytest.raises(SignatureNotFoundError, match=r"m/model\.sig"):
        omsign.verify(url, key=p256.public)
    from omsign.errors import UsageError

    with pytest.raises(UsageError, match="in the model's store"):
        omsign.verify(url, key=p256.public, signature="gs://other/m.sig")


def test_a_single_object_signs_with_its_signature_beside_it(
    s3_bucket: Bucket, tmp_path: Path, p256: KeyPair
) -> None:
    local = make_model(tmp_path / "w", {"model.gguf": os.urandom(200_000)})
    url = upload(local, s3_bucket(), "w") + "/model.gguf"
    signed = omsign.sign(url, key=p256.private)
    assert signed.signature == url + ".sig"
    assert signed.root_digest == omsign.digest(local / "model.gguf")
    result = omsign.verify(url, key=p256.public)
    assert result.verified == ("model.gguf",)
    _put(url.rsplit("/", 1)[0], "model.gguf", os.urandom(200_000))
    with pytest.raises(IntegrityError, match=r"model\.gguf"):
        omsign.verify(url, key=p256.public)
