"""Mutation fuzzing of certificate-method bundles: the chain is untrusted input too.

Certificates are mutated as DER bytes, the chain is reordered or padded with copies,
and the bundle's structure is edited. Verification under a CA policy must reject every
change to the chain that matters and never crash (a lazily parsed certificate used to
fail with ``ValueError`` only when its subject or extensions were first read).
"""

from __future__ import annotations

import base64
import json
import os
import random
from collections import Counter
from typing import Any

import pytest

from fuzz.harness import SLOW, mutate_bytes, mutate_structure
from helpers.pki import Issued, issue_leaf, make_ca
from omsign.backends._certificate import CertificateBundleSigner
from omsign.backends._pem import PemSigningKey
from omsign.bundle import build_bundle, parse_bundle
from omsign.errors import Error
from omsign.policy import CertificatePolicy, verify_signature

SEED = int(os.environ.get("OMSIGN_FUZZ_SEED", "20261125"))
COUNT = 10_000 if SLOW else 400
PAYLOAD = b'{"fuzz": "certificate method"}'


@pytest.fixture(scope="module")
def chain() -> tuple[dict[str, Any], CertificatePolicy, Issued]:
    """A valid certificate bundle (leaf and intermediate) and the policy trusting its root."""
    root = make_ca("fuzz root")
    intermediate = make_ca("fuzz intermediate", parent=root)
    leaf = issue_leaf(intermediate)
    signer = CertificateBundleSigner(
        PemSigningKey(leaf.key),  # type: ignore[arg-type]
        leaf.cert,
        [intermediate.cert],
    )
    return (
        build_bundle(PAYLOAD, *signer.sign_statement(PAYLOAD)),
        CertificatePolicy((root.cert,)),
        leaf,
    )


def _mutate(rng: random.Random, bundle: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    mutated: dict[str, Any] = json.loads(json.dumps(bundle))
    certs = mutated["verificationMaterial"]["x509CertificateChain"]["certificates"]
    kind = rng.randrange(3)
    if kind == 0:
        i = rng.randrange(len(certs))
        der = mutate_bytes(rng, base64.b64decode(certs[i]["rawBytes"]))
        certs[i]["rawBytes"] = base64.b64encode(der).decode()
        return "certificate-bytes", mutated
    if kind == 1:
        return "structure", mutate_structure(rng, mutated)
    rng.shuffle(certs)
    certs.append(rng.choice(certs))
    return "chain-order", mutated


def test_certificate_bundle_mutations_never_crash_or_verify_a_changed_leaf(
    chain: tuple[dict[str, Any], CertificatePolicy, Issued], record_property: Any
) -> None:
    bundle, policy, _ = chain
    original = base64.b64decode(
        bundle["verificationMaterial"]["x509CertificateChain"]["certificates"][0]["rawBytes"]
    )
    rng = random.Random(SEED)
    outcomes: Counter[tuple[str, str]] = Counter()
    for i in range(COUNT):
        kind, mutated = _mutate(rng, bundle)
        data = json.dumps(mutated).encode()
        try:
            parsed = parse_bundle(data, "fuzz.sig")
            proven = verify_signature(parsed, policy)
        except Error:
            outcomes[kind, "rejected"] += 1
            continue
        except Exception as exc:
            pytest.fail(f"mutation {i} ({kind}): crash {type(exc).__name__}: {exc}; {data[:300]!r}")
        assert proven.payload == PAYLOAD, f"mutation {i} ({kind}) changed the payload"
        assert parsed.certificates[0] == original, f"mutation {i} ({kind}): another leaf verified"
        outcomes[kind, "accepted"] += 1
    record_property("mutations", sum(outcomes.values()))
    assert sum(outcomes.values()) == COUNT
    assert outcomes["certificate-bytes", "rejected"] > 0
