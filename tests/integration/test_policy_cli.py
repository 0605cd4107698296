"""verify --policy, policy check and policy explain: trust policy files on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.fixtures import CliResult, make_model, run_cli
from helpers.pki import make_ec_key, write_private_key, write_public_key
from helpers.reports import check_report


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("policy-keys")
    for name in ("trainer", "registry", "ci", "stranger"):
        key = make_ec_key("P-256")
        write_private_key(d / f"{name}.pem", key)
        write_public_key(d / f"{name}.pub", key)
    return d


def write_policy(tmp_path: Path, keydir: Path, rules: str, head: str = "") -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        f"version = 1\n{head}\n"
        f'[signers.trainer]\nkey = "{keydir}/trainer.pub"\n'
        f'[signers.registry]\nkey = "{keydir}/registry.pub"\n'
        f'[signers.ci]\nkey = "{keydir}/ci.pub"\n' + rules
    )
    return path


TWO_OF_THREE = """
[[rules]]
name = "production"
match = "models/**"
mode = "{mode}"
signers = ["trainer", "registry", "ci"]
threshold = 2
"""


def signed_by(tmp_path: Path, keydir: Path, *names: str) -> Path:
    """A model under tmp_path/models signed by each key: model.sig, then sign --add."""
    model = make_model(tmp_path / "models" / "bert")
    for name in names:
        assert run_cli("sign", model, "--add", "--key", keydir / f"{name}.pem").code == 0
    return model


def verify(model: Path, policy: Path, *more: str) -> CliResult:
    return run_cli("verify", model, "--policy", policy, *more)


def test_enforce_one_of_three_signers_is_enough_at_threshold_one(
    tmp_path: Path, keydir: Path
) -> None:
    policy = write_policy(tmp_path, keydir, TWO_OF_THREE.format(mode="enforce").replace("2", "1"))
    model = signed_by(tmp_path, keydir, "registry")
    result = verify(model, policy)
    assert result.code == 0, result.err
    assert "verified:" in result.out


def test_enforce_two_of_three_met(tmp_path: Path, keydir: Path) -> None:
    policy = write_policy(tmp_path, keydir, TWO_OF_THREE.format(mode="enforce"))
    model = signed_by(tmp_path, keydir, "trainer", "ci")
    result = verify(model, policy, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    check_report(report)
    assert report["policy"]["rule"] == 1 and report["policy"]["enforced"] is True
    assert len(report["signers"]) == 2


def test_enforce_two_of_three_not_met_names_who_failed(tmp_path: Path, keydir: Path) -> None:
    policy = write_policy(tmp_path, keydir, TWO_OF_THREE.format(mode="enforce"))
    model = signed_by(tmp_path, keydir, "trainer", "stranger")
    result = verify(model, policy)
    assert result.code == 1
    assert "1 of 2 required signers verified" in result.err
    assert "registry: not verified" in result.err and "ci: not verified" in result.err


def test_warn_mode_reports_what_would_fail_and_exits_0(tmp_path: Path, keydir: Path) -> None:
    policy = write_policy(tmp_path, keydir, TWO_OF_THREE.format(mode="warn"))
    model = signed_by(tmp_path, keydir, "stranger")
    result = verify(model, policy, "--json")
    assert result.code == 0
    report = json.loads(result.out)
    check_report(report)
    assert report["verified"] is False
    assert report["policy"]["mode"] == "warn" and report["policy"]["enforced"] is False
    assert "warn mode; this would fail" in result.err


def test_off_mode_skips_verification(tmp_path: Path, keydir: Path) -> None:
    policy = write_policy(tmp_path, keydir, '\n[[rules]]\nmatch = "models/**"\nmode = "off"\n')
    model = make_model(tmp_path / "models" / "unsigned")
    result = verify(model, policy)
    assert result.code == 0
    assert "not verified" in result.err


def test_a_model_no_rule_matches_is_denied(tmp_path: Path, keydir: Path) -> None:
    policy = write_policy(tmp_path, keydir, TWO_OF_THREE.format(mode="enforce"))
    model = make_model(tmp_path / "elsewhere")
    assert run_cli("sign", model, "--key", keydir / "trainer.pem").code == 0
    result = verify(model, policy)
    assert result.code == 1
    assert "no rule of the trust policy matches; denied" in result.err


def test_policy_from_the_environment(
    tmp_path: Path, keydir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = write_policy(tmp_path, keydir, TWO_OF_THREE.format(mode="enforce"))
    model = signed_by(tmp_path, keydir, "trainer")
    monkeypatch.setenv("OMSIGN_POLICY", str(policy))
    result = run_cli("verify", model)
    assert result.code == 1 and "1 of 2 required signers verified" in result.err
    # trust flags given on the command line take the place of the environment's policy
    assert run_cli("verify", model, "--key", keydir / "trainer.pub").code == 0


def test_policy_and_trust_flags_together_is_a_usage_error(tmp_path: Path, keydir: Path) -> None:
    policy = write_policy(tmp_path, keydir, "")
    result = run_cli("verify", tmp_path, "--policy", policy, "--key", keydir / "ci.pub")
    assert result.code == 2


def test_policy_check_summarises(tmp_path: Path, keydir: Path) -> None:
    policy = write_policy(tmp_path, keydir, TWO_OF_THREE.format(mode="warn"))
    result = run_cli("policy", "check", policy)
    assert result.code == 0, result.err
    assert "3 signers, 1 rules, default deny" in result.out
    assert "rule 1 (production): warn, 2 of [trainer, registry, ci]" in result.out


def test_policy_check_rejects_an_unknown_key_with_its_line(tmp_path: Path, keydir: Path) -> None:
    policy = write_policy(tmp_path, keydir, '\n[[rules]]\nmatch = "x"\nthreshhold = 2\n')
    result = run_cli("policy", "check", policy)
    assert result.code == 2
    assert f"{policy}:12: unknown key 'threshhold' in rule 1" in result.err


def test_policy_explain_says_which_rule_and_what_it_requires(tmp_path: Path, keydir: Path) -> None:
    policy = write_policy(tmp_path, keydir, TWO_OF_THREE.format(mode="enforce"))
    (tmp_path / "models" / "bert").mkdir(parents=True)
    result = run_cli("policy", "explain", tmp_path / "models" / "bert", "--policy", policy)
    assert result.code == 0, result.err
    assert "rule 1 (production) (line " in result.out and "mode enforce" in result.out
    assert "requires 2 of 3 signers:" in result.out
    assert "trainer: key" in result.out
    other = run_cli("policy", "explain", "hf://acme/bert", "--policy", policy)
    assert "no rule matches; default: deny" in other.out


def test_sign_add_keeps_the_first_signature(tmp_path: Path, keydir: Path) -> None:
    model = signed_by(tmp_path, keydir, "trainer", "registry")
    added = list((model / "model.sig.d").glob("*.sig"))
    assert len(added) == 1
    # model.sig is still the first signer's, and verifies alone with its key
    assert run_cli("verify", model, "--key", keydir / "trainer.pub").code == 0
    assert run_cli("verify", model, "--key", keydir / "registry.pub").code == 1


def test_library_verify_takes_a_policy_file_or_a_verifier(tmp_path: Path, keydir: Path) -> None:
    import omsign
    from omsign.errors import IdentityError

    policy = omsign.load_policy(write_policy(tmp_path, keydir, TWO_OF_THREE.format(mode="enforce")))
    model = signed_by(tmp_path, keydir, "registry", "ci")
    result = omsign.verify(model, policy=policy)
    assert len(result.signers) == 2
    # a verifier object still works: one key alone
    assert omsign.verify(model, policy=omsign.KeyPolicy.from_files([keydir / "registry.pub"]))
    with pytest.raises(IdentityError, match="denied"):
        omsign.verify(make_model(tmp_path / "other"), policy=policy)


@pytest.mark.parametrize(
    "flags",
    [
        ("--tsa-cert", "tsa.pem"),
        ("--offline",),
        ("--trust-config", "trust.json"),
        ("--staging",),
        ("--github-ref", "refs/heads/main"),
    ],
)
def test_signer_settings_with_a_policy_are_a_usage_error(
    tmp_path: Path, keydir: Path, monkeypatch: pytest.MonkeyPatch, flags: tuple[str, ...]
) -> None:
    # The policy's signers carry their own trust settings: a flag that would be ignored is
    # refused, whether the policy comes from --policy or from the environment.
    policy = write_policy(tmp_path, keydir, TWO_OF_THREE.format(mode="warn"))
    model = signed_by(tmp_path, keydir, "trainer", "ci")
    result = verify(model, policy, *flags)
    assert result.code == 2, result.err
    assert f"{flags[0]} cannot be used with the trust policy {policy}" in result.err
    monkeypatch.setenv("OMSIGN_POLICY", str(policy))
    again = run_cli("verify", model, *flags)
    assert again.code == 2 and "cannot be used with the trust policy" in again.err
    assert verify(model, policy).code == 0


FILES_RULE = """
[[rules]]
match = "models/**"
signers = ["trainer"]
files = "{files}"
"""


def test_rule_files_present_verifies_what_is_there_and_reports_the_rest(
    tmp_path: Path, keydir: Path
) -> None:
    policy = write_policy(tmp_path, keydir, FILES_RULE.format(files="present"))
    model = signed_by(tmp_path, keydir, "trainer")
    (model / "README.md").unlink()
    result = verify(model, policy, "--json")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    check_report(report)
    assert report["files"]["absent"] == ["README.md"]
    # present files are still verified: a changed one fails
    (model / "config.json").write_text("{}")
    assert verify(model, policy).code == 1


def test_rule_files_all_fails_on_a_missing_file_and_refuses_partial_flags(
    tmp_path: Path, keydir: Path
) -> None:
    policy = write_policy(tmp_path, keydir, FILES_RULE.format(files="all"))
    model = signed_by(tmp_path, keydir, "trainer")
    assert verify(model, policy).code == 0
    for partial in (("--allow-missing",), ("--files", "config.json")):
        refused = verify(model, policy, *partial)
        assert refused.code == 2
        assert "requires every signed file; a partial verification is refused" in refused.err
        assert partial[0] in refused.err
    (model / "README.md").unlink()
    missing = verify(model, policy)
    assert missing.code == 1 and "README.md" in missing.err


def test_rule_files_must_be_all_or_present(tmp_path: Path, keydir: Path) -> None:
    policy = write_policy(tmp_path, keydir, FILES_RULE.format(files="some"))
    result = run_cli("policy", "check", policy)
    assert result.code == 2
    assert f"{policy}:13: rule 1: files must be one of all, present, got 'some'" in result.err


@pytest.mark.parametrize(
    ("mode", "signers", "code", "decision", "counted"),
    [
        ("enforce", ("trainer", "ci"), 0, "accepted", ["trainer", "ci"]),
        ("enforce", ("trainer", "stranger"), 1, "rejected", []),
        ("warn", ("stranger",), 0, "would-reject", []),
        ("warn", ("registry", "ci"), 0, "accepted", ["registry", "ci"]),
    ],
)
def test_json_policy_member_says_the_verdict_and_who_counted(
    tmp_path: Path,
    keydir: Path,
    mode: str,
    signers: tuple[str, ...],
    code: int,
    decision: str,
    counted: list[str],
) -> None:
    import jsonschema

    policy = write_policy(tmp_path, keydir, TWO_OF_THREE.format(mode=mode))
    model = signed_by(tmp_path, keydir, *signers)
    result = verify(model, policy, "--json")
    assert result.code == code, result.err
    report = check_report(json.loads(result.out))
    member = report["policy"]
    assert member["decision"] == decision and member["counted"] == counted
    assert member["file"] == str(policy) and member["rule"] == 1 and member["threshold"] == 2
    assert member["signers"] == ["trainer", "registry", "ci"]
    if decision == "accepted":
        assert [s["trusted_as"] for s in report["signers"]] == counted
    # the schema holds the member to its shape
    with pytest.raises(jsonschema.ValidationError):
        check_report({**report, "policy": {**member, "decision": "maybe"}})
    with pytest.raises(jsonschema.ValidationError):
        check_report({**report, "policy": {**member, "extra": 1}})


def test_json_policy_member_for_off_and_denied_models(tmp_path: Path, keydir: Path) -> None:
    policy = write_policy(tmp_path, keydir, '\n[[rules]]\nmatch = "models/**"\nmode = "off"\n')
    skipped = verify(make_model(tmp_path / "models" / "x"), policy, "--json")
    member = check_report(json.loads(skipped.out))["policy"]
    assert skipped.code == 0 and member["decision"] == "not-checked" and member["mode"] == "off"
    elsewhere = make_model(tmp_path / "elsewhere")
    assert run_cli("sign", elsewhere, "--key", keydir / "trainer.pem").code == 0
    denied = verify(elsewhere, policy, "--json")
    member = check_report(json.loads(denied.out))["policy"]
    assert denied.code == 1 and member["decision"] == "rejected" and member["mode"] == "deny"
    assert member["rule"] is None


def test_inspect_lists_the_companion_signatures(tmp_path: Path, keydir: Path) -> None:
    model = signed_by(tmp_path, keydir, "trainer", "registry", "ci")
    (model / "model.sig.d" / "broken.sig").write_text("{not a bundle")
    text = run_cli("inspect", model)
    assert text.code == 0, text.err
    assert "more signatures: 3 (NOT verified)" in text.out
    assert text.out.count("same content") == 2
    assert "broken.sig: " in text.out
    report = check_report(json.loads(run_cli("inspect", model, "--json").out))
    companions = report["companions"]
    assert len(companions) == 3
    good = [c for c in companions if "error" not in c]
    assert len(good) == 2 and all(c["root_digest"] == report["root_digest"] for c in good)
    assert {c["signer"]["key_hint"] for c in good} != {report["signer"]["key_hint"]}
    assert any(c["signature"].endswith("broken.sig") and c["error"] for c in companions)
