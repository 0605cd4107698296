"""Certificate chain validation: RFC 5280 constraints and key usages, unknown critical
extensions, and a search that stays bounded whatever certificates a hostile bundle carries."""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from helpers.pki import (
    Issued,
    build_certificate,
    issue_leaf,
    key_usage_extension,
    make_ca,
    make_ec_key,
)
from omsign.backends._certificate import CertificateBundleSigner
from omsign.backends._chain import validate_chain
from omsign.errors import IdentityError, KeyLoadError

NOW = dt.datetime.now(dt.timezone.utc)


def test_a_valid_three_level_chain_is_accepted() -> None:
    root = make_ca("Root")
    inter = make_ca("Inter", parent=root, path_length=0)
    leaf = issue_leaf(inter)
    assert validate_chain(leaf.cert, [inter.cert], [root.cert], NOW) == [
        leaf.cert,
        inter.cert,
        root.cert,
    ]


def test_path_length_constraint_is_enforced() -> None:
    root = make_ca("Root")
    int1 = make_ca("Int1", parent=root, path_length=0)
    int2 = make_ca("Int2", parent=int1)  # int1 may not have a CA below it
    leaf = issue_leaf(int2)
    with pytest.raises(IdentityError, match="does not chain"):
        validate_chain(leaf.cert, [int2.cert, int1.cert], [root.cert], NOW)


def test_a_ca_with_name_constraints_is_not_vouched_for() -> None:
    root = make_ca("Root")
    constrained = build_certificate(
        subject="Constrained",
        key=make_ec_key(),
        issuer=root,
        not_before=None,
        not_after=None,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (key_usage_extension(cert_sign=True), True),
            (
                x509.NameConstraints(
                    permitted_subtrees=[x509.RFC822Name("example.org")], excluded_subtrees=None
                ),
                True,
            ),
        ],
    )
    leaf = issue_leaf(constrained, emails=["evil@attacker.example"])
    with pytest.raises(IdentityError):
        validate_chain(leaf.cert, [constrained.cert], [root.cert], NOW)


def test_an_unrecognised_critical_extension_is_rejected() -> None:
    root = make_ca("Root")
    leaf = build_certificate(
        subject="crit",
        key=make_ec_key(),
        issuer=root,
        not_before=None,
        not_after=None,
        extensions=[
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (key_usage_extension(digital_signature=True), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False),
            (
                x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"),
                True,
            ),
        ],
    )
    with pytest.raises(IdentityError, match="unrecognised critical extension"):
        validate_chain(leaf.cert, [], [root.cert], NOW)


@pytest.mark.parametrize("same_key", [True, False])
def test_a_bundle_stuffed_with_look_alike_cas_fails_quickly(same_key: bool) -> None:
    """Many self-issued CAs of one name once made the search factorial (minutes at 9)."""
    key = make_ec_key()
    evil = [make_ca("Evil", key=key if same_key else None) for _ in range(40)]
    leaf = issue_leaf(evil[0])
    start = time.monotonic()
    with pytest.raises(IdentityError):
        validate_chain(leaf.cert, [e.cert for e in evil], [make_ca("Trusted").cert], NOW)
    assert time.monotonic() - start < 5


# Key usages (RFC 5280 4.2.1.3, 4.2.1.12): the leaf, and issuers nesting as Go's x509


def _ca_with_eku(name: str, parent: Issued | None, ekus: list[ObjectIdentifier]) -> Issued:
    return build_certificate(
        subject=name,
        key=make_ec_key(),
        issuer=parent,
        not_before=None,
        not_after=None,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=None), True),
            (key_usage_extension(cert_sign=True), True),
            (x509.ExtendedKeyUsage(ekus), False),
        ],
    )


class _Key:
    """A signing key backed by an in-memory private key."""

    def __init__(self, issued: Issued) -> None:
        self._key = issued.key

    def public_key(self) -> Any:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:  # pragma: no cover - not reached by these tests
        raise AssertionError("not used")


def _sign_with(leaf: Issued, chain: tuple[x509.Certificate, ...] = ()) -> None:
    CertificateBundleSigner(_Key(leaf), leaf.cert, chain)


ACCEPTED_LEAVES = {
    "no-key-usage": {"key_usage": False},
    "no-extended-key-usage": {"eku_code_signing": False},
    "neither": {"key_usage": False, "eku_code_signing": False},
    "code-signing-and-any": {"extra_ekus": [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]},
}
REJECTED_LEAVES = {
    "any-eku-only": (
        {"eku_code_signing": False, "extra_ekus": [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]},
        r"does not allow code signing \(anyExtendedKeyUsage alone is not enough\)",
    ),
    "tls-eku-only": (
        {"eku_code_signing": False, "extra_ekus": [ExtendedKeyUsageOID.SERVER_AUTH]},
        "does not allow code signing",
    ),
    "key-usage-without-digital-signature": (
        {"key_usage_digital_signature": False},
        "does not allow digital signatures",
    ),
}


