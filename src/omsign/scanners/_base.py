"""What the scanner adapters share: the error an adapter raises when it cannot scan a file."""

from __future__ import annotations

__all__ = ["ScanFailedError"]


class ScanFailedError(Exception):
    """The scanner could not read a file (not a format it parses, or it failed on it)."""
