"""The command line: methods, exit codes 0/1/2, messages, JSON output, compat vectors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from cryptography.x509 import Certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from helpers.fixtures import COMPAT, CliResult, KeyPair, make_model, run_omsign_process
from helpers.pki import days, issue_leaf, make_ca, make_ec_key, now, write_private_key
from helpers.reports import parse_report

Cli = Callable[..., CliResult]


def test_sign_and_verify_with_a_key_for_each_curve(cli: Cli, model: Path, keypair: KeyPair) -> None:
    signed = cli("sign", model, "--key", keypair.private)
    assert signed.code == 0, signed.err
    assert signed.out.startswith("sha256:")
    assert (model / "model.sig").exists()
    verified = cli("verify", model, "--key", keypair.public)
    assert verified.code == 0, verified.err
    assert "verified: 4 files signed by key sha256:" in verified.out


def test_digest_matches_the_signed_root_digest(cli: Cli, model: Path, p256: KeyPair) -> None:
    signed = cli("sign", model, "--key", p256.private, "--hash", "blake3", "--shard-size", "64k")
    digest = cli(
        "digest",
        model,
        "--hash",
        "blake3",
        "--shard-size",
        "64000",
        "--ignore-paths",
        model / "model.sig",
    )
    assert digest.code == 0
    assert digest.out == signed.out


def test_changed_file_fails_with_exit_1_naming_the_file(
    cli: Cli, model: Path, p256: KeyPair
) -> None:
    cli("sign", model, "--key", p256.private)
    (model / "config.json").write_text('{"hidden_size": 9}\n')
    result = cli("verify", model, "--key", p256.public)
    assert result.code == 1
    assert "changed: config.json" in result.err
    assert "Traceback" not in result.err


def test_missing_and_extra_files_are_reported(cli: Cli, model: Path, p256: KeyPair) -> None:
    cli("sign", model, "--key", p256.private)
    (model / "README.md").unlink()
    (model / "new.bin").write_bytes(b"new")
    result = cli("verify", model, "--key", p256.public, "--json")
    assert result.code == 1
    report = parse_report(result.out)
    assert report["verified"] is False
    assert report["difference"] == {
        "changed": [],
        "missing": ["README.md"],
        "unsigned": ["new.bin"],
    }


def test_ignore_unsigned_files_accepts_extra_files_but_checks_signed_ones(
    cli: Cli, model: Path, p256: KeyPair
) -> None:
    cli("sign", model, "--key", p256.private)
    (model / "extra.txt").write_text("x")
    assert cli("verify", model, "--key", p256.public).code == 1
    assert cli("verify", model, "--key", p256.public, "--ignore-unsigned-files").code == 0
    (model / "README.md").write_text("changed")
    assert cli("verify", model, "--key", p256.public, "--ignore-unsigned-files").code == 1


def test_ignore_paths_are_recorded_and_applied(cli: Cli, model: Path, p256: KeyPair) -> None:
    (model / "cache").mkdir()
    (model / "cache" / "tmp").write_text("scratch")
    assert cli("sign", model, "--key", p256.private, "--ignore-paths", model / "cache").code == 0
    inspected = parse_report(cli("inspect", model / "model.sig", "--json").out)
    assert inspected["serialization"]["ignore_paths"] == [
        ".git",
        ".gitattributes",
        ".github",
        ".gitignore",
        "cache",
        "claims.jsonl",
        "model.sig",
        "model.sig.d",
    ]
    (model / "cache" / "tmp").write_text("changed scratch")
    assert cli("verify", model, "--key", p256.public).code == 0


def test_wrong_key_fails_with_exit_1(cli: Cli, model: Path, p256: KeyPair, tmp_path: Path) -> None:
    other = make_ec_key("P-256")
    from helpers.pki import write_public_key

    write_public_key(tmp_path / "other.pem", other)
    cli("sign", model, "--key", p256.private)
    result = cli("verify", model, "--key", tmp_path / "other.pem")
    assert result.code == 1
    assert "signed with a different key" in result.err


def test_verify_json_lists_signer_digest_and_files(cli: Cli, model: Path, p256: KeyPair) -> None:
    signed = cli("sign", model, "--key", p256.private)
    report = parse_report(cli("verify", model, "--key", p256.public, "--json").out)
    assert report["verified"] is True
    assert report["root_digest"] == signed.out.strip()
    assert report["method"] == "key"
    assert report["files"]["verified"] == [
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer/tokenizer.json",
    ]


def test_single_file_model_signature_sits_beside_it(
    cli: Cli, tmp_path: Path, p256: KeyPair
) -> None:
    f = tmp_path / "weights.bin"
    f.write_bytes(os.urandom(5000))
    assert cli("sign", f, "--key", p256.private).code == 0
    assert (tmp_path / "weights.bin.sig").exists()
    assert cli("verify", f, "--key", p256.public).code == 0
    f.write_bytes(os.urandom(5000))
    assert cli("verify", f, "--key", p256.public).code == 1


def test_encrypted_key_password_from_file_or_environment(
    cli: Cli, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = make_ec_key("P-384")
    write_private_key(tmp_path / "enc.pem", key, password=b"s3cret")
    (tmp_path / "pw").write_text("s3cret\n")
    assert (
        cli("sign", model, "--key", tmp_path / "enc.pem", "--password-file", tmp_path / "pw").code
        == 0
    )
    (tmp_path / "bad").write_text("nope\n")
    wrong = cli("sign", model, "--key", tmp_path / "enc.pem", "--password-file", tmp_path / "bad")
    assert wrong.code == 2
    assert "wrong password" in wrong.err
    monkeypatch.setenv("OMSIGN_PASSWORD", "s3cret")
    assert cli("sign", model, "--key", tmp_path / "enc.pem").code == 0


def test_usage_and_environment_errors_exit_2(cli: Cli, model: Path, p256: KeyPair) -> None:
    missing_key = cli("sign", model, "--key", model / "nope.pem")
    assert missing_key.code == 2
    assert "nope.pem: private key file not found" in missing_key.err
    no_signature = cli("verify", model, "--key", p256.public)
    assert no_signature.code == 1  # nothing proves the model: a failed verification
    assert f"no signature found (looked for {model / 'model.sig'})" in no_signature.err
    assert cli("verify", model / "absent", "--key", p256.public).code == 2
    both = cli("verify", model, "--key", p256.public, "--cert-chain", p256.public)
    assert both.code == 2
    assert "exactly one way" in both.err
    assert "(got --key, --cert-chain)" in both.err  # the CLI names its own flags
    assert "key=" not in both.err
    assert cli("sign", model, "--key", p256.private, "--hash", "md5").code == 2


def test_bad_signature_file_is_a_verification_failure(cli: Cli, model: Path, p256: KeyPair) -> None:
    (model / "model.sig").write_text("{not json")
    result = cli("verify", model, "--key", p256.public)
    assert result.code == 1
    assert "malformed signature" in result.err


def test_symlink_in_model_is_refused_unless_allowed(cli: Cli, model: Path, p256: KeyPair) -> None:
    (model / "alias.json").symlink_to("config.json")
    refused = cli("sign", model, "--key", p256.private)
    assert refused.code == 2
    assert "symbolic link" in refused.err
    assert cli("sign", model, "--key", p256.private, "--allow-symlinks").code == 0
    assert cli("verify", model, "--key", p256.public).code == 0


def test_public_key_export_matches_the_signing_key(cli: Cli, p256: KeyPair) -> None:
    result = cli("public-key", "--key", p256.private)
    assert result.code == 0
    assert result.out == p256.public.read_text()


class TestCertificateMethod:
    @pytest.fixture
    def pki(self, tmp_path: Path) -> dict[str, Path]:
        root = make_ca("Test Root").write(tmp_path, "root")
        inter = make_ca("Test Intermediate", parent=root).write(tmp_path, "inter")
        leaf = issue_leaf(inter, make_ec_key("P-384"), emails=["signer@example.com"]).write(
            tmp_path, "leaf"
        )
        assert leaf.key_path and leaf.cert_path and root.cert_path and inter.cert_path
        return {
            "root": root.cert_path,
            "inter": inter.cert_path,
            "leaf": leaf.cert_path,
            "key": leaf.key_path,
            "dir": tmp_path,
        }

    def test_chain_to_the_given_root_verifies(
        self, cli: Cli, model: Path, pki: dict[str, Path]
    ) -> None:
        signed = cli(
            "sign", model, "--key", pki["key"], "--cert", pki["leaf"], "--cert-chain", pki["inter"]
        )
        assert signed.code == 0, signed.err
        result = cli("verify", model, "--cert-chain", pki["root"])
        assert result.code == 0, result.err
        assert "signer@example.com" in result.out

    def test_untrusted_root_is_rejected(self, cli: Cli, model: Path, pki: dict[str, Path]) -> None:
        other = make_ca("Other Root").write(pki["dir"], "other")
        cli("sign", model, "--key", pki["key"], "--cert", pki["leaf"], "--cert-chain", pki["inter"])
        result = cli("verify", model, "--cert-chain", other.cert_path)
        assert result.code == 1
        assert "does not chain to a trusted certificate" in result.err

    def test_certificate_for_another_key_is_refused_at_signing(
        self, cli: Cli, model: Path, pki: dict[str, Path], p256: KeyPair
    ) -> None:
        result = cli("sign", model, "--key", p256.private, "--cert", pki["leaf"])
        assert result.code == 2
        assert "does not belong to the signing key" in result.err

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"not_before": now() - days(30), "not_after": now() - days(1)}, "not valid at"),
            ({"not_before": now() + days(1), "not_after": now() + days(30)}, "not valid at"),
            ({"key_usage_digital_signature": False}, "does not allow digital signatures"),
            (
                {"eku_code_signing": False, "extra_ekus": [ExtendedKeyUsageOID.SERVER_AUTH]},
                "does not allow code signing",
            ),
            (
                {
                    "eku_code_signing": False,
                    "extra_ekus": [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE],
                },
                "anyExtendedKeyUsage alone is not enough",
            ),
        ],
        ids=["expired", "not-yet-valid", "no-digital-signature", "no-code-signing", "any-eku-only"],
    )
    def test_unusable_leaf_is_rejected(
        self, cli: Cli, model: Path, pki: dict[str, Path], kwargs: dict[str, object], message: str
    ) -> None:
        from cryptography import x509

        from helpers.pki import Issued

        root = Issued(
            x509.load_pem_x509_certificate(pki["root"].read_bytes()),
            _load_key(pki["dir"] / "root.key"),
        )
        leaf = issue_leaf(root, make_ec_key(), **kwargs).write(pki["dir"], "bad")  # type: ignore[arg-type]
        refused = cli("sign", model, "--key", leaf.key_path, "--cert", leaf.cert_path)
        assert refused.code == 2
        assert "cannot sign" in refused.err
        assert message in refused.err
        assert not (model / "model.sig").exists()
        _write_certificate_bundle(model, leaf.key_path, leaf.cert_path)  # made all the same
        result = cli("verify", model, "--cert-chain", pki["root"])
        assert result.code == 1
        assert message in result.err

    @pytest.mark.parametrize(
        ("kwargs", "warning"),
        [
            ({"key_usage": False}, ""),
            ({"eku_code_signing": False}, ""),
            ({"is_ca": True}, "is a CA certificate"),
        ],
        ids=["no-key-usage", "no-extended-key-usage", "ca-leaf"],
    )
    def test_leaf_unrestricted_by_absent_usages_signs_and_verifies(
        self, cli: Cli, model: Path, pki: dict[str, Path], kwargs: dict[str, object], warning: str
    ) -> None:
        from cryptography import x509

        from helpers.pki import Issued

        root = Issued(
            x509.load_pem_x509_certificate(pki["root"].read_bytes()),
            _load_key(pki["dir"] / "root.key"),
        )
        leaf = issue_leaf(root, make_ec_key(), **kwargs).write(pki["dir"], "open")  # type: ignore[arg-type]
        signed = cli("sign", model, "--key", leaf.key_path, "--cert", leaf.cert_path)
        assert signed.code == 0, signed.err
        assert warning in signed.err
        result = cli("verify", model, "--cert-chain", pki["root"])
        assert result.code == 0, result.err
        assert warning in result.err

    def test_leaf_of_a_tls_only_intermediate_is_refused(
        self, cli: Cli, model: Path, pki: dict[str, Path]
    ) -> None:
        from cryptography import x509

        from helpers.pki import Issued, build_certificate, key_usage_extension, write_certs

        root = Issued(
            x509.load_pem_x509_certificate(pki["root"].read_bytes()),
            _load_key(pki["dir"] / "root.key"),
        )
        tls_ca = build_certificate(
            subject="TLS issuing CA",
            key=make_ec_key(),
            issuer=root,
            not_before=None,
            not_after=None,
            extensions=[
                (x509.BasicConstraints(ca=True, path_length=None), True),
                (key_usage_extension(cert_sign=True), True),
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            ],
        )
        leaf = issue_leaf(tls_ca, make_ec_key()).write(pki["dir"], "tls-issued")
        chain = write_certs(pki["dir"] / "tls-ca.crt", [tls_ca.cert])
        args = ("--key", leaf.key_path, "--cert", leaf.cert_path, "--cert-chain", chain)
        refused = cli("sign", model, *args)
        assert refused.code == 2
        assert "TLS issuing CA" in refused.err
        assert "may not issue code-signing" in refused.err
        _write_certificate_bundle(model, leaf.key_path, leaf.cert_path, [tls_ca.cert])
        result = cli("verify", model, "--cert-chain", pki["root"])
        assert result.code == 1
        assert "may not issue code-signing" in result.err


def _write_certificate_bundle(
    model: Path, key_path: Path, cert_path: Path, chain: Sequence[Certificate] = ()
) -> None:
    """Signs ``model`` with a certificate the signer would refuse, bypassing its checks."""

    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from omsign.backends._pem import load_pem_signing_key
    from omsign.bundle import Material, build_bundle, write_bundle
    from omsign.dsse import PAYLOAD_TYPE, pae
    from omsign.manifest import Serialization, compute_manifest
    from omsign.statement import encode_statement

    key = load_pem_signing_key(key_path, lambda _prompt: None)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    payload = encode_statement(compute_manifest(model, Serialization()), model.name)
    ders = (cert.public_bytes(Encoding.DER), *(c.public_bytes(Encoding.DER) for c in chain))
    material = Material("certificate", certificates=ders)
    bundle = build_bundle(payload, key.sign(pae(PAYLOAD_TYPE, payload)), material)
    write_bundle(model / "model.sig", bundle)


def _load_key(path: Path):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(path.read_bytes(), password=None)


class TestCompatVectors:
    def test_v1_0_elliptic_key_single_file(
        self, cli: Cli, copy_vector: Callable[[str], Path]
    ) -> None:
        d = copy_vector("v1.0.0-elliptic-key")
        args = (
            "verify",
            d / "signme-1",
            "--signature",
            d / "model.sig",
            "--key",
            COMPAT / "keys" / "signing-key-pub.pem",
        )
        assert cli(*args).code == 0
        (d / "signme-1").write_bytes(b"tampered")
        assert cli(*args).code == 1

    def test_v0_2_certificate_legacy_format(
        self, cli: Cli, copy_vector: Callable[[str], Path]
    ) -> None:
        d = copy_vector("v0.2.0-certificate")
        args = ("verify", d, "--cert-chain", COMPAT / "keys" / "ca-cert.pem")
        result = cli(*args)
        assert result.code == 0, result.err
        assert "deprecated v0.2 format" in result.err
        (d / "signme-2").write_bytes(b"tampered")
        assert cli(*args).code == 1

    def test_v0_2_signature_bytes_changed_is_rejected(
        self, cli: Cli, copy_vector: Callable[[str], Path]
    ) -> None:
        d = copy_vector("v0.2.0-certificate")
        bundle = json.loads((d / "model.sig").read_text())
        sig = bundle["dsseEnvelope"]["signatures"][0]["sig"]
        bundle["dsseEnvelope"]["signatures"][0]["sig"] = (
            sig[:20] + ("A" if sig[20] != "A" else "B") + sig[21:]
        )
        (d / "model.sig").write_text(json.dumps(bundle))
        assert cli("verify", d, "--cert-chain", COMPAT / "keys" / "ca-cert.pem").code == 1

    def test_v1_1_sigstore_offline(self, cli: Cli, copy_vector: Callable[[str], Path]) -> None:
        d = copy_vector("v1.1.0-sigstore")
        args = (
            "verify",
            d,
            "--identity",
            "stefanb@us.ibm.com",
            "--issuer",
            "https://sigstore.verify.ibm.com/oauth2",
            "--offline",
        )
        result = cli(*args)
        assert result.code == 0, result.err
        assert cli(*args[:3], "someone@example.com", *args[4:]).code == 1
        (d / "signme-1").write_bytes(b"tampered")
        assert cli(*args).code == 1


def test_help_and_version_run_as_a_process() -> None:
    assert "omsign" in run_omsign_process("--version").out
    helped = run_omsign_process("--help")
    assert helped.code == 0
    assert "omsign sign MODEL --key private.pem" in helped.out
    for command in ("sign", "verify", "digest", "inspect", "public-key"):
        assert run_omsign_process(command, "--help").code == 0


def test_cli_reports_missing_signature_without_traceback(tmp_path: Path, p256: KeyPair) -> None:
    m = make_model(tmp_path / "m")
    result = run_omsign_process("verify", m, "--key", p256.public)
    assert result.code == 1  # a missing signature is a failed verification
    assert result.err.strip() == (
        f"omsign: error: {m}: no signature found (looked for {m / 'model.sig'}); "
        "sign the model first, or give the signature's path with --signature"
    )
    shutil.rmtree(m)


def test_encrypted_key_without_password_and_without_terminal_says_how(
    model: Path, tmp_path: Path
) -> None:
    write_private_key(tmp_path / "enc.pem", make_ec_key("P-256"), password=b"pw")
    env = {k: v for k, v in os.environ.items() if k != "OMSIGN_PASSWORD"}
    result = run_omsign_process(
        "sign", model, "--key", tmp_path / "enc.pem", stdin=subprocess.DEVNULL, env=env
    )
    assert result.code == 2
    assert "--password-file" in result.err
    assert "Warning" not in result.err


def test_progress_bar_is_drawn_on_a_terminal_and_not_in_a_pipe(
    tmp_path: Path, p256: KeyPair
) -> None:
    import pty

    m = make_model(tmp_path / "m", {"w.bin": os.urandom(8 << 20)})
    master, slave = pty.openpty()
    exe = Path(sys.executable).parent / "omsign"
    proc = subprocess.run(
        [str(exe), "sign", str(m), "--key", str(p256.private)],
        stdout=subprocess.PIPE,
        stderr=slave,
        check=False,
        timeout=60,
    )
    os.close(slave)
    drawn = b""
    try:
        while chunk := os.read(master, 65536):
            drawn += chunk
    except OSError:  # the terminal closed
        pass
    os.close(master)
    assert proc.returncode == 0
    assert b"hashing [" in drawn
    assert b"100.0%" in drawn
    piped = run_omsign_process("sign", m, "--key", p256.private)
    assert "hashing [" not in piped.err


def test_signed_file_replaced_by_a_link_outside_the_model_fails(
    cli: Cli, model: Path, p256: KeyPair, tmp_path: Path
) -> None:
    cli("sign", model, "--key", p256.private)
    outside = tmp_path / "outside.json"
    outside.write_bytes((model / "config.json").read_bytes())  # identical bytes
    (model / "config.json").unlink()
    (model / "config.json").symlink_to(outside)
    result = cli("verify", model, "--key", p256.public)
    assert result.code == 1
    assert "config.json: is a symbolic link" in result.err


def test_look_alike_names_are_reported_in_the_json_report(
    cli: Cli, tmp_path: Path, p256: KeyPair
) -> None:
    m = make_model(
        tmp_path / "m",
        {"Model.bin": b"1", "model.bin": b"2", "caf\u00e9": b"3", "cafe\u0301": b"4"},
    )
    signed = cli("sign", m, "--key", p256.private)
    assert signed.code == 0
    assert "model.bin" in signed.err
    report = parse_report(cli("verify", m, "--key", p256.public, "--json").out)
    assert report["verified"] is True
    assert any("Model.bin" in w and "model.bin" in w for w in report["warnings"])
    assert any("caf" in w for w in report["warnings"]) and len(report["warnings"]) == 2


def test_digest_leaves_out_the_signature_as_signing_does(
    cli: Cli, model: Path, p256: KeyPair
) -> None:
    signed = cli("sign", model, "--key", p256.private)
    assert cli("digest", model).out == signed.out
    custom = model / "release.sig"
    again = cli(
        "sign",
        model,
        "--key",
        p256.private,
        "--signature",
        custom,
        "--ignore-paths",
        model / "model.sig",
    )
    assert (
        cli("digest", model, "--signature", custom, "--ignore-paths", model / "model.sig").out
        == again.out
    )


def test_library_takes_a_single_path_where_it_takes_several(model: Path, tmp_path: Path) -> None:
    import omsign

    root = make_ca("Root").write(tmp_path / "pki", "root")
    inter = make_ca("Inter", parent=root).write(tmp_path / "pki", "inter")
    leaf = issue_leaf(inter, make_ec_key()).write(tmp_path / "pki", "leaf")
    omsign.sign(model, key=leaf.key_path, certificate=leaf.cert_path, chain=inter.cert_path)
    result = omsign.verify(model, cert_chain=root.cert_path, files="config.json")
    assert result.verified == ("config.json",)
    assert omsign.digest(model, ignore_paths=str(model / "README.md")) != result.root_digest


def test_names_cannot_forge_output_lines(cli: Cli, tmp_path: Path, p256: KeyPair) -> None:
    evil = "a\nverified: all good\x1b[2J\u202e"
    m = make_model(tmp_path / "m", {evil: b"1", "b": b"2"})
    assert cli("sign", m, "--key", p256.private).code == 0
    (m / evil).write_bytes(b"changed")
    result = cli("verify", m, "--key", p256.public)
    assert result.code == 1
    assert "\nverified: all good" not in result.err
    assert "\x1b" not in result.err
    assert "\u202e" not in result.err
    assert "a\\x0averified: all good\\x1b[2J\\u202e" in result.err
    shown = cli("inspect", m / "model.sig").out
    assert "\nverified" not in shown
    assert "\x1b" not in shown


def test_public_key_output_errors_are_one_line_and_never_overwrite_a_private_key(
    cli: Cli, tmp_path: Path, p256: KeyPair
) -> None:
    missing_dir = cli("public-key", "--key", p256.private, "-o", tmp_path / "no" / "x.pem")
    assert missing_dir.code == 2
    assert "cannot write the public key" in missing_dir.err
    private_copy = tmp_path / "priv.pem"
    private_copy.write_bytes(p256.private.read_bytes())
    refused = cli("public-key", "--key", p256.private, "-o", private_copy)
    assert refused.code == 2
    assert "holds a private key" in refused.err
    assert private_copy.read_bytes() == p256.private.read_bytes()
    assert cli("public-key", "--key", p256.private, "-o", tmp_path / "pub.pem").code == 0
    assert (tmp_path / "pub.pem").read_bytes() == p256.public.read_bytes()


def test_workers_is_a_positive_count(cli: Cli, model: Path) -> None:
    assert cli("digest", model, "--workers", "0").code == 2
    assert cli("digest", model, "--workers", "1K").code == 2
    assert cli("digest", model, "--workers", "2").code == 0


def test_common_mistakes_get_messages_that_say_what_to_do(
    cli: Cli, model: Path, p256: KeyPair, tmp_path: Path
) -> None:
    cli("sign", model, "--key", p256.private)
    private_as_public = cli("verify", model, "--key", p256.private)
    assert private_as_public.code == 2
    assert "is a private key; verify with its public key" in private_as_public.err
    not_a_uri = cli("sign", model, "--pkcs11-uri", "token-label")
    assert not_a_uri.code == 2
    assert "not a 'pkcs11:' URI" in not_a_uri.err
    mixed = cli("sign", model, "--key", p256.private, "--identity-token", "x")
    assert mixed.code == 2
    assert "--identity-token is for Sigstore keyless signing" in mixed.err
    (tmp_path / "config.json").write_text("{}")
    not_a_bundle = cli("inspect", tmp_path / "config.json")
    assert not_a_bundle.code == 1
    assert "not a Sigstore bundle (no mediaType)" in not_a_bundle.err


def test_output_flags_work_after_the_command_and_flags_are_not_abbreviated(
    cli: Cli, model: Path, p256: KeyPair
) -> None:
    assert cli("sign", model, "--key", p256.private, "-q").err == ""
    quiet = cli("verify", model, "--key", p256.public, "--quiet")
    assert (quiet.code, quiet.out) == (0, "")
    assert cli("verify", model, "--key", p256.public, "--ignore-unsigned").code == 2
