"""Mutation fuzzing of a valid bundle and of validly signed statements.

Each test runs a fixed number of seeded mutations (``harness.VOLUME``; ``OMSIGN_SLOW=1``
runs the full size) through the oracle and records how many ran. Unsigned fields may
change without failing verification; the payload and the signature may not.
"""

from __future__ import annotations

import base64
import json
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fuzz.harness import (
    SLOW,
    VOLUME,
    Target,
    encode_b64,
    make_target,
    mutate_b64_text,
    mutate_bytes,
    mutate_structure,
)
from helpers.pki import make_ec_key
from omsign.backends._ec import key_hint
from omsign.bundle import Material, build_bundle
from omsign.dsse import PAYLOAD_TYPE, pae

SEED = int(os.environ.get("OMSIGN_FUZZ_SEED", "20261125"))


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Target:
    """The signed model the mutations are checked against."""
    return make_target(tmp_path_factory.mktemp("fuzz-bundles"))


def _with(t: Target, *, payload: str | None = None, sig: str | None = None) -> dict[str, Any]:
    bundle = json.loads(t.text)
    env = bundle["dsseEnvelope"]
    if payload is not None:
        env["payload"] = payload
    if sig is not None:
        env["signatures"][0]["sig"] = sig
    return bundle


_ATTACKER = make_ec_key("P-256")


def _mutation(rng: random.Random, t: Target) -> tuple[str, bytes]:
    """One mutation of the valid bundle, named after what it changes."""
    kind = rng.randrange(8)
    if kind == 0:
        data = t.text
        for _ in range(rng.randint(1, 3)):
            data = mutate_bytes(rng, data)
        return "bundle-bytes", data
    if kind == 1:
        obj: Any = t.bundle
        for _ in range(rng.randint(1, 2)):
            obj = mutate_structure(rng, obj)
        return "bundle-structure", json.dumps(obj).encode()
    if kind == 2:
        payload = mutate_bytes(rng, t.payload)
        return "payload", json.dumps(_with(t, payload=encode_b64(rng, payload))).encode()
    if kind == 3:
        sig = mutate_bytes(rng, t.signature)
        return "signature", json.dumps(_with(t, sig=encode_b64(rng, sig))).encode()
    if kind == 4:
        env = t.bundle["dsseEnvelope"]
        if rng.random() < 0.5:
            bundle = _with(t, payload=mutate_b64_text(rng, env["payload"]))
        else:
            bundle = _with(t, sig=mutate_b64_text(rng, env["signatures"][0]["sig"]))
        return "base64-text", json.dumps(bundle).encode()
    if kind == 5:  # a changed payload, properly signed by a key that is not trusted
        payload = mutate_bytes(rng, t.payload)
        sig = _ATTACKER.sign(pae(PAYLOAD_TYPE, payload), _ecdsa())
        material = Material("key", key_hint=key_hint(t.key.public_key()))  # type: ignore[arg-type]
        return "attacker-key", json.dumps(build_bundle(payload, sig, material)).encode()
    if kind == 6:  # the same payload and signature, re-spelled: must still verify
        env = t.bundle["dsseEnvelope"]
        bundle = _with(
            t,
            payload=encode_b64(rng, t.payload),
            sig=encode_b64(rng, base64.b64decode(env["signatures"][0]["sig"])),
        )
        return "respelled", json.dumps(bundle, indent=rng.choice([None, 1])).encode()
    bundle = json.loads(t.text)  # unsigned fields only: keyid, hint, tlogEntries
    sig0 = bundle["dsseEnvelope"]["signatures"][0]
    choice = rng.randrange(3)
    if choice == 0:
        sig0["keyid"] = rng.choice([None, "", "anything"])
    elif choice == 1:
        bundle["verificationMaterial"]["publicKey"]["hint"] = rng.choice(["", "00" * 32])
    else:
        bundle["verificationMaterial"].pop("tlogEntries")
    return "unsigned-field", json.dumps(bundle).encode()


def _ecdsa() -> Any:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.ECDSA(hashes.SHA256())


def test_bundle_mutations_never_verify_a_changed_payload_or_signature(
    target: Target, record_property: Any
) -> None:
    rng = random.Random(SEED)
    outcomes: Counter[tuple[str, str]] = Counter()
    for _ in range(VOLUME["bundle"]):
        what, data = _mutation(rng, target)
        outcomes[what, target.oracle(data, what)] += 1
    total = sum(outcomes.values())
    record_property("mutations", total)
    assert total == VOLUME["bundle"]
    # The oracle is not trivially "reject": re-spelled bundles verify, and changed
    # payloads and signatures never do.
    assert outcomes["respelled", "accepted"] > 0
    assert outcomes["respelled", "rejected"] == 0
    for what in ("payload", "signature", "attacker-key"):
        assert outcomes[what, "rejected"] > 0


def _mutate_statement(rng: random.Random, statement: dict[str, Any]) -> bytes:
    obj: Any = statement
    predicate = statement["predicate"]
    if rng.random() < 0.3:  # aim at the names, where the dangerous values go
        obj = json.loads(json.dumps(statement))
        res = rng.choice(obj["predicate"]["resources"])
        res["name"] = rng.choice(
            [
                "../x",
                "/etc/passwd",
                "a\\b",
                "sub//x",
                "./config.json",
                "",
                "config.json\0",
                "sub/../config.json",
                "weights.bin:0:1",
                "CONFIG.json",
                res["name"] + "/",
            ]
        )
    else:
        for _ in range(rng.randint(1, 3)):
            obj = mutate_structure(rng, obj)
    del predicate
    return json.dumps(obj, ensure_ascii=rng.random() < 0.5).encode()


def test_signed_statement_mutations_are_accepted_only_when_true(
    target: Target, record_property: Any
) -> None:
    rng = random.Random(SEED + 1)
    statement = json.loads(target.payload)
    outcomes: Counter[str] = Counter()
    for _ in range(VOLUME["signed_statement"]):
        outcomes[target.signed_oracle(_mutate_statement(rng, statement), "signed")] += 1
    total = sum(outcomes.values())
    record_property("mutations", total)
    assert total == VOLUME["signed_statement"]
    assert outcomes["rejected"] > 0
    assert target.signed_oracle(target.payload, "unchanged") == "accepted"


def test_the_unmutated_bundle_verifies(target: Target, tmp_path: Path) -> None:
    assert target.oracle(target.text, "unchanged") == "accepted"


def test_slow_mode_runs_at_least_100000_mutations() -> None:
    # Each volume test asserts that it ran exactly its VOLUME entry.
    total = sum(VOLUME.values())
    if SLOW:
        assert total >= 100_000
    else:
        assert total < 10_000  # the regular run stays short
