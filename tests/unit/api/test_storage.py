"""Signature stores: model.sig first, more bundles in the companion folder beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair
from helpers.pki import make_ec_key, write_private_key, write_public_key
from omsign.errors import IdentityError, SignatureNotFoundError
from omsign.policy import KeyPolicy, Threshold
from omsign.sources import resolve_source
from omsign.storage import resolve_store
from omsign.storage._file import FileStore


def test_the_file_store_is_model_sig(model: Path, tmp_path: Path) -> None:
    store = resolve_store(resolve_source(model))
    assert isinstance(store, FileStore)
    assert store.location == str(model / "model.sig")
    assert store.companion == model / "model.sig.d"
    single = tmp_path / "weights.bin"
    single.write_bytes(b"w")
    assert resolve_store(resolve_source(single)).location == str(tmp_path / "weights.bin.sig")
    chosen = resolve_store(resolve_source(model), tmp_path / "elsewhere.sig")
    assert chosen.location == str(tmp_path / "elsewhere.sig")


def test_missing_signature_is_a_failed_verification_saying_where(
    model: Path, p256: KeyPair
) -> None:
    with pytest.raises(SignatureNotFoundError) as caught:
        omsign.verify(model, key=p256.public)
    assert caught.value.exit_code == 1
    assert str(model / "model.sig") in str(caught.value)
    with pytest.raises(SignatureNotFoundError):
        resolve_store(resolve_source(model)).read_all()


def test_more_bundles_beside_model_sig(model: Path, p256: KeyPair, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    write_private_key(other, make_ec_key("P-384"))
    first = omsign.sign(model, key=p256.private)
    store = resolve_store(resolve_source(model))
    second = omsign.sign(model, key=other, signature=tmp_path / "second.sig")
    added = store.add(second.bundle)
    assert Path(added).parent == model / "model.sig.d"
    assert store.locations() == [str(model / "model.sig"), added]
    bundles = store.read_all()
    assert [b.method for b in bundles] == ["key", "key"]
    assert store.excluded() == ["claims.jsonl", "model.sig", "model.sig.d"]
    # The companion folder is never part of the model: signing and verifying leave it out.
    again = omsign.sign(model, key=p256.private)
    assert again.root_digest == first.root_digest
    result = omsign.verify(model, key=p256.public)
    assert not [n for n in result.verified if n.startswith("model.sig")]
    assert omsign.digest(model) == first.root_digest


def test_a_threshold_policy_counts_every_bundle_of_the_store(
    model: Path, p256: KeyPair, tmp_path: Path
) -> None:
    other_private, other_public = tmp_path / "other.pem", tmp_path / "other.pub.pem"
    key = make_ec_key("P-384")
    write_private_key(other_private, key)
    write_public_key(other_public, key)
    both = Threshold(2, [KeyPolicy.from_files([p256.public]), KeyPolicy.from_files([other_public])])
    # Co-signers sign the same statement: same files, same settings, same store layout.
    (model / "model.sig.d").mkdir()
    second = omsign.sign(model, key=other_private)
    resolve_store(resolve_source(model)).add(second.bundle)
    first = omsign.sign(model, key=p256.private)
    assert first.bundle["dsseEnvelope"]["payload"] == second.bundle["dsseEnvelope"]["payload"]
    result = omsign.verify(model, policy=both)
    assert len(result.signers) == 2
    assert result.signers[0].signer != result.signers[1].signer
    for bundle in (model / "model.sig.d").iterdir():
        bundle.unlink()
    with pytest.raises(IdentityError, match="1 of 2 required signers verified"):
        omsign.verify(model, policy=both)
    # One policy keeps today's behaviour: model.sig alone is read.
    assert len(omsign.verify(model, key=p256.public).signers) == 1
