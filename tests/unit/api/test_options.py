"""Options as values: ``hashing=``, ``scope=``, ``runtime=`` and their keyword forms."""

from __future__ import annotations

from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair
from omsign.errors import UsageError
from omsign.options import HashOptions, Runtime, VerifyScope
from omsign.policy import SigstorePolicy


def test_hash_options_value_equals_keywords(model: Path, p256: KeyPair) -> None:
    by_value = omsign.digest(model, hashing=HashOptions("blake2b", 100_000))
    by_keywords = omsign.digest(model, hash_algorithm="blake2b", shard_size=100_000)
    assert by_value == by_keywords != omsign.digest(model)
    signed = omsign.sign(
        model, key=p256.private, hashing=HashOptions("blake2b", 100_000), runtime=Runtime(1)
    )
    assert signed.root_digest == by_value


def test_one_setting_given_both_ways_is_a_usage_error(model: Path, p256: KeyPair) -> None:
    with pytest.raises(UsageError, match="given twice") as caught:
        omsign.digest(model, hashing=HashOptions(), hash_algorithm="blake3")
    assert "hashing=" in str(caught.value) and "hash_algorithm=" in str(caught.value)
    with pytest.raises(UsageError, match="given twice"):
        omsign.sign(model, key=p256.private, runtime=Runtime(), workers=2)
    omsign.sign(model, key=p256.private)
    with pytest.raises(UsageError, match="given twice"):
        omsign.verify(model, key=p256.public, scope=VerifyScope(), allow_missing=True)
    policy = omsign.make_policy(key=p256.public)
    with pytest.raises(UsageError, match="policy replaces the trust options"):
        omsign.verify(model, policy=policy, key=p256.public)


def test_scope_value_verifies_like_keywords(model: Path, p256: KeyPair) -> None:
    omsign.sign(model, key=p256.private)
    (model / "README.md").unlink()
    by_value = omsign.verify(model, key=p256.public, scope=VerifyScope(allow_missing=True))
    by_keywords = omsign.verify(model, key=p256.public, allow_missing=True)
    assert by_value.absent == by_keywords.absent == ("README.md",)


def test_unknown_keyword_is_a_type_error(model: Path, p256: KeyPair) -> None:
    with pytest.raises(TypeError, match="'hash_algoritm'"):
        omsign.digest(model, hash_algoritm="sha256")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="'keys'"):
        omsign.verify(model, keys=p256.public)  # type: ignore[call-arg]


def test_verify_takes_the_github_claims_the_cli_offers() -> None:
    policy = omsign.make_policy(
        identity="https://github.com/o/r/.github/workflows/w.yml@refs/heads/main",
        issuer="https://token.actions.githubusercontent.com",
        github_repository="o/r",
        github_ref="refs/heads/main",
        github_workflow_name="w",
    )
    assert isinstance(policy, SigstorePolicy)
    claims = policy.identity
    assert (claims.github_repository, claims.github_ref, claims.github_workflow_name) == (
        "o/r",
        "refs/heads/main",
        "w",
    )


def test_result_lists_its_signer(model: Path, p256: KeyPair) -> None:
    omsign.sign(model, key=p256.private)
    result = omsign.verify(model, key=p256.public)
    [signer] = result.signers
    assert (signer.method, signer.signer, signer.signature) == (
        "key",
        result.signer,
        str(result.signature),
    )
    assert result.to_json()["signers"] == [signer.to_json()]


def test_open_verified_without_content_refuses_content_options(model: Path, p256: KeyPair) -> None:
    omsign.sign(model, key=p256.private)
    lazy = omsign.open_verified(model, key=p256.public, verify_content=False)
    assert lazy.read_bytes("README.md") == (model / "README.md").read_bytes()
    with pytest.raises(UsageError, match="files need verify_content=True"):
        omsign.open_verified(model, key=p256.public, verify_content=False, files=["README.md"])
    with pytest.raises(UsageError, match="scope need verify_content=True"):
        omsign.open_verified(
            model, key=p256.public, verify_content=False, scope=VerifyScope(allow_missing=True)
        )
