"""``omsign`` with AWS KMS keys on the command line, verified by omsign and model_signing 1.1.1.

The KMS is moto's standalone server on 127.0.0.1 (``services.awskms``); the commands run
as subprocesses and find it through ``AWS_ENDPOINT_URL``, as a user's would.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.fixtures import CliResult, make_model, run_omsign_process


def _ok(result: CliResult) -> CliResult:
    assert result.code == 0, f"exit {result.code}\n{result.out}\n{result.err}"
    return result


@pytest.mark.parametrize("spec", ["ECC_NIST_P256", "ECC_NIST_P384"])
def test_cli_sign_with_kms_verifies_with_omsign_and_model_signing(
    spec: str,
    make_kms_key: Callable[..., str],
    reference: Callable[..., CliResult],
    tmp_path: Path,
) -> None:
    model = make_model(tmp_path / "model")
    uri = f"awskms:///{make_kms_key(spec)}"
    public = tmp_path / "public.pem"
    _ok(run_omsign_process("public-key", "--key", uri, "-o", public))
    _ok(run_omsign_process("sign", model, "--key", uri))
    _ok(run_omsign_process("verify", model, "--key", public))
    _ok(
        reference(
            "verify", "key", "--signature", model / "model.sig", "--public_key", public, model
        )
    )
    (model / "config.json").write_text("tampered")
    assert run_omsign_process("verify", model, "--key", public).code == 1
    assert (
        reference(
            "verify", "key", "--signature", model / "model.sig", "--public_key", public, model
        ).code
        != 0
    )


def test_cli_kms_errors_are_one_line_exit_2(
    aws_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model = make_model(tmp_path / "model")
    missing = run_omsign_process("sign", model, "--key", "awskms:///alias/nowhere")
    assert missing.code == 2
    assert "no such key" in missing.err
    assert "Traceback" not in missing.err
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    nocreds = run_omsign_process("public-key", "--key", "awskms:///alias/nowhere")
    assert nocreds.code == 2
    assert "no AWS credentials" in nocreds.err
    assert len(nocreds.err.strip().splitlines()) == 1
    assert not (model / "model.sig").exists()
