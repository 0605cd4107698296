"""The reports ``verify --json`` and ``inspect --json`` print, checked against the schema.

Every test that reads such a report parses it with :func:`parse_report`, which validates
it against the JSON Schema shipped in the package before returning it.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

from omsign.reports import REPORT_FORMAT, REPORT_VERSION, report_schema


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = report_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema)
    return validator


def check_report(report: Any) -> dict[str, Any]:
    """Validates a report object against the shipped schema and returns it."""
    _validator().validate(report)
    assert report["format"] == REPORT_FORMAT
    assert report["version"] == REPORT_VERSION
    return dict(report)


def parse_report(text: str) -> dict[str, Any]:
    """Parses a ``--json`` output and validates it against the shipped schema."""
    return check_report(json.loads(text))
