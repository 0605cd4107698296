"""``omsign sign --pkcs11-uri`` end to end with SoftHSM2 keys.

Runs the installed ``omsign`` command as a subprocess (``SOFTHSM2_CONF`` comes from
the ``softhsm_token`` fixture).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from omsign.backends.pkcs11 import export_public_key_pem

if TYPE_CHECKING:
    from services.softhsm import SoftHsm

pytest_plugins = ["services.softhsm"]


def omsign(*args: str | Path) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("omsign")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "omsign"]
    return subprocess.run(
        [*command, *map(str, args)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def one_line_error(result: subprocess.CompletedProcess[str], exit_code: int, text: str) -> None:
    assert result.returncode == exit_code, f"{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert text in lines[0]


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "tokenizer").mkdir(parents=True)
    (root / "weights.bin").write_bytes(bytes(range(256)) * 4096)
    (root / "config.json").write_text('{"layers": 2}\n')
    (root / "tokenizer" / "vocab.txt").write_text("a\nb\nc\n")
    return root


def export(softhsm_token: SoftHsm, name: str, directory: Path) -> Path:
    path = directory / f"{name}.pub.pem"
    path.write_bytes(export_public_key_pem(softhsm_token.uri(f"object={name}"), lambda p: None))
    return path


@pytest.mark.parametrize("name", ["p256", "p384", "p521"])
def test_sign_with_token_key_then_verify(
    softhsm_token: SoftHsm, model: Path, tmp_path: Path, name: str
) -> None:
    ok(omsign("sign", model, "--pkcs11-uri", softhsm_token.uri(f"object={name}")))
    assert (model / "model.sig").is_file()
    ok(omsign("verify", model, "--key", export(softhsm_token, name, tmp_path)))


def test_sign_with_token_key_and_certificate_then_verify_the_chain(
    softhsm_token: SoftHsm, model: Path, tmp_path: Path
) -> None:
    from services.softhsm import issue_token_certificate

    public = serialization.load_pem_public_key(export(softhsm_token, "p256", tmp_path).read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    issue_token_certificate(public, tmp_path, "leaf")
    leaf, ca = tmp_path / "leaf.crt", tmp_path / "leaf-ca.crt"
    uri = softhsm_token.uri("object=p256")
    ok(omsign("sign", model, "--pkcs11-uri", uri, "--cert", leaf, "--cert-chain", ca))
    ok(omsign("verify", model, "--cert-chain", ca))


def test_signature_from_token_rejected_with_another_key_or_changed_model(
    softhsm_token: SoftHsm, model: Path, tmp_path: Path
) -> None:
    ok(omsign("sign", model, "--pkcs11-uri", softhsm_token.uri("object=p256")))
    assert omsign("verify", model, "--key", export(softhsm_token, "p384", tmp_path)).returncode == 1
    (model / "config.json").write_text('{"layers": 3}\n')
    public = export(softhsm_token, "p256", tmp_path)
    assert omsign("verify", model, "--key", public).returncode == 1


def test_certificate_for_another_key_is_refused(
    softhsm_token: SoftHsm, model: Path, tmp_path: Path
) -> None:
    from services.softhsm import issue_token_certificate

    other = serialization.load_pem_public_key(export(softhsm_token, "p384", tmp_path).read_bytes())
    assert isinstance(other, ec.EllipticCurvePublicKey)
    issue_token_certificate(other, tmp_path, "leaf")
    uri = softhsm_token.uri("object=p256")
    args = ("--cert", tmp_path / "leaf.crt", "--cert-chain", tmp_path / "leaf-ca.crt")
    result = omsign("sign", model, "--pkcs11-uri", uri, *args)
    assert result.returncode == 2, result.stderr
    assert not (model / "model.sig").exists()


def test_public_key_command_exports_the_token_key(softhsm_token: SoftHsm, tmp_path: Path) -> None:
    out = tmp_path / "exported.pem"
    ok(omsign("public-key", "--pkcs11-uri", softhsm_token.uri("object=p384"), "-o", out))
    assert out.read_bytes() == export(softhsm_token, "p384", tmp_path).read_bytes()


def test_pin_value_in_uri_warns_on_stderr(softhsm_token: SoftHsm, model: Path) -> None:
    query = f"module-path={softhsm_token.module}&pin-value={softhsm_token.user_pin}"
    result = ok(
        omsign("sign", model, "--pkcs11-uri", softhsm_token.uri("object=p256", query=query))
    )
    assert "shell history" in result.stderr
    assert softhsm_token.user_pin not in result.stderr


# --- failures: exit 2 and one clear line -------------------------------------------------


def test_wrong_pin(softhsm_token: SoftHsm, model: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong-pin"
    wrong.write_text("000000\n")
    uri = softhsm_token.uri(
        "object=p256", query=f"module-path={softhsm_token.module}&pin-source={wrong}"
    )
    one_line_error(omsign("sign", model, "--pkcs11-uri", uri), 2, "wrong PIN")
    assert not (model / "model.sig").exists()


def test_missing_token(softhsm_token: SoftHsm, model: Path) -> None:
    uri = softhsm_token.uri("object=p256", token="nonesuch")
    one_line_error(
        omsign("sign", model, "--pkcs11-uri", uri), 2, "no PKCS#11 token matches token='nonesuch'"
    )


def test_missing_key(softhsm_token: SoftHsm, model: Path) -> None:
    uri = softhsm_token.uri("object=missing")
    one_line_error(
        omsign("sign", model, "--pkcs11-uri", uri), 2, "no private key matches object='missing'"
    )


def test_nonexistent_module(softhsm_token: SoftHsm, model: Path, tmp_path: Path) -> None:
    uri = f"pkcs11:token=omsign-test;object=p256?module-path={tmp_path}/missing.so"
    one_line_error(omsign("sign", model, "--pkcs11-uri", uri), 2, "PKCS#11 module not found")


def test_malformed_uri(softhsm_token: SoftHsm, model: Path) -> None:
    uri = softhsm_token.uri("object=p256;colour=red")
    one_line_error(omsign("sign", model, "--pkcs11-uri", uri), 2, "unknown PKCS#11 URI")
