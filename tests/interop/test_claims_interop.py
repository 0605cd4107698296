"""model_signing 1.1.1 verifies a model that has attestations (claims.jsonl) beside it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers.fixtures import CliResult, KeyPair, make_model

Run = Callable[..., CliResult]


def test_model_signing_verifies_a_model_with_claims_and_companions(
    cli: Run, reference: Run, tmp_path: Path, p256: KeyPair
) -> None:
    model = make_model(tmp_path / "model", {"config.json": b"{}\n", "w.bin": b"weights" * 999})
    assert cli("sign", model, "--key", p256.private).code == 0
    predicate = tmp_path / "eval.json"
    predicate.write_text('{"accuracy": 0.91}')
    attested = cli(
        "attest",
        model,
        "--key",
        p256.private,
        "--predicate-type",
        "https://example.com/evaluation/v1",
        "--predicate",
        predicate,
    )
    assert attested.code == 0, attested.err
    assert (model / "claims.jsonl").exists()
    (model / "model.sig.d").mkdir()  # another companion, created after signing
    (model / "model.sig.d" / "x.sig").write_text("{}")
    verify = (
        "verify",
        "key",
        model,
        "--signature",
        model / "model.sig",
        "--public_key",
        p256.public,
    )
    result = reference(*verify)
    assert result.code == 0, result.out + result.err
    (model / "w.bin").write_bytes(b"tampered")
    assert reference(*verify).code != 0


def test_a_signed_data_file_named_claims_jsonl_is_still_checked(
    cli: Run, reference: Run, tmp_path: Path, p256: KeyPair
) -> None:
    # model_signing knows nothing of attestations: a dataset file of that name is signed.
    model = make_model(tmp_path / "data", {"claims.jsonl": b'{"claim": "the sky is blue"}\n'})
    sig = model / "model.sig"  # its claims file would be data/claims.jsonl
    made = reference("sign", "key", model, "--signature", sig, "--private_key", p256.private)
    assert made.code == 0, made.out + made.err
    verified = cli("verify", model, "--signature", sig, "--key", p256.public, "--json")
    assert verified.code == 0, verified.err
    assert '"claims.jsonl"' in verified.out
    (model / "claims.jsonl").write_bytes(b'{"claim": "the sky is green"}\n')
    failed = cli("verify", model, "--signature", sig, "--key", p256.public)
    assert failed.code == 1
    assert "changed: claims.jsonl" in failed.err
