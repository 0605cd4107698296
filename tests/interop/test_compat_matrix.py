"""Every method x hash x serialization x layout, both directions, against model_signing 1.1.1.

Methods: key, certificate, and Sigstore against the local instance (``local_sigstore``).
model_signing 1.1.1's library signs and verifies sha256, blake2 (BLAKE2b) and blake3, by
files or shards (its CLI only files/sha256). For each combination:

- omsign signs with ``--compat model-signing`` and model_signing's library verifies it,
  then rejects it once one byte of a file changed (blake3 shards, which model_signing
  never writes or verifies, is refused when signing);
- model_signing's library signs and omsign verifies it, then rejects the changed file;
- omsign's default (OMS) form is verified by model_signing exactly where the README's
  "Known differences" say: directories hashed by files with sha256 or blake3.

The reference runs in one process per batch of operations (see ``reference_lib.py``).
"""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from helpers.fixtures import CliResult, make_model, run_cli
from helpers.pki import issue_leaf, make_ca, make_ec_key, write_private_key, write_public_key
from services.sigstore_local import LocalSigstore

REFERENCE_LIB = Path(__file__).with_name("reference_lib.py")
# omsign's hash names and model_signing's library names for them.
HASHES = {"sha256": "sha256", "blake2b": "blake2", "blake3": "blake3"}
SHARD_SIZE = 1000
WEIGHTS = 12_345  # 13 shards: "w.bin:10000:11000" sorts before "w.bin:2000:3000"


@dataclass(frozen=True)
class Case:
    """One combination: signing method, hash, shard size (None: files), model layout."""

    method: str
    hash: str
    shard_size: int | None
    layout: str

    @property
    def id(self) -> str:
        ser = f"shards{self.shard_size}" if self.shard_size else "files"
        return f"{self.method}-{self.hash}-{ser}-{self.layout}"


CASES = [
    Case(*combo)
    for combo in itertools.product(
        ("key", "certificate", "sigstore"), HASHES, (None, SHARD_SIZE), ("dir", "file")
    )
]


