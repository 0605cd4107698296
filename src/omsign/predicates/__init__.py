"""The predicates omsign reads, by ``predicateType``, and the rules that go with each.

A predicate is one module that defines a :class:`Predicate` (its type URI, how
reports name it, a reader, and whether it accepts the legacy v0.2 signature
encoding), plus one line in ``_REGISTRY``. A predicate that attestations carry
(provenance, scan verdicts, model cards, bills of materials) defines an
:class:`AttestationKind` instead, listed in :data:`ATTESTATION_KINDS`.
:func:`parse_statement` reads an authenticated payload: the in-toto layer
(:mod:`omsign.intoto`) first, then the registered predicate.
"""

from __future__ import annotations

from omsign import intoto
from omsign._json import brief
from omsign.errors import MalformedSignatureError, SignatureError
from omsign.predicates import _bom, _legacy, _modelcard, _oms, _scan, _slsa
from omsign.predicates._common import (
    AttestationKind,
    Predicate,
    SignedStatement,
    check_resource_path,
)

__all__ = [
    "ATTESTATION_KINDS",
    "AttestationKind",
    "COMPAT_FORMS",
    "LEGACY_PREDICATE_TYPE",
    "PREDICATE_TYPE",
    "Predicate",
    "SignedStatement",
    "check_resource_path",
    "encode_statement",
    "find_attestation_kind",
    "find_predicate",
    "parse_statement",
    "written_form",
]

PREDICATE_TYPE = _oms.PREDICATE_TYPE
LEGACY_PREDICATE_TYPE = _legacy.LEGACY_PREDICATE_TYPE

_REGISTRY: dict[str, Predicate] = {
    _oms.PREDICATE.predicate_type: _oms.PREDICATE,
    _legacy.PREDICATE.predicate_type: _legacy.PREDICATE,
}

# The predicates attestations carry, by short name (one line per predicate module).
ATTESTATION_KINDS: dict[str, AttestationKind] = {
    kind.name: kind for kind in (_slsa.KIND, _scan.KIND, _modelcard.KIND, _bom.KIND)
}

encode_statement = _oms.encode
written_form = _oms.written_form
COMPAT_FORMS = _oms.COMPAT_FORMS


def find_predicate(predicate_type: str) -> Predicate | None:
    """The registered predicate for a type URI, or None."""
    return _REGISTRY.get(predicate_type)


def find_attestation_kind(predicate_type: str) -> AttestationKind | None:
    """The built-in attestation predicate for a type URI, or None."""
    for kind in ATTESTATION_KINDS.values():
        if kind.predicate_type == predicate_type:
            return kind
    return None


def parse_statement(
    payload: bytes, source: str | None = None, *, legacy_encoding: bool = False
) -> SignedStatement:
    """Parses and validates a signed payload (OMS 8.3), once its signature verified.

    Args:
        payload: the verified DSSE payload.
        source: the signature file's name, to begin error messages with.
        legacy_encoding: the signature verified only over the legacy v0.2 encoding;
            that is accepted for the v0.2 predicate alone.

    Raises:
        MalformedSignatureError: not JSON, wrong types or values, unknown predicate type,
            unsafe or duplicate names, or a root digest that does not match the resources.
        SignatureError: a legacy-encoded signature over another predicate.
    """
    try:
        return _parse(payload, legacy_encoding)
    except (MalformedSignatureError, SignatureError) as exc:
        if source is None:
            raise
        raise type(exc)(f"{source}: {exc}") from None


def _parse(payload: bytes, legacy_encoding: bool) -> SignedStatement:
    statement = intoto.parse(payload)
    predicate = _REGISTRY.get(statement.predicate_type)
    if predicate is None:
        raise MalformedSignatureError(
            f"unsupported predicate type {brief(statement.predicate_type)}"
        )
    if legacy_encoding and not predicate.legacy_encoding:
        raise SignatureError(
            "the signature is over the legacy v0.2 encoding, which is accepted only for "
            f"the v0.2 predicate, not for {predicate.description}"
        )
    return predicate.read(statement)
