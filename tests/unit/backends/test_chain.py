"""Certificate chain validation: RFC 5280 constraints, unknown critical extensions, and a
search that stays bounded whatever certificates a hostile bundle carries."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from helpers.pki import build_certificate, issue_leaf, key_usage_extension, make_ca, make_ec_key
from omsign.backends._certificate import validate_chain
from omsign.errors import IdentityError

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
