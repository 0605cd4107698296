"""A policy file and today's flags decide alike, and a threshold hashes the model once."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import omsign
from helpers.audit import touched_under
from helpers.fixtures import make_model
from helpers.pki import (
    issue_leaf,
    make_ca,
    make_ec_key,
    write_certs,
    write_private_key,
    write_public_key,
)
from omsign.errors import VerificationError


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("equivalence")
    out: dict[str, Path] = {}
    for name in ("alice", "mallory"):
        key = make_ec_key()
        out[f"{name}.pem"] = write_private_key(d / f"{name}.pem", key)
        out[f"{name}.pub"] = write_public_key(d / f"{name}.pub", key)
    for name in ("ca", "rogue"):
        ca = make_ca(f"{name} root")
        out[f"{name}.crt"] = write_certs(d / f"{name}.crt", [ca.cert])
        leaf = issue_leaf(ca, name=f"{name} signer").write(d, f"{name}-leaf")
        assert leaf.key_path is not None and leaf.cert_path is not None
        out[f"{name}-leaf.key"], out[f"{name}-leaf.crt"] = leaf.key_path, leaf.cert_path
    return out


def _outcome(call: Any) -> str:
    try:
        call()
    except VerificationError as exc:
        return type(exc).__name__
    return "ok"


# (how the model is signed, what is done to it, trust flags, the same trust as a signer table,
#  scope flags, the same scope as the rule's files setting)
CASES = [
    ("key alice", "", {"key": "alice.pub"}, 'key = "{alice.pub}"', {}, None),
    ("key alice", "", {"key": "mallory.pub"}, 'key = "{mallory.pub}"', {}, None),
    ("key alice", "tamper", {"key": "alice.pub"}, 'key = "{alice.pub}"', {}, None),
    ("key alice", "unsign", {"key": "alice.pub"}, 'key = "{alice.pub}"', {}, None),
    ("key alice", "add", {"key": "alice.pub"}, 'key = "{alice.pub}"', {}, None),
    ("cert ca", "", {"cert_chain": "ca.crt"}, 'ca = {{ chain = "{ca.crt}" }}', {}, None),
    ("cert rogue", "", {"cert_chain": "ca.crt"}, 'ca = {{ chain = "{ca.crt}" }}', {}, None),
    ("cert ca", "", {"key": "alice.pub"}, 'key = "{alice.pub}"', {}, None),
    ("key alice", "", {"cert_chain": "ca.crt"}, 'ca = {{ chain = "{ca.crt}" }}', {}, None),
    ("key alice", "remove", {"key": "alice.pub"}, 'key = "{alice.pub}"', {}, "all"),
    (
        "key alice",
        "remove",
        {"key": "alice.pub"},
        'key = "{alice.pub}"',
        {"allow_missing": True},
        "present",
    ),
    (
        "key mallory",
        "remove",
        {"key": "alice.pub"},
        'key = "{alice.pub}"',
        {"allow_missing": True},
        "present",
    ),
]


@pytest.mark.parametrize(("signed", "change", "flags", "signer", "scope", "files"), CASES)
def test_a_one_signer_policy_decides_as_the_flags_do(
    tmp_path: Path,
    trust: dict[str, Path],
    signed: str,
    change: str,
    flags: dict[str, str],
    signer: str,
    scope: dict[str, Any],
    files: str | None,
) -> None:
    model = make_model(tmp_path / "models" / "m")
    method, who = signed.split()
    if method == "key":
        omsign.sign(model, key=trust[f"{who}.pem"])
    else:
        omsign.sign(model, key=trust[f"{who}-leaf.key"], certificate=trust[f"{who}-leaf.crt"])
    if change == "tamper":
        (model / "config.json").write_text("{}")
    elif change == "unsign":
        (model / "model.sig").unlink()
    elif change == "add":
        (model / "extra.bin").write_bytes(b"x")
    elif change == "remove":
        (model / "README.md").unlink()
    policy = tmp_path / "policy.toml"
    setting = f'files = "{files}"\n' if files else ""
    table = _fill(signer, trust)
    policy.write_text(
        f"version = 1\n[signers.s]\n{table}\n"
        f'[[rules]]\nmatch = "models/**"\nsigners = ["s"]\n{setting}'
    )
    given = {k: trust[v] for k, v in flags.items()}
    by_flags = _outcome(lambda: omsign.verify(model, **given, **scope))
    by_policy = _outcome(lambda: omsign.verify(model, policy=omsign.load_policy(policy)))
    assert by_policy == by_flags
    assert by_flags in (
        "ok",
        "SignatureError",
        "IdentityError",
        "IntegrityError",
        "SignatureNotFoundError",
        "MethodMismatchError",
    )


def _fill(template: str, trust: dict[str, Path]) -> str:
    out = template.replace("{{", "\0").replace("}}", "\1")
    for name, path in trust.items():
        out = out.replace("{" + name + "}", str(path))
    return out.replace("\0", "{").replace("\1", "}")


def test_five_signers_over_one_content_hash_it_once(tmp_path: Path) -> None:
    model = make_model(tmp_path / "models" / "m")
    keys = [make_ec_key() for _ in range(5)]
    lines = ["version = 1"]
    for i, key in enumerate(keys):
        write_private_key(tmp_path / f"k{i}.pem", key)
        write_public_key(tmp_path / f"k{i}.pub", key)
        omsign.sign(model, key=tmp_path / f"k{i}.pem", add=i > 0)
        lines.append(f'[signers.s{i}]\nkey = "{tmp_path}/k{i}.pub"')
    names = ", ".join(f'"s{i}"' for i in range(5))
    lines.append(f'[[rules]]\nmatch = "models/**"\nsigners = [{names}]\nthreshold = 5')
    (tmp_path / "policy.toml").write_text("\n".join(lines) + "\n")
    policy = omsign.load_policy(tmp_path / "policy.toml")
    size = sum(p.stat().st_size for p in model.rglob("*") if p.is_file() and ".sig" not in str(p))

    def measured(**trust: Any) -> tuple[Counter[str], int]:
        hashed: list[int] = []
        with touched_under(model) as seen:
            omsign.verify(model, progress=lambda done, _total: hashed.append(done), **trust)
        opened = Counter(
            e.split(" ", 1)[1] for e in seen if e.startswith("open ") and ".sig" not in e
        )
        return opened, max(hashed) if hashed else -1

    five_opens, five_bytes = measured(policy=policy)
    one_opens, one_bytes = measured(key=tmp_path / "k0.pub")
    assert five_bytes == one_bytes == size
    assert five_opens == one_opens
    files = {str(p) for p in model.rglob("*") if p.is_file() and ".sig" not in str(p)}
    assert {p: n for p, n in five_opens.items() if p in files} == dict.fromkeys(files, 1)
    shutil.rmtree(tmp_path / "models")
