"""Helpers shared by the omsign test suites."""
