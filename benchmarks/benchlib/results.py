"""Result types shared by the scenarios and the report."""

from __future__ import annotations

import dataclasses

from benchlib.measure import Measurement


@dataclasses.dataclass
class Row:
    """One line of the table: a tool run in a scenario."""

    scenario: str
    measurement: Measurement
    size_bytes: int
    files: int
    unit: str = "GB/s"
    baseline: bool = False
    ratio: float | None = None

    @property
    def rate(self) -> float | None:
        """GB/s (decimal) or files/s, depending on ``unit``."""
        seconds = self.measurement.seconds
        if not seconds or self.unit == "":
            return None
        if self.unit == "files/s":
            return self.files / seconds
        return self.size_bytes / seconds / 1e9


@dataclasses.dataclass
class Target:
    """A goal from the issue next to the measured value."""

    scenario: str
    goal: str
    measured: str
    status: str  # PASS, MISS or n/a


@dataclasses.dataclass
class ScenarioResult:
    """Everything a scenario produced."""

    key: str
    title: str
    rows: list[Row] = dataclasses.field(default_factory=list)
    targets: list[Target] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def set_ratios(self) -> None:
        """Fills each row's speed-up against the scenario's baseline row."""
        base = next((r for r in self.rows if r.baseline), None)
        if base is None or not base.measurement.seconds:
            return
        for row in self.rows:
            if row.measurement.seconds:
                row.ratio = base.measurement.seconds / row.measurement.seconds


def verdict(ok: bool | None) -> str:
    """PASS, MISS, or n/a when there was nothing to judge."""
    if ok is None:
        return "n/a"
    return "PASS" if ok else "MISS"
