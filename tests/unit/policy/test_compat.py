"""The keyword API and the policy names of earlier releases keep working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import omsign
import omsign.policy
from helpers.fixtures import KeyPair
from helpers.pki import make_ca, write_certs
from omsign.errors import UsageError


def test_policy_classes_stay_importable_from_policy_and_omsign() -> None:
    for name in ("KeyPolicy", "CertificatePolicy", "SigstorePolicy"):
        assert getattr(omsign, name) is getattr(omsign.policy, name)
    from omsign.policy import CertificatePolicy, KeyPolicy, SigstorePolicy  # noqa: F401


def test_make_policy_keywords_build_each_method(p256: KeyPair, tmp_path: Path) -> None:
    root = write_certs(tmp_path / "root.pem", [make_ca("Root").cert])
    assert isinstance(omsign.make_policy(key=p256.public), omsign.KeyPolicy)
    assert isinstance(omsign.make_policy(cert_chain=root), omsign.CertificatePolicy)
    sigstore = omsign.make_policy(identity="a@example.com", issuer="https://i", offline=True)
    assert isinstance(sigstore, omsign.SigstorePolicy)
    assert sigstore.settings.offline


def test_from_files_and_constructor_forms_still_work(p256: KeyPair, tmp_path: Path) -> None:
    policy = omsign.KeyPolicy.from_files([p256.public])
    assert policy == omsign.KeyPolicy(policy.keys)
    with pytest.raises(UsageError) as caught:
        omsign.CertificatePolicy.from_files([])
    assert caught.value.options == ("cert_chain",)


def test_verify_with_a_ready_policy_and_with_keywords(
    model: Path, p256: KeyPair, tmp_path: Path
) -> None:
    omsign.sign(model, key=p256.private)
    by_keyword = omsign.verify(model, key=p256.public)
    by_policy = omsign.verify(model, policy=omsign.KeyPolicy.from_files([p256.public]))
    assert by_keyword.root_digest == by_policy.root_digest


def test_key_verification_loads_neither_sigstore_nor_x509_nor_pydantic(
    model: Path, p256: KeyPair
) -> None:
    omsign.sign(model, key=p256.private)
    code = (
        "import sys, omsign\n"
        f"omsign.verify({str(model)!r}, key={str(p256.public)!r})\n"
        "heavy = {'sigstore', 'cryptography.x509', 'pydantic'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
