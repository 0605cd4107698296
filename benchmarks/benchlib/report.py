"""The results table (terminal and Markdown), the targets, and the JSON record."""

from __future__ import annotations

import json
from pathlib import Path

from benchlib.results import Row, ScenarioResult

HEADERS = ("scenario", "tool", "mode", "seconds", "GB/s or files/s", "peak RSS MB", "vs ms")


def _cells(row: Row) -> tuple[str, ...]:
    m = row.measurement
    if m.error:
        return (row.scenario, m.tool, m.mode, m.error, "", "", "")
    rate = row.rate
    rate_text = ""
    if rate is not None:
        rate_text = f"{rate:,.0f} files/s" if row.unit == "files/s" else f"{rate:.2f} GB/s"
    return (
        row.scenario,
        m.tool,
        m.mode,
        "" if m.seconds is None else f"{m.seconds:.3f}",
        rate_text,
        "" if m.maxrss_mb is None else f"{m.maxrss_mb:.0f}",
        "" if row.ratio is None else f"{row.ratio:.2f}x" + (" (base)" if row.baseline else ""),
    )


def _table(rows: list[tuple[str, ...]], headers: tuple[str, ...]) -> list[str]:
    widths = [max(len(r[i]) for r in (headers, *rows)) for i in range(len(headers))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return lines


def _markdown(rows: list[tuple[str, ...]], headers: tuple[str, ...]) -> list[str]:
    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(headers), "|" + "---|" * len(headers), *(line(r) for r in rows)]


def _target_rows(results: list[ScenarioResult]) -> list[tuple[str, ...]]:
    return [(t.scenario, t.goal, t.measured, t.status) for r in results for t in r.targets]


def render(results: list[ScenarioResult], header: list[str], markdown: bool = False) -> str:
    """The whole report as text (aligned columns) or Markdown."""
    rows = [_cells(row) for r in results for row in r.rows]
    targets = _target_rows(results)
    notes = [f"{r.title}: {n}" for r in results for n in r.notes]
    fmt = _markdown if markdown else _table
    out: list[str] = []
    if markdown:
        out += ["# omsign benchmark", "", *(f"- {h}" for h in header), ""]
        out += ["## Results", ""]
    else:
        out += [*header, ""]
    out += fmt(rows, HEADERS)
    out += ["", "## Targets", ""] if markdown else ["", "Targets:"]
    out += fmt(targets, ("#", "target", "measured", "status"))
    if notes:
        out += ["", "## Notes", ""] if markdown else ["", "Notes:"]
        out += [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"


def to_json(results: list[ScenarioResult], meta: dict[str, object]) -> dict[str, object]:
    """A JSON-ready record of the run."""
    return {
        "meta": meta,
        "scenarios": [
            {
                "key": r.key,
                "title": r.title,
                "rows": [
                    {
                        **row.measurement.to_json(),
                        "size_bytes": row.size_bytes,
                        "files": row.files,
                        "unit": row.unit,
                        "rate": row.rate,
                        "baseline": row.baseline,
                        "ratio_vs_model_signing": row.ratio,
                    }
                    for row in r.rows
                ],
                "targets": [t.__dict__ for t in r.targets],
                "notes": r.notes,
            }
            for r in results
        ],
    }


def write(workdir: Path, results: list[ScenarioResult], header: list[str], meta: dict) -> None:
    """Writes ``results.json`` and ``results.md`` into the work dir."""
    (workdir / "results.json").write_text(json.dumps(to_json(results, meta), indent=2) + "\n")
    (workdir / "results.md").write_text(render(results, header, markdown=True))
