"""describe_signature: what a signature claims, unverified, as a value and as JSON."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

import omsign
from helpers.fixtures import COMPAT, KeyPair, make_model
from omsign.backends._ec import key_hint
from omsign.backends._pem import load_public_keys
from omsign.bundle import Material, build_bundle, parse_bundle
from omsign.inspect import SignatureDescription, describe_signature

SRC = Path(omsign.__file__).parent


@pytest.fixture
def signed(tmp_path: Path, p256: KeyPair) -> Path:
    model = make_model(tmp_path / "m", {"a.bin": b"a", "b/c.bin": b"c"})
    omsign.sign(model, key=p256.private)
    return model


def test_a_key_signature_is_described(signed: Path, p256: KeyPair) -> None:
    described = describe_signature(signed)
    assert described.signature == str(signed / "model.sig")
    assert described.method == "key"
    (public,) = load_public_keys(p256.public)
    assert described.signer == {"key_hint": key_hint(public)}
    assert described.format == "OMS v1.0"
    assert described.subject == "m"
    assert described.root_digest == "sha256:" + omsign.digest(signed).removeprefix("sha256:")
    assert [i.name for i in described.resources] == ["a.bin", "b/c.bin"]
    assert described.serialization is not None
    assert described.serialization.method == "files"
    assert described.statement_error is None


def test_the_json_form_keeps_the_inspect_fields(signed: Path) -> None:
    info = describe_signature(signed / "model.sig").to_json()
    assert list(info) == [
        "format",
        "version",
        "report",
        "signature",
        "verified",
        "method",
        "signer",
        "timestamps",
        "statement_format",
        "subject",
        "root_digest",
        "serialization",
        "resources",
    ]
    assert info["verified"] is False
    assert info["serialization"]["ignore_paths"] == sorted(info["serialization"]["ignore_paths"])
    assert {r["name"] for r in info["resources"]} == {"a.bin", "b/c.bin"}
    json.dumps(info)  # JSON-ready


def test_a_parsed_bundle_is_described_without_a_file_name(signed: Path) -> None:
    bundle = parse_bundle((signed / "model.sig").read_bytes())
    described = omsign.describe_signature(bundle)
    assert isinstance(described, SignatureDescription)
    assert described.signature is None
    assert described == dataclasses.replace(describe_signature(signed), signature=None)


def test_the_v0_2_format_and_a_certificate_chain_are_described() -> None:
    described = describe_signature(COMPAT / "v0.2.0-certificate" / "model.sig")
    assert described.method == "certificate"
    assert described.format == "v0.2 (deprecated Digests/v0.1)"
    assert described.root_digest is None
    assert described.signer["certificate"]["subject"]
    assert [i.name for i in described.resources] == ["signme-1", "signme-2"]


def test_a_sigstore_signature_names_its_identity() -> None:
    described = describe_signature(COMPAT / "v1.1.0-sigstore")
    assert described.method == "sigstore"
    assert described.signer["identity"] == "stefanb@us.ibm.com"
    assert described.signer["log_index"] == 598151086


def test_an_unreadable_statement_is_reported_not_raised(tmp_path: Path, p256: KeyPair) -> None:
    from hostile.signed import write_signed

    sig = tmp_path / "bad.sig"
    write_signed(sig, p256.private, b"not a statement")
    described = describe_signature(sig)
    assert described.statement_error is not None
    assert described.statement_error.startswith(f"{sig}: malformed statement")
    assert described.to_json()["statement_error"] == described.statement_error
    assert "resources" not in described.to_json()


def test_the_cli_inspect_module_imports_no_private_backend_module() -> None:
    tree = ast.parse((SRC / "cli" / "_inspect.py").read_text())
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    assert not [name for name in imported if name.startswith("omsign.backends")]
    assert not [name for name in imported if name in ("json", "omsign.bundle")]


def test_describe_signature_is_exported_lazily() -> None:
    code = (
        "import sys, omsign; assert 'omsign.inspect' not in sys.modules; "
        "f = omsign.describe_signature; assert 'omsign.inspect' in sys.modules; "
        "assert 'describe_signature' in omsign.__all__"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _raw_key_bundle(tmp_path: Path, raw: bytes) -> Path:
    material = Material("key", key_raw=raw, key_details="PKIX_ECDSA_P256_SHA_256")
    sig = tmp_path / "old.sig"
    sig.write_text(json.dumps(build_bundle(b"{}", b"sig", material)))
    return sig


def test_an_older_bundle_with_raw_key_bytes_is_named_by_the_key_fingerprint(
    tmp_path: Path, p256: KeyPair
) -> None:
    described = describe_signature(_raw_key_bundle(tmp_path, p256.public.read_bytes()))
    (public,) = load_public_keys(p256.public)
    assert described.signer == {
        "key_hint": key_hint(public),
        "key_details": "PKIX_ECDSA_P256_SHA_256",
    }
    assert described.statement_error is not None  # "{}" is no statement


def test_unreadable_raw_key_bytes_are_reported_not_raised(tmp_path: Path) -> None:
    described = describe_signature(_raw_key_bundle(tmp_path, b"\x30\x03garbage"))
    assert described.signer["key_raw"] == "unreadable"


def test_a_single_file_model_finds_its_signature(tmp_path: Path, p256: KeyPair) -> None:
    model = tmp_path / "weights.bin"
    model.write_bytes(b"weights")
    omsign.sign(model, key=p256.private)
    described = describe_signature(model)
    assert described.signature == str(tmp_path / "weights.bin.sig")
    assert [i.name for i in described.resources] == ["weights.bin"]
    assert describe_signature(tmp_path / "weights.bin.sig") == described
