"""Interoperability with model_signing 1.1.1, run from its own virtual environment.

Each direction, for each curve: one tool signs a directory model, the other verifies it,
with ignore paths and unsigned files; and each verifier is shown rejecting a tampered file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.fixtures import CliResult, KeyPair, make_model
from helpers.pki import issue_leaf, make_ca, make_ec_key

Run = Callable[..., CliResult]


def layout(root: Path) -> Path:
    """A model with a git folder, a scratch folder to ignore, and nested files."""
    make_model(
        root,
        {
            "config.json": b'{"layers": 2}\n',
            "weights/part-00001.bin": os.urandom(200_000),
            "weights/part-00002.bin": os.urandom(100_000),
            "tokenizer.json": b"{}\n",
            ".git/HEAD": b"ref: refs/heads/main\n",
            "scratch/notes.txt": b"not part of the model\n",
        },
    )
    return root


def tamper(model: Path) -> None:
    (model / "weights" / "part-00002.bin").write_bytes(os.urandom(100_000))


def test_model_signing_verifies_omsign_key_signatures(
    cli: Run, reference: Run, tmp_path: Path, keypair: KeyPair
) -> None:
    model = layout(tmp_path / "model")
    sig = tmp_path / "model.sig"
    signed = cli(
        "sign",
        model,
        "--key",
        keypair.private,
        "--signature",
        sig,
        "--ignore-paths",
        model / "scratch",
    )
    assert signed.code == 0, signed.err
    verify = (
        "verify",
        "key",
        model,
        "--signature",
        sig,
        "--public_key",
        keypair.public,
        "--ignore-paths",
        model / "scratch",
    )
    result = reference(*verify)
    assert result.code == 0, result.out + result.err
    tamper(model)
    assert reference(*verify).code != 0


def test_omsign_verifies_model_signing_key_signatures(
    cli: Run, reference: Run, tmp_path: Path, keypair: KeyPair
) -> None:
    model = layout(tmp_path / "model")
    sig = tmp_path / "ms.sig"
    made = reference(
        "sign",
        "key",
        model,
        "--signature",
        sig,
        "--private_key",
        keypair.private,
        "--ignore-paths",
        model / "scratch",
    )
    assert made.code == 0, made.out + made.err
    result = cli("verify", model, "--signature", sig, "--key", keypair.public)
    assert result.code == 0, result.err
    tamper(model)
    failed = cli("verify", model, "--signature", sig, "--key", keypair.public)
    assert failed.code == 1
    assert "changed: weights/part-00002.bin" in failed.err


def test_ignore_unsigned_files_in_both_directions(
    cli: Run, reference: Run, tmp_path: Path, p256: KeyPair
) -> None:
    model = layout(tmp_path / "model")
    ours, theirs = tmp_path / "ours.sig", tmp_path / "theirs.sig"
    assert cli("sign", model, "--key", p256.private, "--signature", ours).code == 0
    assert (
        reference("sign", "key", model, "--signature", theirs, "--private_key", p256.private).code
        == 0
    )
    (model / "added.txt").write_text("unsigned")
    assert (
        reference("verify", "key", model, "--signature", ours, "--public_key", p256.public).code
        != 0
    )
    assert (
        reference(
            "verify",
            "key",
            model,
            "--signature",
            ours,
            "--public_key",
            p256.public,
            "--ignore_unsigned_files",
        ).code
        == 0
    )
    assert cli("verify", model, "--signature", theirs, "--key", p256.public).code == 1
    assert (
        cli(
            "verify", model, "--signature", theirs, "--key", p256.public, "--ignore-unsigned-files"
        ).code
        == 0
    )


@pytest.fixture(params=["P-256", "P-384", "P-521"])
def certificate(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Path]:
    root = make_ca("Interop Root").write(tmp_path / "pki", "root")
    inter = make_ca("Interop Intermediate", parent=root).write(tmp_path / "pki", "inter")
    leaf = issue_leaf(inter, make_ec_key(request.param)).write(tmp_path / "pki", "leaf")
    assert root.cert_path and inter.cert_path and leaf.cert_path and leaf.key_path
    return {
        "root": root.cert_path,
        "inter": inter.cert_path,
        "leaf": leaf.cert_path,
        "key": leaf.key_path,
    }


def test_model_signing_verifies_omsign_certificate_signatures(
    cli: Run, reference: Run, tmp_path: Path, certificate: dict[str, Path]
) -> None:
    model = layout(tmp_path / "model")
    sig = tmp_path / "model.sig"
    signed = cli(
        "sign",
        model,
        "--key",
        certificate["key"],
        "--cert",
        certificate["leaf"],
        "--cert-chain",
        certificate["inter"],
        "--signature",
        sig,
        "--ignore-paths",
        model / "scratch",
    )
    assert signed.code == 0, signed.err
    verify = (
        "verify",
        "certificate",
        model,
        "--signature",
        sig,
        "--certificate_chain",
        certificate["root"],
        "--ignore-paths",
        model / "scratch",
    )
    result = reference(*verify)
    assert result.code == 0, result.out + result.err
    tamper(model)
    assert reference(*verify).code != 0


def test_omsign_verifies_model_signing_certificate_signatures(
    cli: Run, reference: Run, tmp_path: Path, certificate: dict[str, Path]
) -> None:
    model = layout(tmp_path / "model")
    sig = tmp_path / "ms.sig"
    made = reference(
        "sign",
        "certificate",
        model,
        "--signature",
        sig,
        "--private_key",
        certificate["key"],
        "--signing_certificate",
        certificate["leaf"],
        "--certificate_chain",
        certificate["inter"],
        "--ignore-paths",
        model / "scratch",
    )
    assert made.code == 0, made.out + made.err
    result = cli("verify", model, "--signature", sig, "--cert-chain", certificate["root"])
    assert result.code == 0, result.err
    tamper(model)
    assert cli("verify", model, "--signature", sig, "--cert-chain", certificate["root"]).code == 1


def test_single_file_models_follow_the_spec_name_and_accept_the_reference_dot(
    cli: Run, reference: Run, tmp_path: Path, p256: KeyPair
) -> None:
    """OMS 6.1.2 names a single-file resource by its basename; model_signing 1.1.1 writes "."
    and expects it. omsign accepts the reference's ".", and documents that model_signing cannot
    verify spec-conformant single-file signatures (README, "Known differences")."""
    f = tmp_path / "weights.bin"
    f.write_bytes(os.urandom(50_000))
    ours, theirs = tmp_path / "ours.sig", tmp_path / "theirs.sig"
    assert cli("sign", f, "--key", p256.private, "--signature", ours).code == 0
    assert (
        reference("sign", "key", f, "--signature", theirs, "--private_key", p256.private).code == 0
    )
    assert cli("verify", f, "--signature", theirs, "--key", p256.public).code == 0
    rejected = reference("verify", "key", f, "--signature", ours, "--public_key", p256.public)
    assert rejected.code != 0
    assert "Missing files in model 'weights.bin': weights.bin" in rejected.err
    f.write_bytes(os.urandom(50_000))
    assert cli("verify", f, "--signature", theirs, "--key", p256.public).code == 1
