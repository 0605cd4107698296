"""``omsign sign --pkcs11-uri`` with SoftHSM2 keys, verified by model_signing 1.1.1.

Runs the installed ``omsign`` command as a subprocess (``SOFTHSM2_CONF`` comes from
the ``softhsm_token`` fixture) and the reference from its own virtual environment.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from helpers.fixtures import CliResult, run_omsign_process
from omsign.backends.pkcs11 import export_public_key_pem

if TYPE_CHECKING:
    from services.softhsm import SoftHsm

Run = Callable[..., CliResult]


def omsign(*args: str | Path) -> CliResult:
    return run_omsign_process(*args, stdin=subprocess.DEVNULL, timeout=300)


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, f"exit {result.code}\n{result.out}\n{result.err}"
    return result


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
def test_sign_with_token_key_then_verify_with_both_tools(
    softhsm_token: SoftHsm, model: Path, tmp_path: Path, name: str, reference: Run
) -> None:
    ok(omsign("sign", model, "--pkcs11-uri", softhsm_token.uri(f"object={name}")))
    signature = model / "model.sig"
    assert signature.is_file()
    public = export(softhsm_token, name, tmp_path)
    ok(omsign("verify", model, "--key", public))
    ok(reference("verify", "key", model, "--signature", signature, "--public_key", public))


def test_sign_with_token_key_and_certificate_then_verify_the_chain(
    softhsm_token: SoftHsm, model: Path, tmp_path: Path, reference: Run
) -> None:
    from services.softhsm import issue_token_certificate

    public = serialization.load_pem_public_key(export(softhsm_token, "p256", tmp_path).read_bytes())
    assert isinstance(public, ec.EllipticCurvePublicKey)
    issue_token_certificate(public, tmp_path, "leaf")
    leaf, ca = tmp_path / "leaf.crt", tmp_path / "leaf-ca.crt"
    uri = softhsm_token.uri("object=p256")
    ok(omsign("sign", model, "--pkcs11-uri", uri, "--cert", leaf, "--cert-chain", ca))
    signature = model / "model.sig"
    ok(omsign("verify", model, "--cert-chain", ca))
    ok(
        reference(
            *("verify", "certificate", model, "--signature", signature),
            *("--certificate_chain", ca),
        )
    )
