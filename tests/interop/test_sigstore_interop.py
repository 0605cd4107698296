"""Sigstore keyless signatures exchanged with model_signing 1.1.1 (its CLI and its venv).

Everything runs against the local Sigstore instance (``local_sigstore`` fixture).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from helpers.fixtures import CliResult
from omsign.backends.sigstore import SigstoreBundleSigner, SigstoreSettings
from omsign.bundle import build_bundle
from services.sigstore_local import LocalSigstore

Run = Callable[..., CliResult]
OMSIGN = Path(sys.executable).parent / "omsign"

STATEMENT = json.dumps(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": {"serialization": {"method": "files", "hash_type": "sha256"}, "resources": []},
    },
    separators=(",", ":"),
).encode()


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


@pytest.fixture(scope="module")
def signed(local_sigstore: LocalSigstore) -> dict[str, Any]:
    signer = SigstoreBundleSigner(
        SigstoreSettings(trust_config=local_sigstore.trust_config),
        identity_token=local_sigstore.identity_token,
    )
    return build_bundle(STATEMENT, *signer.sign_statement(STATEMENT))


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


def test_model_signing_verifies_omsign_signature(
    model: Path, local_sigstore: LocalSigstore, reference: Run
) -> None:
    sign(model, local_sigstore)
    result = reference(
        "verify",
        "sigstore",
        model,
        "--signature",
        model / "model.sig",
        "--identity",
        local_sigstore.identity,
        "--identity_provider",
        local_sigstore.issuer,
        "--trust_config",
        local_sigstore.trust_config,
    )
    assert result.code == 0, result.out + result.err


def test_omsign_verifies_model_signing_signature(
    model: Path, local_sigstore: LocalSigstore, reference: Run
) -> None:
    signed = reference(
        "sign",
        "sigstore",
        model,
        "--signature",
        model / "model.sig",
        "--identity_token",
        local_sigstore.identity_token,
        "--trust_config",
        local_sigstore.trust_config,
    )
    assert signed.code == 0, signed.out + signed.err
    result = verify(model, local_sigstore, local_sigstore.identity, local_sigstore.issuer)
    assert result.returncode == 0, result.stderr
    wrong = verify(model, local_sigstore, "mallory@omsign.test", local_sigstore.issuer)
    assert wrong.returncode == 1


def test_bundle_verifies_with_model_signing_sigstore(
    local_sigstore: LocalSigstore, signed: dict[str, Any], tmp_path: Path, reference_python: Path
) -> None:
    bundle_path = tmp_path / "bundle.json"
    bundle_path.write_text(json.dumps(signed))
    script = (
        "import sys\n"
        "from sigstore.models import Bundle, ClientTrustConfig\n"
        "from sigstore.verify import Verifier\n"
        "from sigstore.verify.policy import Identity\n"
        "trust = ClientTrustConfig.from_json(open(sys.argv[1]).read())\n"
        "bundle = Bundle.from_json(open(sys.argv[2]).read())\n"
        "policy = Identity(identity=sys.argv[3], issuer=sys.argv[4])\n"
        "kind, payload = Verifier(trusted_root=trust.trusted_root).verify_dsse(bundle, policy)\n"
        "sys.stdout.buffer.write(payload)\n"
    )
    args = [str(reference_python), "-c", script, str(local_sigstore.trust_config), str(bundle_path)]
    ok = subprocess.run(
        [*args, local_sigstore.identity, local_sigstore.issuer], capture_output=True, check=False
    )
    assert ok.returncode == 0, ok.stderr.decode()
    assert ok.stdout == STATEMENT
    wrong = subprocess.run(
        [*args, "other@omsign.test", local_sigstore.issuer],
        capture_output=True,
        check=False,
    )
    assert wrong.returncode != 0