@pytest.mark.parametrize("kwargs", ACCEPTED_LEAVES.values(), ids=ACCEPTED_LEAVES.keys())
def test_an_absent_usage_extension_does_not_restrict_the_leaf(kwargs: dict[str, Any]) -> None:
    root = make_ca("Root")
    leaf = issue_leaf(root, **kwargs)
    assert validate_chain(leaf.cert, [], [root.cert], NOW) == [leaf.cert, root.cert]
    _sign_with(leaf)  # signing accepts what verification accepts


@pytest.mark.parametrize(
    ("kwargs", "message"), REJECTED_LEAVES.values(), ids=REJECTED_LEAVES.keys()
)
def test_a_present_usage_extension_must_allow_code_signing(
    kwargs: dict[str, Any], message: str
) -> None:
    root = make_ca("Root")
    leaf = issue_leaf(root, **kwargs)
    with pytest.raises(IdentityError, match=message):
        validate_chain(leaf.cert, [], [root.cert], NOW)
    with pytest.raises(KeyLoadError, match=f"cannot sign: .*{message}"):
        _sign_with(leaf)


def test_a_ca_certificate_as_leaf_is_accepted_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = make_ca("Root")
    leaf = issue_leaf(root, is_ca=True)
    with caplog.at_level(logging.WARNING, logger="omsign"):
        assert validate_chain(leaf.cert, [], [root.cert], NOW) == [leaf.cert, root.cert]
    assert "is a CA certificate" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="omsign"):
        _sign_with(leaf)
    assert "is a CA certificate" in caplog.text


def test_the_reference_test_pki_ca_leaf_is_accepted() -> None:
    keys = Path(__file__).resolve().parents[2] / "assets" / "compat-vectors" / "keys"
    (leaf,) = x509.load_pem_x509_certificates((keys / "signing-key-cert.pem").read_bytes())
    (inter,) = x509.load_pem_x509_certificates((keys / "int-ca-cert.pem").read_bytes())
    (root,) = x509.load_pem_x509_certificates((keys / "ca-cert.pem").read_bytes())
    at = leaf.not_valid_before_utc + dt.timedelta(days=1)
    assert validate_chain(leaf, [inter], [root], at) == [leaf, inter, root]


def test_a_tls_only_intermediate_cannot_issue_a_code_signing_leaf() -> None:
    root = make_ca("Root")
    tls_ca = _ca_with_eku("TLS issuing CA", root, [ExtendedKeyUsageOID.SERVER_AUTH])
    leaf = issue_leaf(tls_ca)  # the leaf itself says codeSigning
    with pytest.raises(IdentityError, match=r"issuer .*TLS issuing CA.* may not issue code-sign"):
        validate_chain(leaf.cert, [tls_ca.cert], [root.cert], NOW)
    with pytest.raises(KeyLoadError, match=r"cannot sign: .*TLS issuing CA.* may not issue"):
        _sign_with(leaf, (tls_ca.cert, root.cert))


def test_a_tls_only_anchor_cannot_issue_a_code_signing_leaf() -> None:
    root = _ca_with_eku("TLS root", None, [ExtendedKeyUsageOID.SERVER_AUTH])
    leaf = issue_leaf(root)
    with pytest.raises(IdentityError, match="may not issue code-signing"):
        validate_chain(leaf.cert, [], [root.cert], NOW)


def test_a_tls_only_issuer_above_the_intermediate_also_restricts_it() -> None:
    root = make_ca("Root")
    tls_ca = _ca_with_eku("TLS CA", root, [ExtendedKeyUsageOID.SERVER_AUTH])
    inter = make_ca("Unrestricted below TLS", parent=tls_ca)
    leaf = issue_leaf(inter)
    with pytest.raises(IdentityError, match="may not issue code-signing"):
        validate_chain(leaf.cert, [inter.cert, tls_ca.cert], [root.cert], NOW)


@pytest.mark.parametrize(
    "ekus",
    [[ExtendedKeyUsageOID.CODE_SIGNING], [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]],
    ids=["code-signing", "any"],
)
def test_an_intermediate_allowing_code_signing_issues_leaves(
    ekus: list[ObjectIdentifier],
) -> None:
    root = make_ca("Root")
    inter = _ca_with_eku("Code-signing CA", root, ekus)
    leaf = issue_leaf(inter)
    assert validate_chain(leaf.cert, [inter.cert], [root.cert], NOW)[1] == inter.cert
    _sign_with(leaf, (inter.cert, root.cert))