def write_model(root: Path, layout: str) -> tuple[Path, Path]:
    """A model and the file to tamper with.

    ``dir`` has names that sort differently by code point and by path component
    (``a-b/`` and ``a/``) and a file of 13 shards; ``file`` is that file alone.
    """
    weights = bytes(range(256)) * (WEIGHTS // 256) + b"\x07" * (WEIGHTS % 256)
    if layout == "file":
        root.mkdir(parents=True)
        (root / "w.bin").write_bytes(weights)
        return root / "w.bin", root / "w.bin"
    make_model(
        root,
        {
            "config.json": b'{"layers": 2}\n',
            "a-b/y.txt": b"y\n",
            "a/x.txt": b"x\n",
            "weights/w.bin": weights,
        },
    )
    return root, root / "weights" / "w.bin"


@dataclass(frozen=True)
class Signers:
    """A key pair, a certificate chain (root, intermediate, leaf) and a Sigstore instance."""

    private: Path
    public: Path
    root: Path
    inter: Path
    leaf: Path
    leaf_key: Path
    sigstore: LocalSigstore


@pytest.fixture(scope="module")
def signers(tmp_path_factory: pytest.TempPathFactory, local_sigstore: LocalSigstore) -> Signers:
    d = tmp_path_factory.mktemp("signers")
    key = make_ec_key("P-256")
    write_private_key(d / "private.pem", key)
    write_public_key(d / "public.pem", key)
    root = make_ca("Matrix Root").write(d, "root")
    inter = make_ca("Matrix Intermediate", parent=root).write(d, "inter")
    leaf = issue_leaf(inter, make_ec_key("P-384")).write(d, "leaf")
    assert root.cert_path and inter.cert_path and leaf.cert_path and leaf.key_path
    return Signers(
        d / "private.pem",
        d / "public.pem",
        root.cert_path,
        inter.cert_path,
        leaf.cert_path,
        leaf.key_path,
        local_sigstore,
    )


Batch = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


@pytest.fixture(scope="module")
def reference_batch(tmp_path_factory: pytest.TempPathFactory, reference_python: Path) -> Batch:
    """Runs a list of operations in model_signing 1.1.1's library, in one process."""
    d = tmp_path_factory.mktemp("jobs")

    def run(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        path = d / f"jobs-{len(list(d.iterdir()))}.json"
        path.write_text(json.dumps(jobs, default=str))
        proc = subprocess.run(
            [str(reference_python), str(REFERENCE_LIB), str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        results: list[dict[str, Any]] = json.loads(proc.stdout)
        return results

    return run


def omsign_signing(case: Case, s: Signers) -> list[str | Path]:
    """omsign's signing flags for the case's method."""
    if case.method == "key":
        return ["--key", s.private]
    if case.method == "certificate":
        return ["--key", s.leaf_key, "--cert", s.leaf, "--cert-chain", s.inter]
    return [
        "--identity-token",
        s.sigstore.identity_token,
        "--trust-config",
        s.sigstore.trust_config,
    ]


def omsign_trust(case: Case, s: Signers) -> list[str | Path]:
    """omsign's verification flags for the case's method."""
    if case.method == "key":
        return ["--key", s.public]
    if case.method == "certificate":
        return ["--cert-chain", s.root]
    sigstore = s.sigstore
    return [
        "--identity",
        sigstore.identity,
        "--issuer",
        sigstore.issuer,
        "--trust-config",
        sigstore.trust_config,
    ]


def reference_signing(case: Case, s: Signers) -> dict[str, Any]:
    """The reference library's signer settings for the case's method."""
    if case.method == "key":
        return {"key": s.private}
    if case.method == "certificate":
        return {"key": s.leaf_key, "cert": s.leaf, "chain": [s.inter]}
    return {"identity_token": s.sigstore.identity_token, "trust_config": s.sigstore.trust_config}


def reference_trust(case: Case, s: Signers) -> dict[str, Any]:
    """The reference library's verifier settings for the case's method."""
    if case.method == "key":
        return {"public_key": s.public}
    if case.method == "certificate":
        return {"chain": [s.root]}
    sigstore = s.sigstore
    return {
        "identity": sigstore.identity,
        "issuer": sigstore.issuer,
        "trust_config": sigstore.trust_config,
    }


def omsign_sign(case: Case, model: Path, sig: Path, s: Signers, *compat: str) -> CliResult:
    shards = ["--shard-size", str(case.shard_size)] if case.shard_size else []
    how = omsign_signing(case, s)
    return run_cli("sign", model, "--signature", sig, "--hash", case.hash, *shards, *how, *compat)


def reference_verify_job(case: Case, model: Path, sig: Path, s: Signers) -> dict[str, Any]:
    return {"op": "verify", "model": model, "signature": sig, **reference_trust(case, s)}


# omsign signs, model_signing verifies ------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    signed: CliResult
    verified: dict[str, Any] | None = None
    after_tamper: dict[str, Any] | None = None
    omsign_verified: CliResult | None = None


@pytest.fixture(scope="module")
def omsign_compat(
    tmp_path_factory: pytest.TempPathFactory, signers: Signers, reference_batch: Batch
) -> dict[str, Outcome]:
    base = tmp_path_factory.mktemp("omsign-compat")
    jobs, signed, ours = [], {}, {}
    for case in CASES:
        model, target = write_model(base / case.id, case.layout)
        sig = base / f"{case.id}.sig"
        signed[case.id] = omsign_sign(case, model, sig, signers, "--compat", "model-signing")
        if signed[case.id].code == 0:
            trust = omsign_trust(case, signers)
            ours[case.id] = run_cli("verify", model, "--signature", sig, *trust)
            verify = reference_verify_job(case, model, sig, signers)
            jobs += [verify, {"op": "tamper", "file": target, "offset": 5000}, verify]
    results = iter(reference_batch(jobs))
    out = {}
    for case in CASES:
        if signed[case.id].code != 0:
            out[case.id] = Outcome(signed[case.id])
            continue
        verified, _, after = next(results), next(results), next(results)
        out[case.id] = Outcome(signed[case.id], verified, after, ours[case.id])
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_model_signing_verifies_omsign_compat_signatures(
    case: Case, omsign_compat: dict[str, Outcome]
) -> None:
    outcome = omsign_compat[case.id]
    if case.hash == "blake3" and case.shard_size:
        assert outcome.signed.code == 2
        assert "model_signing 1.1.1 cannot verify blake3 shards" in outcome.signed.err
        return
    assert outcome.signed.code == 0, outcome.signed.err
    assert outcome.omsign_verified and outcome.omsign_verified.code == 0  # omsign reads both
    assert outcome.verified and outcome.verified["ok"], outcome.verified
    assert outcome.after_tamper and not outcome.after_tamper["ok"]
    changed = "." if case.layout == "file" else "weights/w.bin"
    assert "Hash mismatch for" in outcome.after_tamper["error"]
    assert changed in outcome.after_tamper["error"]


SPEC_FORM = [c for c in CASES if c.method == "key"]


@pytest.fixture(scope="module")
def omsign_spec_form(
    tmp_path_factory: pytest.TempPathFactory, signers: Signers, reference_batch: Batch
) -> dict[str, dict[str, Any]]:
    base = tmp_path_factory.mktemp("omsign-spec")
    jobs = []
    for case in SPEC_FORM:
        model, _ = write_model(base / case.id, case.layout)
        sig = base / f"{case.id}.sig"
        signed = omsign_sign(case, model, sig, signers)
        assert signed.code == 0, signed.err
        jobs.append(reference_verify_job(case, model, sig, signers))
    return dict(zip((c.id for c in SPEC_FORM), reference_batch(jobs), strict=True))


@pytest.mark.parametrize("case", SPEC_FORM, ids=lambda c: c.id)
def test_model_signing_verifies_the_oms_form_only_where_documented(
    case: Case, omsign_spec_form: dict[str, dict[str, Any]]
) -> None:
    """README "Known differences": model_signing 1.1.1 rejects the OMS form for a single
    file (it expects "."), for blake2b (it knows the name "blake2") and for shards (it
    expects "<hash>-sharded-<N>"); directories by files with sha256 or blake3 verify."""
    expected = case.layout == "dir" and case.shard_size is None and case.hash != "blake2b"
    result = omsign_spec_form[case.id]
    assert result["ok"] == expected, result


# model_signing signs, omsign verifies ------------------------------------------------


@pytest.fixture(scope="module")
def reference_signed(
    tmp_path_factory: pytest.TempPathFactory, signers: Signers, reference_batch: Batch
) -> dict[str, tuple[Path, Path, Path]]:
    base = tmp_path_factory.mktemp("reference-signed")
    jobs, made = [], {}
    for case in CASES:
        model, target = write_model(base / case.id, case.layout)
        sig = base / f"{case.id}.sig"
        how = reference_signing(case, signers)
        jobs.append(
            {
                "op": "sign",
                "model": model,
                "signature": sig,
                "hash": HASHES[case.hash],
                "shard_size": case.shard_size,
                **how,
            }
        )
        made[case.id] = (model, sig, target)
    for job, result in zip(jobs, reference_batch(jobs), strict=True):
        assert result["ok"], (job, result)
    return made


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_omsign_verifies_model_signing_signatures(
    case: Case, signers: Signers, reference_signed: dict[str, tuple[Path, Path, Path]]
) -> None:
    model, sig, target = reference_signed[case.id]
    verify = ("verify", model, "--signature", sig, *omsign_trust(case, signers))
    result = run_cli(*verify)
    assert result.code == 0, result.err
    data = bytearray(target.read_bytes())
    data[5000] ^= 1
    target.write_bytes(bytes(data))
    failed = run_cli(*verify)
    assert failed.code == 1, failed.err
    assert "changed: " in failed.err
    assert ("w.bin" if case.layout == "file" else "weights/w.bin") in failed.err


# omsign digest and model_signing's root digest --------------------------------------

DIGEST_CASES = [
    Case("none", *combo)
    for combo in itertools.product(HASHES, (None, SHARD_SIZE), ("dir", "file", "plain"))
    if combo[:2] != ("blake3", SHARD_SIZE)  # refused with --compat: see the test below
]


@pytest.fixture(scope="module")
def digests(
    tmp_path_factory: pytest.TempPathFactory, reference_batch: Batch
) -> dict[str, tuple[str, str, str]]:
    """(model_signing's root digest, omsign's default digest, omsign's compat digest)."""
    base = tmp_path_factory.mktemp("digests")
    jobs, ours = [], {}
    for case in DIGEST_CASES:
        if case.layout == "plain":  # code point and path orders agree; one shard a file
            model = make_model(
                base / case.id,
                {"config.json": b"{}\n", "tokenizer.json": b"{}\n", "w.bin": b"\x01" * 900},
            )
        else:
            model, _ = write_model(base / case.id, case.layout)
        shards = ["--shard-size", str(case.shard_size)] if case.shard_size else []
        runs = [
            run_cli("digest", model, "--hash", case.hash, *shards, *c)
            for c in ([], ["--compat", "model-signing"])
        ]
        for r in runs:
            assert r.code == 0, r.err
        ours[case.id] = tuple(r.out.strip().removeprefix("sha256:") for r in runs)
        jobs.append(
            {
                "op": "digest",
                "model": model,
                "hash": HASHES[case.hash],
                "shard_size": case.shard_size,
            }
        )
    results = reference_batch(jobs)
    return {
        case.id: (result["digest"], *ours[case.id])
        for case, result in zip(DIGEST_CASES, results, strict=True)
    }


@pytest.mark.parametrize("case", DIGEST_CASES, ids=lambda c: c.id)
def test_compat_digest_equals_model_signing(
    case: Case, digests: dict[str, tuple[str, str, str]]
) -> None:
    theirs, _, compat = digests[case.id]
    assert compat == theirs


@pytest.mark.parametrize("case", DIGEST_CASES, ids=lambda c: c.id)
def test_default_digest_differs_exactly_where_the_orders_differ(
    case: Case, digests: dict[str, tuple[str, str, str]]
) -> None:
    """OMS 6.4 sorts resources by code point of the name, shard suffix included;
    model_signing sorts by path components, then shard offsets as numbers. The root
    digests agree unless those orders differ: names with characters below "/" ("a-b/"
    against "a/") or a file of shards whose offsets have different lengths (10 shards
    and more)."""
    theirs, default, _ = digests[case.id]
    same_order = case.layout == "plain" or (case.layout == "file" and case.shard_size is None)
    assert (default == theirs) == same_order


def test_compat_refuses_blake3_shards_before_hashing(tmp_path: Path, signers: Signers) -> None:
    """model_signing 1.1.1 hashes blake3 by whole files even when asked for shards, and
    cannot verify blake3 shards: omsign refuses that form for sign and digest alike."""
    model, _ = write_model(tmp_path / "model", "dir")
    flags = ("--hash", "blake3", "--shard-size", "1000", "--compat", "model-signing")
    for args in (("sign", model, "--key", signers.private), ("digest", model)):
        refused = run_cli(*args, *flags)
        assert refused.code == 2
        assert "cannot verify blake3 shards" in refused.err
    assert not (model / "model.sig").exists()
