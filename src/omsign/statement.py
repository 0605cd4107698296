"""Manifest <-> in-toto statement: a stable import path for :mod:`omsign.predicates`.

The in-toto layer is :mod:`omsign.intoto`; each predicate lives in its own module
under :mod:`omsign.predicates`.
"""

from __future__ import annotations

from omsign._json import brief, load_json
from omsign.intoto import STATEMENT_TYPE
from omsign.predicates import (
    COMPAT_FORMS,
    LEGACY_PREDICATE_TYPE,
    PREDICATE_TYPE,
    SignedStatement,
    check_resource_path,
    encode_statement,
    parse_statement,
    written_form,
)

__all__ = [
    "COMPAT_FORMS",
    "LEGACY_PREDICATE_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "SignedStatement",
    "brief",
    "check_resource_path",
    "encode_statement",
    "load_json",
    "parse_statement",
    "written_form",
]
