"""The JSON report format that ``verify --json`` and ``inspect --json`` share.

Every report is a JSON object naming its format and version (``"format":
"omsign-report"``, ``"version": 1``) and its kind (``"report": "verification"`` or
``"inspection"``). The JSON Schema ships in the package (``schemas/report-v1.json``;
:func:`report_schema` loads it). Within version 1 fields may be added, never removed
or given another meaning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omsign.errors import Error

__all__ = [
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "failure_report",
    "report",
    "report_schema",
]

REPORT_FORMAT = "omsign-report"
REPORT_VERSION = 1


def report(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A report of ``kind`` (``verification`` or ``inspection``) around ``body``."""
    return {"format": REPORT_FORMAT, "version": REPORT_VERSION, "report": kind, **body}


def failure_report(
    exc: Error, *, warnings: Iterable[str] = (), names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The report of a failed verification: what failed and, if the model differs, how.

    Args:
        exc: the verification error.
        warnings: what was warned about while verifying.
        names: how options are spelt in the message (see :meth:`Error.render`).
    """
    diff = getattr(exc, "difference", None)
    return report(
        "verification",
        {
            "verified": False,
            "kind": type(exc).__name__,
            "message": exc.render(names),
            "difference": None
            if diff is None
            else {
                "changed": list(diff.changed),
                "missing": list(diff.missing),
                "unsigned": list(diff.extra),
            },
            "warnings": list(warnings),
        },
    )


def report_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of version 1 of the report format."""
    text = resources.files("omsign").joinpath("schemas/report-v1.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
