"""Required attestations: a model verifies only with a trusted, bound, fresh, passing one."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import KeyPair, make_model
from helpers.pickles import clean_pickle, hostile_pickle, need_scanner, safetensors_model
from helpers.pki import make_ec_key, write_private_key
from omsign._required import check_required
from omsign.errors import AttestationError, UnsafeFormatError, UsageError
from omsign.options import AttestationRequirement
from omsign.scanners import scan_model, scanner_predicate
from services.tsa import RunningTSA

EVAL = "https://example.com/evaluation/v1"
PAST = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def signed(tmp_path: Path, p256: KeyPair) -> Path:
    """A signed model: safetensors weights, a config and a harmless pickle."""
    model = safetensors_model(tmp_path / "m")
    (model / "state.pkl").write_bytes(clean_pickle())
    omsign.sign(model, key=p256.private)
    return model


def _scan(model: Path, key: Path, **kw: object) -> None:
    need_scanner("picklescan")
    omsign.attest(
        model, key=key, predicate_type="scan", predicate=scanner_predicate("picklescan", **kw)
    )


def test_a_passing_scan_satisfies_the_requirement(signed: Path, p256: KeyPair) -> None:
    _scan(signed, p256.private)
    result = omsign.verify(signed, key=p256.public, require_attestations=["scan"])
    (found,) = result.attestations
    assert found.verified and found.subject_digest == result.root_digest
    assert result.to_json()["attestations"][0]["type"] == "scan"


def test_a_failed_verdict_fails_the_requirement(signed: Path, p256: KeyPair) -> None:
    (signed / "state.pkl").write_bytes(hostile_pickle())
    omsign.sign(signed, key=p256.private)
    _scan(signed, p256.private)
    with pytest.raises(AttestationError) as err:
        omsign.verify(signed, key=p256.public, require_attestations=["scan"])
    message = str(err.value)
    assert "required attestation scan" in message
    assert "picklescan verdict is FAILED (state.pkl: posix.system" in message
    assert "claims.jsonl:1" in message
    assert err.value.exit_code == 1 and len(err.value.attestations) == 1


def test_an_expired_verdict_fails(signed: Path, p256: KeyPair) -> None:
    _scan(signed, p256.private, now=PAST, valid_for=dt.timedelta(days=1))
    with pytest.raises(AttestationError, match="expired at 2020-01-02"):
        omsign.verify(signed, key=p256.public, require_attestations=["scan"])


def test_an_attestation_of_another_model_does_not_count(
    signed: Path, p256: KeyPair, tmp_path: Path
) -> None:
    other = make_model(tmp_path / "other", {"state.pkl": clean_pickle()})
    omsign.sign(other, key=p256.private)
    _scan(other, p256.private)
    shutil.copy(other / "claims.jsonl", signed / "claims.jsonl")  # reused for this model
    with pytest.raises(AttestationError, match=r"claims.jsonl:1: it is about sha256:[0-9a-f]+"):
        omsign.verify(signed, key=p256.public, require_attestations=["scan"])


def test_an_untrusted_signer_does_not_count(signed: Path, p256: KeyPair, tmp_path: Path) -> None:
    stranger = write_private_key(tmp_path / "stranger.pem", make_ec_key("P-256"))
    _scan(signed, stranger)
    with pytest.raises(AttestationError, match=r"required attestation scan .*: none holds"):
        omsign.verify(signed, key=p256.public, require_attestations=["scan"])


def test_an_attestation_of_another_type_does_not_count(signed: Path, p256: KeyPair) -> None:
    omsign.attest(signed, key=p256.private, predicate_type=EVAL, predicate={"accuracy": 0.9})
    with pytest.raises(AttestationError) as err:
        omsign.verify(signed, key=p256.public, require_attestations=["provenance"])
    assert "required attestation provenance (https://slsa.dev/provenance/v1): none found" in str(
        err.value
    )
    assert f"found only {signed / 'claims.jsonl'}:1 ({EVAL})" in str(err.value)
    # the same attestation meets a requirement of its own type, by URI
    assert omsign.verify(signed, key=p256.public, require_attestations=[EVAL]).attestations


def test_no_attestation_at_all(signed: Path, p256: KeyPair) -> None:
    with pytest.raises(AttestationError, match=r"required attestation scan .*: none found$"):
        omsign.verify(signed, key=p256.public, require_attestations=["scan"])


def test_an_unknown_type_name_is_a_usage_error(signed: Path, p256: KeyPair) -> None:
    with pytest.raises(UsageError, match="unknown attestation type 'scna'"):
        omsign.verify(signed, key=p256.public, require_attestations=["scna"])


def test_max_age_needs_a_proven_time(signed: Path, p256: KeyPair) -> None:
    omsign.attest(signed, key=p256.private, predicate_type=EVAL, predicate={})
    with pytest.raises(AttestationError, match="not proven by a trusted timestamp"):
        omsign.verify(signed, key=p256.public, require_attestations=[f"{EVAL}:max-age=30d"])


def test_max_age_by_a_timestamp(signed: Path, p256: KeyPair, tsa: RunningTSA) -> None:
    omsign.attest(signed, key=p256.private, tsa_url=tsa.url, predicate_type=EVAL, predicate={})
    trust = omsign.make_policy(key=p256.public, tsa_certs=[tsa.root_path])
    result = omsign.verify(signed, policy=trust, require_attestations=[f"{EVAL}:max-age=1h"])
    assert result.attestations[0].proven_time is not None
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)
    need = AttestationRequirement(EVAL, dt.timedelta(days=1))
    with pytest.raises(AttestationError, match="older than max-age 1d"):
        check_required(result, trust, [need], now=later)


def test_loading_a_pickle_needs_a_passing_scan(signed: Path, p256: KeyPair) -> None:
    unscanned = omsign.open_verified(signed, key=p256.public, require_scan=True)
    with pytest.raises(UnsafeFormatError, match="no fresh passing scan attestation"):
        unscanned.read_bytes("state.pkl")
    _scan(signed, p256.private)
    scanned = omsign.open_verified(signed, key=p256.public, require_scan=True)
    assert scanned.read_bytes("state.pkl") == clean_pickle()
    lazy = omsign.open_verified(signed, key=p256.public, require_scan=True, verify_content=False)
    assert lazy.read_bytes("state.pkl") == clean_pickle()


def test_loading_refuses_a_pickle_whose_scan_failed(signed: Path, p256: KeyPair) -> None:
    (signed / "state.pkl").write_bytes(hostile_pickle())
    omsign.sign(signed, key=p256.private)
    _scan(signed, p256.private)
    verified = omsign.open_verified(signed, key=p256.public, require_scan=True)
    with pytest.raises(UnsafeFormatError, match=r"state\.pkl: refused"):
        verified.read_bytes("state.pkl")


def test_the_scan_predicate_is_built_from_the_attested_bytes(signed: Path, p256: KeyPair) -> None:
    made = None
    need_scanner("picklescan")
    made = omsign.attest(
        signed, key=p256.private, predicate_type="scan", predicate=scanner_predicate("picklescan")
    )
    result = omsign.verify(signed, key=p256.public, require_attestations=["scan"])
    (found,) = result.attestations
    assert found.predicate is not None
    ext = found.predicate["https://omsign.dev/scan/v1"]
    assert ext["rootDigest"]["sha256"] == made.root_digest == result.root_digest
    assert scan_model(signed, "picklescan").root_digest == made.root_digest


def test_a_shards_signature_is_scanned_with_its_own_settings(tmp_path: Path, p256: KeyPair) -> None:
    model = make_model(tmp_path / "m", {"state.pkl": hostile_pickle(), "config.json": b"{}"})
    omsign.sign(model, key=p256.private, shard_size=64)
    _scan(model, p256.private)
    with pytest.raises(AttestationError, match=r"FAILED \(state\.pkl: posix\.system"):
        omsign.verify(model, key=p256.public, require_attestations=["scan"])


def _policy(tmp_path: Path, keys: KeyPair, attestations: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        f'version = 1\n[signers.trainer]\nkey = "{keys.public}"\n'
        f'[[rules]]\nmatch = "**"\nsigners = ["trainer"]\nattestations = [{attestations}]\n'
    )
    return path


@pytest.mark.parametrize("verify_content", [True, False])
def test_a_policy_asking_for_a_scan_serves_pickles_it_covers(
    signed: Path, p256: KeyPair, tmp_path: Path, verify_content: bool
) -> None:
    scan = omsign.load_policy(_policy(tmp_path, p256, '{ type = "scan" }'))
    with pytest.raises(AttestationError, match="required attestation scan"):
        omsign.open_verified(signed, policy=scan, verify_content=verify_content)
    _scan(signed, p256.private)
    verified = omsign.open_verified(signed, policy=scan, verify_content=verify_content)
    assert verified.scan_required
    assert verified.read_bytes("state.pkl") == clean_pickle()  # no allow_pickle needed
    # a policy asking for another attestation does not clear pickles
    other = omsign.load_policy(_policy(tmp_path, p256, f'{{ type = "{EVAL}" }}'))
    omsign.attest(signed, key=p256.private, predicate_type=EVAL, predicate={})
    plain = omsign.open_verified(signed, policy=other, verify_content=verify_content)
    assert not plain.scan_required
    with pytest.raises(UnsafeFormatError, match=r"state\.pkl: refused"):
        plain.read_bytes("state.pkl")


def test_claims_that_cannot_be_read(
    signed: Path, p256: KeyPair, caplog: pytest.LogCaptureFixture
) -> None:
    (signed / "claims.jsonl").mkdir()  # not a file: nothing can be read from it
    result = omsign.verify(signed, key=p256.public, read_attestations=True)
    assert not result.attestations_checked and "attestations not read" in caplog.text
    with pytest.raises(AttestationError, match="required attestations scan: the claims cannot"):
        omsign.verify(signed, key=p256.public, require_attestations=["scan"])
