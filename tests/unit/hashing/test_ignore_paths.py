"""Ignore paths (OMS 6.2.1): canonical model-relative names, never a way out of the model."""

from __future__ import annotations

import pytest

from omsign.errors import UsageError
from omsign.hashing import normalize_ignore


@pytest.mark.parametrize(
    ("entry", "canonical"),
    [("a", "a"), ("./a/b/", "a/b"), ("a//b", "a/b"), ("a/./b", "a/b")],
)
def test_ignore_paths_are_canonicalised(entry: str, canonical: str) -> None:
    assert normalize_ignore(entry) == canonical


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("", "relative '/'-separated"),
        ("/etc/passwd", "relative '/'-separated"),
        ("a\\b", "relative '/'-separated"),
        ("a\0b", "relative '/'-separated"),
        ("*.bin", "glob characters"),
        ("weights/shard-?", "glob characters"),
        ("[ab]", "glob characters"),
        ("../outside", "'..' is not allowed"),
        ("a/../../outside", "'..' is not allowed"),
        (".", "names the model root"),
        ("./", "names the model root"),
    ],
)
def test_unsafe_ignore_paths_are_refused(entry: str, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        normalize_ignore(entry)
