"""One self-contained HTML page that draws a lineage graph, readable offline.

The page holds everything it shows: an inline SVG drawing (models and datasets as boxes
coloured by status, "made from" arrows, each box naming its step and signer), a legend,
and a table with every detail in full. It loads nothing, runs no script, and its
Content-Security-Policy allows only its own style sheet (by hash). Every name comes from
a model folder or a signature and is escaped, control characters included.
"""

from __future__ import annotations

import base64
import hashlib
import html
from pathlib import Path

from omsign._atomic import write_atomic
from omsign._lineage._graph import STATUSES, Lineage, LineageNode, short, who
from omsign.errors import UsageError

__all__ = ["STATUS_COLOURS", "render_lineage_html", "write_lineage_html"]

# Solid colours, one per status, for the boxes and the legend; text takes a darker shade
# of each (so that the area of a colour on screen is the boxes' and the legend's alone).
STATUS_COLOURS: dict[str, str] = {
    "verified": "#2e7d32",
    "unverified": "#c62828",
    "not-found": "#ef6c00",
}
_TEXT_COLOURS = {"verified": "#1b5e20", "unverified": "#b71c1c", "not-found": "#a84300"}
_STATUS_WORDS = {"verified": "verified", "unverified": "unverified", "not-found": "not found"}

