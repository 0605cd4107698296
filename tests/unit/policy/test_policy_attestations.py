"""Attestations a policy rule requires: each type under its own signers, with a max age."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import omsign
from helpers.fixtures import make_model, run_cli
from helpers.pki import make_ec_key, write_private_key, write_public_key
from omsign.errors import AttestationError, UsageError

if TYPE_CHECKING:
    from services.tsa import RunningTSA

EVAL = "https://example.com/evaluation/v1"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("attestation-keys")
    for name in ("trainer", "evaluator"):
        key = make_ec_key()
        write_private_key(d / f"{name}.pem", key)
        write_public_key(d / f"{name}.pub", key)
    return d


def write_policy(tmp_path: Path, keys: Path, attestations: str, head: str = "") -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        f'version = 1\n[signers.trainer]\nkey = "{keys}/trainer.pub"\n'
        f'[signers.evaluator]\nkey = "{keys}/evaluator.pub"\n{head}'
        f'[[rules]]\nmatch = "models/**"\nsigners = ["trainer"]\nattestations = [{attestations}]\n'
    )
    return path


def model_with(tmp_path: Path, keys: Path, *attesters: str, **kw: object) -> Path:
    model = make_model(tmp_path / "models" / "m")
    omsign.sign(model, key=keys / "trainer.pem")
    for who in attesters:
        omsign.attest(
            model, key=keys / f"{who}.pem", predicate_type=EVAL, predicate={"score": 1}, **kw
        )
    return model


EVALUATOR = f'{{ type = "{EVAL}", signers = ["evaluator"] }}'


def test_an_attestation_by_its_own_signer_is_accepted(tmp_path: Path, keys: Path) -> None:
    policy = omsign.load_policy(write_policy(tmp_path, keys, EVALUATOR))
    model = model_with(tmp_path, keys, "evaluator")
    result = omsign.verify(model, policy=policy)
    (found,) = [a for a in result.attestations if a.verified]
    assert found.predicate_type == EVAL


def test_an_attestation_by_another_trusted_signer_does_not_count(
    tmp_path: Path, keys: Path
) -> None:
    # The trainer may sign the model, but the evaluation must come from the evaluator.
    policy = omsign.load_policy(write_policy(tmp_path, keys, EVALUATOR))
    model = model_with(tmp_path, keys, "trainer")
    with pytest.raises(AttestationError, match="signed by one of evaluator"):
        omsign.verify(model, policy=policy)


def test_a_missing_attestation_fails_and_the_rule_signers_are_the_default(
    tmp_path: Path, keys: Path
) -> None:
    policy = omsign.load_policy(write_policy(tmp_path, keys, f'{{ type = "{EVAL}" }}'))
    with pytest.raises(AttestationError, match="none found"):
        omsign.verify(model_with(tmp_path, keys), policy=policy)
    assert omsign.verify(model_with(tmp_path, keys, "trainer"), policy=policy)


def test_max_age_needs_a_proven_time(tmp_path: Path, keys: Path, tsa: RunningTSA) -> None:
    head = f'[signers.stamped]\nkey = "{keys}/evaluator.pub"\ntsa = "{tsa.root_path}"\n'
    policy = omsign.load_policy(
        write_policy(
            tmp_path, keys, f'{{ type = "{EVAL}", signers = ["stamped"], max_age = "1d" }}', head
        )
    )
    with pytest.raises(AttestationError, match="max-age needs a proven time"):
        omsign.verify(model_with(tmp_path, keys, "evaluator"), policy=policy)
    stamped = model_with(tmp_path, keys, "evaluator", tsa_url=tsa.url)
    assert omsign.verify(stamped, policy=policy).attestations


def test_the_cli_enforces_and_warns(tmp_path: Path, keys: Path) -> None:
    policy = write_policy(tmp_path, keys, EVALUATOR)
    model = model_with(tmp_path, keys, "trainer")
    enforced = run_cli("verify", model, "--policy", policy)
    assert enforced.code == 1 and "required attestation" in enforced.err
    explained = run_cli("policy", "explain", model, "--policy", policy)
    assert f"requires the attestation {EVAL} signed by one of evaluator" in explained.out
    policy.write_text(
        policy.read_text().replace(
            'signers = ["trainer"]\n', 'signers = ["trainer"]\nmode = "warn"\n'
        )
    )
    warned = run_cli("verify", model, "--policy", policy)
    assert warned.code == 0 and "this would fail" in warned.err


@pytest.mark.parametrize(
    ("attestations", "message"),
    [
        ('{ type = "scna" }', "type must be one of"),
        (f'{{ type = "{EVAL}", signers = ["nobody"] }}', "unknown signer 'nobody'"),
        (f'{{ type = "{EVAL}", max_age = "soon" }}', "is not a duration"),
        (f'{{ type = "{EVAL}", maxage = "1d" }}', "unknown key 'maxage'"),
        ('"scan"', "attestations must be a list of tables"),
    ],
)
def test_bad_requirements_name_the_line(
    tmp_path: Path, keys: Path, attestations: str, message: str
) -> None:
    with pytest.raises(UsageError, match=rf"policy.toml:\d+: .*{message}"):
        omsign.load_policy(write_policy(tmp_path, keys, attestations))


def test_accept_checks_the_required_attestations_before_pinning(tmp_path: Path, keys: Path) -> None:
    path = write_policy(tmp_path, keys, EVALUATOR)
    path.write_text(path.read_text() + "pin = true\n")
    policy = omsign.load_policy(path)
    history = tmp_path / "history.json"
    with pytest.raises(AttestationError):
        omsign.accept_signers(model_with(tmp_path, keys, "trainer"), policy=policy, history=history)
    assert not history.exists()
    accepted = omsign.accept_signers(
        model_with(tmp_path, keys, "evaluator"), policy=policy, history=history
    )
    assert accepted.pinning is not None and accepted.pinning["status"] == "accepted"
