"""Sigstore keyless signing end to end through the ``omsign`` command.

Everything runs against the local Sigstore instance (``local_sigstore`` fixture).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.sigstore_local import LocalSigstore

OMSIGN = Path(sys.executable).parent / "omsign"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, timeout=120
    )


def omsign(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run(OMSIGN, *args)


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "config.json").write_text('{"layers": 2}\n')
    (root / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (root / "sub" / "tokenizer.txt").write_text("a b c\n")
    return root


def sign(model: Path, sigstore: LocalSigstore, token: str | None = None) -> None:
    result = omsign(
        "sign",
        model,
        "--identity-token",
        token or sigstore.identity_token,
        "--trust-config",
        sigstore.trust_config,
    )
    assert result.returncode == 0, result.stderr
    assert (model / "model.sig").is_file()


def verify(
    model: Path, sigstore: LocalSigstore, identity: str, issuer: str
) -> subprocess.CompletedProcess[str]:
    return omsign(
        "verify",
        model,
        "--identity",
        identity,
        "--issuer",
        issuer,
        "--trust-config",
        sigstore.trust_config,
    )


def test_sign_then_verify(model: Path, local_sigstore: LocalSigstore) -> None:
    sign(model, local_sigstore)
    bundle = json.loads((model / "model.sig").read_text())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert bundle["verificationMaterial"]["tlogEntries"]
    result = verify(model, local_sigstore, local_sigstore.identity, local_sigstore.issuer)
    assert result.returncode == 0, result.stderr


def test_verify_rejects_wrong_identity_and_issuer(
    model: Path, local_sigstore: LocalSigstore
) -> None:
    sign(model, local_sigstore)
    wrong_identity = verify(model, local_sigstore, "mallory@omsign.test", local_sigstore.issuer)
    assert wrong_identity.returncode == 1
    assert "mallory@omsign.test" in wrong_identity.stderr
    assert "Traceback" not in wrong_identity.stderr
    wrong_issuer = verify(
        model, local_sigstore, local_sigstore.identity, "https://accounts.google.com"
    )
    assert wrong_issuer.returncode == 1
    assert "accounts.google.com" in wrong_issuer.stderr


def test_verify_rejects_a_modified_model(model: Path, local_sigstore: LocalSigstore) -> None:
    sign(model, local_sigstore)
    (model / "weights.bin").write_bytes(b"tampered")
    result = verify(model, local_sigstore, local_sigstore.identity, local_sigstore.issuer)
    assert result.returncode == 1
    assert "weights.bin" in result.stderr


def test_sign_with_an_expired_token_is_an_environment_error(
    model: Path, local_sigstore: LocalSigstore
) -> None:
    result = omsign(
        "sign",
        model,
        "--identity-token",
        local_sigstore.mint_token(lifetime=-60),
        "--trust-config",
        local_sigstore.trust_config,
    )
    assert result.returncode == 2
    assert "token" in result.stderr
    assert not (model / "model.sig").exists()


def test_inspect_shows_the_signer(model: Path, local_sigstore: LocalSigstore) -> None:
    sign(model, local_sigstore)
    result = omsign("inspect", model / "model.sig")
    assert result.returncode == 0, result.stderr
    assert local_sigstore.identity in result.stdout
    assert local_sigstore.issuer in result.stdout


def test_keyless_signing_without_token_or_terminal_fails_at_once(
    local_sigstore: LocalSigstore, tmp_path: Path
) -> None:
    from helpers.fixtures import make_model, run_omsign_process

    model = make_model(tmp_path / "m", {"w.bin": b"weights"})
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ACTIONS_", "GITHUB_", "SIGSTORE_", "GOOGLE_", "BUILDKITE"))
    }
    result = run_omsign_process(
        "sign",
        model,
        "--trust-config",
        local_sigstore.trust_config,
        stdin=subprocess.DEVNULL,
        env=env,
        timeout=60,
    )
    assert result.code == 2
    assert "no identity token" in result.err
    assert not (model / "model.sig").exists()


def test_an_unreachable_instance_fails_before_the_model_is_read(
    local_sigstore: LocalSigstore, tmp_path: Path
) -> None:
    import socket

    from helpers.audit import touched_under
    from helpers.fixtures import run_cli

    model = tmp_path / "big"
    model.mkdir()
    with open(model / "weights.bin", "wb") as f:
        f.truncate(64 * 2**30)  # sparse: 64 GiB that a started hash would take minutes on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    config = local_sigstore.trust_config.read_text().replace(local_sigstore.url, dead)
    trust = tmp_path / "dead.json"
    trust.write_text(config.replace(f"{dead}/oidc", f"{local_sigstore.url}/oidc"))
    with touched_under(model) as touched:
        result = run_cli(
            "sign", model, "--identity-token", local_sigstore.identity_token,
            "--trust-config", trust,
        )  # fmt: skip
    assert result.code == 2
    assert "cannot reach a Sigstore service" in result.err
    assert "verify" not in result.err
    assert touched == []
    assert not (model / "model.sig").exists()
