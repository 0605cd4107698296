"""Git files that a signature lists are part of the model (model_signing --no-ignore-git-paths).

OMS 6.2 leaves `.git`, `.gitattributes`, `.github` and `.gitignore` out by default, but a
signer may sign them. Verification follows what the signature records: a listed name is
checked like any other file; only names the signature does not list stay ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers.fixtures import CliResult, KeyPair, make_model
from helpers.reports import parse_report

pytestmark = pytest.mark.interop

Run = Callable[..., CliResult]

GIT_FILES = {
    ".gitattributes": b"*.bin filter=lfs diff=lfs merge=lfs -text\n",
    ".gitignore": b"__pycache__/\n",
    ".git/HEAD": b"ref: refs/heads/main\n",
    ".github/workflows/ci.yml": b"on: push\n",
}


def signed_with_git_files(tmp_path: Path, reference: Run, key: KeyPair) -> tuple[Path, Path]:
    model = make_model(
        tmp_path / "model",
        {"config.json": b"{}\n", "weights.bin": b"\x00" * 4096, **GIT_FILES},
    )
    sig = tmp_path / "model.sig"
    made = reference(
        "sign",
        "key",
        model,
        "--signature",
        sig,
        "--private_key",
        key.private,
        "--no-ignore-git-paths",
    )
    assert made.code == 0, made.out + made.err
    return model, sig


def test_signed_git_files_verify_and_are_checked(
    cli: Run, reference: Run, tmp_path: Path, p256: KeyPair
) -> None:
    model, sig = signed_with_git_files(tmp_path, reference, p256)
    verify = ("verify", model, "--signature", sig, "--key", p256.public)
    result = cli(*verify, "--json")
    assert result.code == 0, result.err
    assert set(parse_report(result.out)["files"]["verified"]) >= set(GIT_FILES)
    for name in GIT_FILES:
        assert f'"{name}"' in result.out

    (model / ".gitattributes").write_bytes(b"* -text\n")
    failed = cli(*verify)
    assert failed.code == 1
    assert "changed: .gitattributes" in failed.err


def test_a_removed_signed_git_file_is_missing(
    cli: Run, reference: Run, tmp_path: Path, p256: KeyPair
) -> None:
    model, sig = signed_with_git_files(tmp_path, reference, p256)
    (model / ".github" / "workflows" / "ci.yml").unlink()
    failed = cli("verify", model, "--signature", sig, "--key", p256.public)
    assert failed.code == 1
    assert "missing: .github/workflows/ci.yml" in failed.err


def test_unlisted_git_files_stay_ignored(
    cli: Run, reference: Run, tmp_path: Path, p256: KeyPair
) -> None:
    """Only the names the signature lists leave the default ignores: git's own new files
    (an index, a fetched ref) next to a signed .git/HEAD are not unsigned files."""
    model, sig = signed_with_git_files(tmp_path, reference, p256)
    (model / ".git" / "index").write_bytes(b"DIRC")
    (model / ".git" / "refs" / "heads").mkdir(parents=True)
    (model / ".git" / "refs" / "heads" / "main").write_text("0" * 40)
    result = cli("verify", model, "--signature", sig, "--key", p256.public)
    assert result.code == 0, result.err


def test_default_signatures_still_ignore_git_files(
    cli: Run, reference: Run, tmp_path: Path, p256: KeyPair
) -> None:
    """Signed without git files (both tools' default), later git files are not unsigned."""
    model = make_model(tmp_path / "model", {"config.json": b"{}\n", **GIT_FILES})
    ours, theirs = tmp_path / "ours.sig", tmp_path / "theirs.sig"
    assert cli("sign", model, "--key", p256.private, "--signature", ours).code == 0
    made = reference("sign", "key", model, "--signature", theirs, "--private_key", p256.private)
    assert made.code == 0, made.err
    (model / ".gitattributes").write_bytes(b"changed later\n")
    (model / ".git" / "ORIG_HEAD").write_bytes(b"x\n")
    for sig in (ours, theirs):
        result = cli("verify", model, "--signature", sig, "--key", p256.public)
        assert result.code == 0, result.err


def test_the_verifiers_own_ignore_paths_still_exclude_signed_git_files(
    cli: Run, reference: Run, tmp_path: Path, p256: KeyPair
) -> None:
    """Ignoring a signed file when verifying leaves it unchecked, so it is reported missing
    (as for any signed file): the signature, not the default list, decides."""
    model, sig = signed_with_git_files(tmp_path, reference, p256)
    result = cli(
        "verify", model, "--signature", sig, "--key", p256.public, "--ignore-paths", model / ".git"
    )
    assert result.code == 1
    assert "missing: .git/HEAD" in result.err
