"""The trust policy file: strict parsing, first-match rules, and k-of-n over real key bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from helpers.pki import make_ec_key, write_public_key
from omsign.backends._key import KeyBundleSigner
from omsign.backends._pem import PemSigningKey
from omsign.bundle import Bundle, build_bundle, parse_bundle
from omsign.errors import IdentityError, UsageError
from omsign.policy import PolicyFile, Threshold, load_policy, verify_bundles

PAYLOAD = b'{"statement": "model A"}'
OTHER = b'{"statement": "model B"}'

SIGNERS = """\
version = 1

[signers.trainer]
key = "keys/trainer.pub"
[signers.registry]
key = "keys/registry.pub"
[signers.ci]
key = "keys/ci.pub"
"""


def key_bundle(key: ec.EllipticCurvePrivateKey, payload: bytes = PAYLOAD) -> Bundle:
    signed = KeyBundleSigner(PemSigningKey(key)).sign_statement(payload)
    return parse_bundle(json.dumps(build_bundle(payload, *signed)).encode(), "test bundle")


@pytest.fixture(scope="module")
def keys() -> dict[str, ec.EllipticCurvePrivateKey]:
    return {name: make_ec_key("P-256") for name in ("trainer", "registry", "ci", "stranger")}


@pytest.fixture
def write(tmp_path: Path, keys: dict[str, ec.EllipticCurvePrivateKey]):  # type: ignore[no-untyped-def]
    (tmp_path / "keys").mkdir()
    for name, key in keys.items():
        write_public_key(tmp_path / "keys" / f"{name}.pub", key)

    def write_policy(text: str) -> Path:
        path = tmp_path / "policy.toml"
        path.write_text(text)
        return path

    return write_policy


def two_of_three(write) -> PolicyFile:  # type: ignore[no-untyped-def]
    return load_policy(
        write(
            SIGNERS
            + """
[[rules]]
match = ["models/**", "hf://acme/*"]
mode = "enforce"
signers = ["trainer", "registry", "ci"]
threshold = 2
"""
        )
    )


def test_two_of_three_met_with_two_real_signatures(write, keys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    decision = two_of_three(write).decide(tmp_path / "models" / "bert")
    assert decision.rule is not None and decision.threshold == 2
    verifier = decision.verifier()
    assert isinstance(verifier, Threshold)
    outcome = verify_bundles([key_bundle(keys["trainer"]), key_bundle(keys["ci"])], verifier)
    assert outcome.ok
    assert [s.name for s in outcome.signers if s.counted] == ["trainer", "ci"]


def test_two_of_three_not_met_names_who_failed(write, keys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    verifier = two_of_three(write).decide(tmp_path / "models" / "bert").verifier()
    # one valid signature and one by a key the policy does not name
    outcome = verify_bundles([key_bundle(keys["trainer"]), key_bundle(keys["stranger"])], verifier)
    assert not outcome.ok
    with pytest.raises(IdentityError) as caught:
        outcome.check()
    message = str(caught.value)
    assert "1 of 2 required signers verified" in message
    assert "trainer: verified" in message
    assert "registry: not verified" in message and "ci: not verified" in message


def test_signatures_over_different_payloads_do_not_add_up(write, keys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    verifier = two_of_three(write).decide(tmp_path / "models" / "m").verifier()
    bundles = [key_bundle(keys["trainer"]), key_bundle(keys["registry"], OTHER)]
    assert not verify_bundles(bundles, verifier).ok


def test_the_same_key_twice_counts_once(write, keys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    verifier = two_of_three(write).decide(tmp_path / "models" / "m").verifier()
    bundles = [key_bundle(keys["trainer"]), key_bundle(keys["trainer"])]
    assert not verify_bundles(bundles, verifier).ok


def test_first_matching_rule_wins(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    policy = load_policy(
        write(
            SIGNERS
            + """
[[rules]]
name = "staging"
match = "models/staging/*"
mode = "warn"
signers = ["ci"]

