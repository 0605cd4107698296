"""A model's lineage: what it was made from, found, verified and drawn.

:func:`omsign.lineage` follows a model's verified provenance back to its base models
and datasets, looking for each among search places, and checks every link;
:class:`Lineage` is the graph it returns, :func:`render_lineage_html` draws it as one
self-contained page.
"""

from __future__ import annotations

from omsign._lineage._api import lineage
from omsign._lineage._graph import (
    STATUSES,
    Lineage,
    LineageEdge,
    LineageError,
    LineageFailure,
    LineageNode,
    NodeStatus,
    lineage_schema,
)
from omsign._lineage._html import STATUS_COLOURS, render_lineage_html, write_lineage_html

__all__ = [
    "STATUSES",
    "STATUS_COLOURS",
    "Lineage",
    "LineageEdge",
    "LineageError",
    "LineageFailure",
    "LineageNode",
    "NodeStatus",
    "lineage",
    "lineage_schema",
    "render_lineage_html",
    "write_lineage_html",
]
