"""Prints how many mutations the fuzz tests ran (each test records its own count)."""

from __future__ import annotations

from typing import Any


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line: mutations run by the fuzz tests of this session, passed or failed."""
    total, tests = 0, 0
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            counts = [v for k, v in getattr(report, "user_properties", []) if k == "mutations"]
            if counts and report.when == "call":
                total += sum(counts)
                tests += 1
    if tests:
        failed = len(terminalreporter.stats.get("failed", []))
        terminalreporter.write_line(
            f"omsign fuzz: {total} mutations and generated inputs in {tests} tests, "
            f"{failed} failed tests (crashes or false acceptances)"
        )