[[rules]]
match = "models/**"
signers = ["trainer", "registry"]
threshold = 2
"""
        )
    )
    staging = policy.decide(tmp_path / "models" / "staging" / "m1")
    assert staging.rule is not None and staging.rule.index == 1 and staging.mode == "warn"
    deep = policy.decide(tmp_path / "models" / "staging" / "m1" / "sub")
    assert deep.rule is not None and deep.rule.index == 2  # '*' stays in one segment
    assert policy.decide("hf://acme/bert").mode == "deny"


def test_hf_names_match_without_revision(write) -> None:  # type: ignore[no-untyped-def]
    policy = two_of_three(write)
    decision = policy.decide("hf://acme/bert@abc123")
    assert decision.rule is not None and decision.location == "hf://acme/bert"
    assert policy.decide("hf://other/bert").rule is None


def test_no_matching_rule_is_denied(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    decision = two_of_three(write).decide(tmp_path / "elsewhere")
    assert decision.rule is None and decision.mode == "deny"
    with pytest.raises(IdentityError, match="no rule of the trust policy matches; denied"):
        decision.verifier()


def test_default_off_lets_unmatched_models_through(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    policy = load_policy(write('version = 1\ndefault = "off"\n'))
    assert policy.decide(tmp_path / "m").mode == "off"


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        (
            SIGNERS + '\n[[rules]]\nmatch = "x"\nsignrs = ["ci"]\n',
            12,
            "unknown key 'signrs' in rule 1",
        ),
        (
            SIGNERS.replace('key = "keys/ci.pub"', 'key = "keys/ci.pub"\ncomment = 1'),
            9,
            "unknown key 'comment'",
        ),
        ("version = 1\nextra = true\n", 2, "unknown key 'extra' in the policy file"),
        ("version = 2\n", 1, "version must be 1"),
        (SIGNERS.replace("keys/ci.pub", "keys/missing.pub"), 8, "no such file"),
        (SIGNERS + '\n[[rules]]\nmatch = "x["\nsigners = ["ci"]\n', 11, "bad glob 'x['"),
        (
            SIGNERS + '\n[[rules]]\nmatch = "x"\nsigners = ["nobody"]\n',
            12,
            "unknown signer 'nobody'",
        ),
        (SIGNERS + '\n[[rules]]\nmatch = "x"\nsigners = ["ci"]\nthreshold = 2\n', 13, "threshold"),
        (
            SIGNERS + '\n[[rules]]\nmatch = "x"\nmode = "audit"\nsigners = ["ci"]\n',
            12,
            "mode must be",
        ),
        (
            'version = 1\n[signers.s]\nsigstore = { identity = "a", isuer = "b" }\n',
            3,
            "unknown key 'isuer' in signer 's' sigstore",
        ),
    ],
)
def test_invalid_files_name_the_line_and_the_problem(
    write, text: str, line: int, needle: str
) -> None:  # type: ignore[no-untyped-def]
    path = write(text)
    with pytest.raises(UsageError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert needle in message


def test_bad_toml_is_a_usage_error_naming_the_file(write) -> None:  # type: ignore[no-untyped-def]
    path = write("version = \n")
    with pytest.raises(UsageError, match=f"{path}: not valid TOML"):
        load_policy(path)


def test_sigstore_and_ca_signers_parse_without_network(write, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "ca.pem").write_text("x")
    policy = load_policy(
        write(
            'version = 1\n[signers.ci]\nsigstore = { identity = "https://x", '
            'issuer = "https://token.actions.githubusercontent.com", '
            'github_ref = "refs/heads/main" }\n'
            '[signers.hub]\nca = { chain = "ca.pem" }\n'
        )
    )
    assert policy.signers["ci"].method == "sigstore"
    assert policy.signers["ci"].options["github_ref"] == "refs/heads/main"
    assert policy.signers["hub"].options["cert_chain"] == [str(tmp_path / "ca.pem")]
    assert "2 signers, 0 rules, default deny" in policy.summary()


@pytest.mark.parametrize(
    ("model", "rule"),
    [
        ("oci://ghcr.io/acme/bert:v1", 1),
        ("OCI://GHCR.IO/acme/bert@sha256:" + "a" * 64, 1),
        ("oci://ghcr.io/acme/team/bert:v1", 2),  # * stays in one segment, ** crosses
        ("oci://ghcr.io/other/bert:v1", None),
        ("s3://models/prod/bert/", 3),
        ("s3://models/prod", 3),  # a trailing /** matches the prefix itself
        ("s3://models/staging/bert", None),
        ("gs://bucket/llm/7b", 4),
        ("az://account/container/llm", 5),
        ("hf://acme/bert@main", 6),
    ],
)
def test_remote_locations_match_on_their_canonical_string(
    write,  # type: ignore[no-untyped-def]
    model: str,
    rule: int | None,
) -> None:
    policy = load_policy(
        write(
            SIGNERS
            + "".join(
                f'[[rules]]\nmatch = "{glob}"\nsigners = ["trainer"]\n'
                for glob in (
                    "oci://ghcr.io/acme/*",
                    "oci://ghcr.io/acme/**",
                    "s3://models/prod/**",
                    "gs://bucket/llm/*",
                    "az://account/*/llm",
                    "hf://acme/*",
                )
            )
        )
    )
    decision = policy.decide(model)
    assert (decision.rule.index if decision.rule else None) == rule
    assert decision.mode == ("deny" if rule is None else "enforce")