_NODE_W, _NODE_H, _STRIPE = 260, 112, 14
_COL_GAP, _ROW_GAP, _MARGIN = 72, 28, 24
_LINE = 18  # text baseline step inside a box
_TITLE = ' class="title"'

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;color:#1f2328;background:#fff;margin:24px}
h1{font-size:20px;margin:0 0 4px}
p.summary{margin:0 0 16px}
p.summary.ok{color:#1b5e20} p.summary.broken{color:#b71c1c}
.legend{display:flex;gap:20px;margin:0 0 12px;padding:0;list-style:none}
.legend li{display:flex;align-items:center;gap:6px}
svg text{font:13px system-ui,sans-serif;fill:#1f2328}
svg text.title{font-weight:600}
svg .box{fill:#fff;stroke-width:2}
svg .edge{fill:none;stroke:#57606a;stroke-width:1.5}
svg .arrow{fill:#57606a}
table{border-collapse:collapse;margin-top:20px}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
td.digest,td.location,td.signer{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
td.digest{min-width:16em}
""" + "".join(
    f".s-{s} .box{{stroke:{c}}} .s-{s} .stripe,.swatch.s-{s}{{fill:{c}}} "
    f"td.status.s-{s}{{color:{_TEXT_COLOURS[s]};font-weight:600}}\n"
    for s, c in STATUS_COLOURS.items()
)


def _clean(text: str) -> str:
    """The text with control and other unprintable characters shown as escapes."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


def _e(text: object) -> str:
    """Escaped for HTML text and quoted attribute values."""
    return html.escape(_clean(str(text)), quote=True)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _layout(lineage: Lineage) -> dict[str, tuple[int, int]]:
    """Each node's box origin: the roots on the left, the model asked about on the right."""
    deepest = max(n.depth for n in lineage.nodes)
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for node in lineage.nodes:
        column = deepest - node.depth
        row = rows.get(column, 0)
        rows[column] = row + 1
        x = _MARGIN + column * (_NODE_W + _COL_GAP)
        y = _MARGIN + row * (_NODE_H + _ROW_GAP)
        place[node.digest] = (x, y)
    return place


def _signer_text(node: LineageNode) -> str:
    if node.signer is not None:
        return who(node.signer)
    return "unsigned" if node.verified else "-"


def _box(node: LineageNode, x: int, y: int) -> str:
    status = node.status
    lines = [
        f"{node.kind.upper()} {node.name}",
        _STATUS_WORDS[status] + (f": {node.reason}" if node.reason else ""),
        f"step: {node.step}" if node.step else "step: -",
        f"signer: {_signer_text(node)}",
        short(node.digest),
    ]
    tip = "\n".join([*lines[:2], *lines[2:], node.location or "no copy found"])
    texts = "".join(
        f'<text x="{x + 10}" y="{y + _STRIPE + 18 + i * _LINE}"{_TITLE if i == 0 else ""}>'
        f"{_e(_cut(line, 34))}</text>"
        for i, line in enumerate(lines)
    )
    return (
        f'<g class="node s-{status}" data-digest="{_e(node.label)}" data-status="{status}" '
        f'data-kind="{_e(node.kind)}" data-name="{_e(node.name)}">'
        f"<title>{_e(tip)}</title>"
        f'<rect class="box" x="{x}" y="{y}" width="{_NODE_W}" height="{_NODE_H}" rx="6"/>'
        f'<rect class="stripe" x="{x + 1}" y="{y + 1}" width="{_NODE_W - 2}" '
        f'height="{_STRIPE}"/>{texts}</g>'
    )


def _edges(lineage: Lineage, place: dict[str, tuple[int, int]]) -> list[str]:
    out = []
    for edge in lineage.edges:
        if edge.child not in place or edge.parent not in place:
            continue
        cx, cy = place[edge.child]
        px, py = place[edge.parent]
        x1, y1 = cx + _NODE_W, cy + _NODE_H // 2
        x2, y2 = px - 8, py + _NODE_H // 2
        bend = max(40, abs(x2 - x1) // 2)
        out.append(
            f'<g class="link" data-from="sha256:{_e(edge.child)}" '
            f'data-to="sha256:{_e(edge.parent)}">'
            f"<title>{_e(edge.kind)} {_e(edge.name)}</title>"
            f'<path class="edge" d="M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"/>'
            f'<path class="arrow" d="M{x2},{y2 - 5} L{x2 + 8},{y2} L{x2},{y2 + 5} Z"/></g>'
        )
    return out


def _svg(lineage: Lineage) -> str:
    place = _layout(lineage)
    width = max(x for x, _ in place.values()) + _NODE_W + _MARGIN
    height = max(y for _, y in place.values()) + _NODE_H + _MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" id="graph" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="lineage graph">',
        *_edges(lineage, place),
        *(_box(n, *place[n.digest]) for n in lineage.nodes),
        "</svg>",
    ]
    return "".join(parts)


def _legend(lineage: Lineage) -> str:
    items = []
    for status in STATUSES:
        count = sum(1 for n in lineage.nodes if n.status == status)
        items.append(
            f'<li data-status="{status}"><svg width="18" height="18" aria-hidden="true">'
            f'<rect class="swatch s-{status}" width="18" height="18" rx="3"/></svg>'
            f"{_STATUS_WORDS[status]} ({count})</li>"
        )
    return '<ul class="legend">' + "".join(items) + "</ul>"


def _table(lineage: Lineage) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Status", "Kind", "Name", "Root digest", "Step", "Signer", "Location", "Why")
    )
    rows = []
    for n in lineage.nodes:
        cells = (
            f'<td class="status s-{n.status}">{_STATUS_WORDS[n.status]}</td>'
            f"<td>{_e(n.kind)}</td><td>{_e(n.name)}</td>"
            f'<td class="digest">{_e(n.label)}</td><td>{_e(n.step or "-")}</td>'
            f'<td class="signer">{_e(_signer_text(n))}</td>'
            f'<td class="location">{_e(n.location or "no copy found")}</td>'
            f"<td>{_e('; '.join(filter(None, (n.reason, *n.notes))) or '-')}</td>"
        )
        rows.append(
            f'<tr class="row" data-digest="{_e(n.label)}" data-status="{n.status}">{cells}</tr>'
        )
    return f'<table id="nodes"><tr>{head}</tr>{"".join(rows)}</table>'


def render_lineage_html(lineage: Lineage) -> str:
    """The lineage as one self-contained HTML page (no external resource, no script).

    Args:
        lineage: what :func:`omsign.lineage` returned (or any hand-built value).

    Returns:
        The page's text: an inline SVG graph with a legend, then a table of every node.
    """
    digest = hashlib.sha256(_CSS.encode()).digest()
    style_hash = base64.b64encode(digest).decode()
    csp = (
        f"default-src 'none'; style-src 'sha256-{style_hash}'; img-src 'none'; "
        "script-src 'none'; base-uri 'none'; form-action 'none'"
    )
    top = lineage.top
    broken = lineage.failures()
    if broken:
        summary = (
            f'<p class="summary broken">Broken: {len(broken)} link(s) do not verify; '
            f"first: {_e(broken[0])}</p>"
        )
    else:
        summary = '<p class="summary ok">Verified: every link of the chain holds.</p>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>Lineage of {_e(top.name)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Lineage of {_e(top.kind)} {_e(top.name)}</h1>"
        f'<p class="digest">{_e(top.label)}</p>{summary}{_legend(lineage)}'
        f"{_svg(lineage)}{_table(lineage)}"
        f'<p class="search">Searched: {_e(", ".join(lineage.search) or "-")}</p>'
        "</body></html>\n"
    )


def write_lineage_html(lineage: Lineage, path: str | Path) -> Path:
    """Writes :func:`render_lineage_html` to ``path`` atomically; returns the path.

    Raises:
        UsageError: the file cannot be written.
    """
    target = Path(str(path))
    try:
        write_atomic(target, render_lineage_html(lineage).encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"{target}: cannot write the page ({exc.strerror or exc})") from None
    return target
