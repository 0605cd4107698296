"""First-use pinning on the command line: verify --policy with pin = true, policy accept."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from helpers.fixtures import CliResult, make_model, run_cli
from helpers.pki import days, issue_leaf, make_ca, now, write_certs
from helpers.reports import check_report

if TYPE_CHECKING:
    from services.tsa import RunningTSA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("pinning-pki")
    ca = make_ca("pinning root", not_before=now() - days(30))
    leaves = {
        "alice": issue_leaf(ca, name="alice", not_before=now() - days(3)).write(d, "alice"),
        "alice-old": issue_leaf(ca, name="alice", not_before=now() - days(10)).write(d, "old"),
        "bob": issue_leaf(ca, name="bob", not_before=now() - days(3)).write(d, "bob"),
    }
    return {"ca": write_certs(d / "ca.pem", [ca.cert]), **leaves}


def write_policy(tmp_path: Path, ca: object, mode: str = "enforce", pin: bool = True) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        f'version = 1\n[signers.team]\nca = {{ chain = "{ca}" }}\n'
        f'[[rules]]\nmatch = "models/**"\nmode = "{mode}"\nsigners = ["team"]\n'
        f"pin = {'true' if pin else 'false'}\n"
    )
    return path


def sign(model: Path, leaf: object) -> None:
    result = run_cli("sign", model, "--key", leaf.key_path, "--cert", leaf.cert_path)  # type: ignore[attr-defined]
    assert result.code == 0, result.err


def verify(model: Path, policy: Path, history: Path, *more: str) -> CliResult:
    return run_cli("verify", model, "--policy", policy, "--history", history, *more)


def test_a_pinned_identity_changing_fails_until_accepted(
    tmp_path: Path, pki: dict[str, object]
) -> None:
    policy, history = write_policy(tmp_path, pki["ca"]), tmp_path / "history.json"
    model = make_model(tmp_path / "models" / "bert")
    sign(model, pki["alice"])
    first = verify(model, policy, history, "--json")
    assert first.code == 0, first.err
    report = check_report(json.loads(first.out))
    assert report["policy"]["pinning"]["status"] == "first-use"
    assert "alice" in report["policy"]["pinning"]["pinned"][0]
    # bob is trusted by the policy, but is not the signer pinned at first use
    sign(model, pki["bob"])
    refused = verify(model, policy, history)
    assert refused.code == 1
    assert "not by the signer(s) pinned at first use" in refused.err
    assert "accept it with the policy accept command" in refused.err
    accepted = run_cli("policy", "accept", model, "--policy", policy, "--history", history)
    assert accepted.code == 0, accepted.err
    assert "is now pinned to CN=bob" in accepted.out
    assert verify(model, policy, history).code == 0
    sign(model, pki["alice"])
    assert verify(model, policy, history).code == 1  # alice is no longer the pinned one


def test_content_is_verified_again_whatever_the_history_says(
    tmp_path: Path, pki: dict[str, object]
) -> None:
    policy, history = write_policy(tmp_path, pki["ca"]), tmp_path / "history.json"
    model = make_model(tmp_path / "models" / "bert")
    sign(model, pki["alice"])
    assert verify(model, policy, history).code == 0
    (model / "config.json").write_text('{"hidden_size": 9}')
    changed = verify(model, policy, history)
    assert changed.code == 1 and "config.json" in changed.err
    # accept never records a model that does not verify
    before = history.read_bytes()
    refused = run_cli("policy", "accept", model, "--policy", policy, "--history", history)
    assert refused.code == 1
    assert history.read_bytes() == before


def test_a_rollback_by_claimed_time_is_reported_as_such(
    tmp_path: Path, pki: dict[str, object]
) -> None:
    # Without a trusted timestamp the signing time is what the bundle claims: here the
    # start of the signing certificate's validity.
    policy, history = write_policy(tmp_path, pki["ca"]), tmp_path / "history.json"
    model = make_model(tmp_path / "models" / "bert")
    sign(model, pki["alice-old"])
    old = shutil.copytree(model, tmp_path / "old-version")
    (model / "config.json").write_text('{"hidden_size": 16}')
    sign(model, pki["alice"])
    assert verify(model, policy, history).code == 0
    shutil.rmtree(model)
    shutil.copytree(old, model)
    rolled = verify(model, policy, history)
    assert rolled.code == 1
    assert "claimed by the bundle, not proven" in rolled.err and "a rollback" in rolled.err
    assert run_cli("policy", "accept", model, "--policy", policy, "--history", history).code == 0
    assert verify(model, policy, history).code == 0


def test_a_rollback_by_proven_time(tmp_path: Path, pki: dict[str, object], tsa: RunningTSA) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        f'version = 1\n[signers.team]\nca = {{ chain = "{pki["ca"]}", tsa = "{tsa.root_path}" }}\n'
        '[[rules]]\nmatch = "models/**"\nsigners = ["team"]\npin = true\n'
    )
    history = tmp_path / "history.json"
    model = make_model(tmp_path / "models" / "bert")
    leaf = pki["alice"]
    stamp = ("--tsa-url", tsa.url)
    assert (
        run_cli("sign", model, "--key", leaf.key_path, "--cert", leaf.cert_path, *stamp).code == 0
    )  # type: ignore[attr-defined]
    old = shutil.copytree(model, tmp_path / "old-version")
    time.sleep(1.1)  # timestamps have a resolution of one second
    (model / "config.json").write_text('{"hidden_size": 16}')
    assert (
        run_cli("sign", model, "--key", leaf.key_path, "--cert", leaf.cert_path, *stamp).code == 0
    )  # type: ignore[attr-defined]
    assert verify(model, policy, history).code == 0
    shutil.rmtree(model)
    shutil.copytree(old, model)
    rolled = verify(model, policy, history, "--json")
    assert rolled.code == 1
    report = check_report(json.loads(rolled.out))
    assert report["kind"] == "RollbackError"
    assert "(proven)" in report["message"]


def test_warn_mode_reports_a_pin_failure_and_records_nothing(
    tmp_path: Path, pki: dict[str, object]
) -> None:
    policy = write_policy(tmp_path, pki["ca"], mode="warn")
    history = tmp_path / "history.json"
    model = make_model(tmp_path / "models" / "bert")
    sign(model, pki["alice"])
    assert verify(model, policy, history).code == 0
    before = history.read_bytes()
    sign(model, pki["bob"])
    warned = verify(model, policy, history)
    assert warned.code == 0
    assert "warn mode; this would fail" in warned.err and "pinned at first use" in warned.err
    assert history.read_bytes() == before


def test_accept_needs_a_pinning_rule_and_history_needs_a_policy(
    tmp_path: Path, pki: dict[str, object]
) -> None:
    policy = write_policy(tmp_path, pki["ca"], pin=False)
    model = make_model(tmp_path / "models" / "bert")
    sign(model, pki["alice"])
    history = tmp_path / "history.json"
    refused = run_cli("policy", "accept", model, "--policy", policy, "--history", history)
    assert refused.code == 2 and "does not pin signers" in refused.err
    assert not history.exists()
    # without pinning, verify leaves the history alone
    assert verify(model, policy, history).code == 0 and not history.exists()
    alone = run_cli("verify", model, "--key", tmp_path / "x.pub", "--history", history)
    assert alone.code == 2 and "--history applies to a trust policy file" in alone.err


def test_a_damaged_history_fails_with_exit_2(tmp_path: Path, pki: dict[str, object]) -> None:
    policy, history = write_policy(tmp_path, pki["ca"]), tmp_path / "history.json"
    history.write_text("{")
    model = make_model(tmp_path / "models" / "bert")
    sign(model, pki["alice"])
    result = verify(model, policy, history)
    assert result.code == 2 and "signer history is damaged" in result.err


def test_history_from_the_environment(
    tmp_path: Path, pki: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = write_policy(tmp_path, pki["ca"])
    monkeypatch.setenv("OMSIGN_HISTORY", str(tmp_path / "env-history.json"))
    model = make_model(tmp_path / "models" / "bert")
    sign(model, pki["alice"])
    assert run_cli("verify", model, "--policy", policy).code == 0
    assert (tmp_path / "env-history.json").is_file()


def test_explain_says_the_rule_pins_and_where_the_history_is(
    tmp_path: Path, pki: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = write_policy(tmp_path, pki["ca"])
    monkeypatch.setenv("OMSIGN_HISTORY", str(tmp_path / "h.json"))
    result = run_cli("policy", "explain", tmp_path / "models" / "x", "--policy", policy)
    assert result.code == 0, result.err
    assert "first-use pinning: signers other than the first recorded ones are refused" in result.out
    assert f"signer history: {tmp_path / 'h.json'}" in result.out
