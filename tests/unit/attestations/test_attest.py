"""omsign.attest: the subject is the root digest sign computes, with one hash pass at most."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from omsign import intoto
from omsign.bundle import parse_bundle
from omsign.errors import UsageError

EVAL = "https://example.com/evaluation/v1"


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OMSIGN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("omsign._reuse.RACY_WINDOW_NS", 0)  # files written here count as settled
    return tmp_path / "cache"


def _statement(location: str) -> intoto.Statement:
    path, line = location.rsplit(":", 1)
    raw = Path(path).read_bytes().splitlines()[int(line) - 1]
    return intoto.parse(parse_bundle(raw).payload)


def test_one_subject_named_by_the_signed_root_digest(model: Path, p256: KeyPair) -> None:
    signed = omsign.sign(model, key=p256.private)
    made = omsign.attest(model, key=p256.private, predicate_type=EVAL, predicate={"a": 1})
    statement = _statement(made.location)
    assert statement.subjects == (intoto.Subject("model", {"sha256": signed.root_digest}),)
    assert statement.predicate_type == EVAL and statement.predicate == {"a": 1}


def test_the_signatures_hashing_settings_are_used(model: Path, p256: KeyPair) -> None:
    signed = omsign.sign(model, key=p256.private, hash_algorithm="blake3", shard_size=100_000)
    made = omsign.attest(model, key=p256.private, predicate_type=EVAL, predicate={})
    assert made.root_digest == signed.root_digest


def test_model_signing_form_is_followed(tmp_path: Path, p256: KeyPair) -> None:
    # "-" sorts below "/": the two forms order these files differently.
    model = make_model(tmp_path / "m", {"a-b/x": b"1", "a/x": b"2"})
    signed = omsign.sign(model, key=p256.private, compat="model-signing")
    assert signed.root_digest != omsign.digest(model)
    made = omsign.attest(model, key=p256.private, predicate_type=EVAL, predicate={})
    assert made.root_digest == signed.root_digest


def test_a_single_files_claims_are_beside_its_signature(tmp_path: Path, p256: KeyPair) -> None:
    single = tmp_path / "weights.bin"
    single.write_bytes(b"w" * 1000)
    signed = omsign.sign(single, key=p256.private)
    made = omsign.attest(single, key=p256.private, predicate_type=EVAL, predicate={})
    assert made.root_digest == signed.root_digest
    assert made.location == f"{tmp_path / 'weights.bin.claims.jsonl'}:1"
    assert _statement(made.location).subjects[0].name == "weights.bin"


def test_an_unsigned_model_is_attested_as_sign_would_digest_it(model: Path, p256: KeyPair) -> None:
    made = omsign.attest(model, key=p256.private, predicate_type="provenance", predicate={})
    assert made.root_digest == omsign.digest(model)
    assert made.predicate_type == "https://slsa.dev/provenance/v1"


def test_attesting_a_signed_model_hashes_it_once_at_most(model: Path, p256: KeyPair) -> None:
    files = ("README.md", "config.json", "model.safetensors", "tokenizer/tokenizer.json")
    omsign.sign(model, key=p256.private, reuse_digests=True)
    plain = omsign.attest(model, key=p256.private, predicate_type=EVAL, predicate={})
    assert plain.hashed == files  # one pass: each file read once
    cached = omsign.attest(
        model, key=p256.private, predicate_type=EVAL, predicate={}, reuse_digests=True
    )
    assert cached.hashed == ()  # unchanged since signing: nothing read again
    assert cached.root_digest == plain.root_digest
    (model / "config.json").write_text('{"hidden_size": 9}')
    changed = omsign.attest(
        model, key=p256.private, predicate_type=EVAL, predicate={}, reuse_digests=True
    )
    assert changed.hashed == ("config.json",)


def test_a_predicate_that_is_not_json_is_refused(model: Path, p256: KeyPair) -> None:
    with pytest.raises(UsageError, match="not JSON"):
        omsign.attest(model, key=p256.private, predicate_type=EVAL, predicate={"x": {1, 2}})
    with pytest.raises(UsageError, match="JSON object"):
        omsign.attest(model, key=p256.private, predicate_type=EVAL, predicate=[1])  # type: ignore[arg-type]
    assert not (model / "claims.jsonl").exists()


def test_signing_records_the_companion_files_as_ignored(model: Path, p256: KeyPair) -> None:
    signed = omsign.sign(model, key=p256.private)
    assert {"claims.jsonl", "model.sig", "model.sig.d"} <= set(
        signed.manifest.serialization.ignore_paths or ()
    )
    payload = json.loads(parse_bundle((model / "model.sig").read_bytes()).payload)
    recorded = payload["predicate"]["serialization"]["ignore_paths"]
    assert recorded == sorted(recorded) and "claims.jsonl" in recorded
