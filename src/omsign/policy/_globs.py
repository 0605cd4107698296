"""Where the rules of a trust policy see a model, and the globs that match those locations.

A local model is its absolute real path; a remote one keeps its URI form, with the scheme
and host in lower case and no trailing slash: ``hf://org/name`` (the revision left out),
``oci://registry/repo[:tag|@digest]``, ``s3://bucket/prefix``, ``gs://...``, ``az://...``.
In a glob ``*`` and ``?`` stay within one ``/``-separated segment and ``**`` crosses them;
a trailing ``/**`` also matches the folder itself.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["canonical_uri", "compile_glob", "model_location"]

_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/]*)(.*)$")


def canonical_uri(text: str) -> str:
    """A URI with its scheme and host in lower case and no trailing slash."""
    found = _URI.match(text)
    if found is None:
        return text
    scheme, host, rest = found.groups()
    return f"{scheme.lower()}://{host.lower()}{rest}".rstrip("/")


def model_location(model: str | os.PathLike[str]) -> str:
    """Where the rules see a model: its canonical URI (``hf://`` without revision) or real path."""
    text = os.fspath(model)
    if _URI.match(text):
        location = canonical_uri(text)
        if location.startswith("hf://"):
            location = location.split("@", 1)[0].rstrip("/")
        return location
    return Path(text).resolve().as_posix()


_CACHE: dict[str, re.Pattern[str]] = {}


def compile_glob(pattern: str) -> re.Pattern[str]:
    """A glob as a regular expression (see the module docstring).

    Raises:
        ValueError: an unclosed ``[``.
    """
    found = _CACHE.get(pattern)
    if found is not None:
        return found
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")  # the folder itself and everything under it
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                raise ValueError("unclosed '['")
            body = pattern[i + 1 : end]
            out.append(
                "[" + ("^" + re.escape(body[1:]) if body[0] == "!" else re.escape(body)) + "]"
            )
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    compiled = re.compile("".join(out))
    _CACHE[pattern] = compiled
    return compiled
