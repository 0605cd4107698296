"""Which files and folders under a path a piece of code opens or lists (audit hooks)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_WATCHED: list[tuple[str, list[str]]] = []
_EVENTS = frozenset({"open", "os.scandir", "os.listdir", "os.walk"})


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in _EVENTS or not _WATCHED or not args:
        return
    target = args[0]
    if not isinstance(target, (str, bytes, os.PathLike)):
        return  # an open file descriptor: it was opened (and seen) by path before
    path = os.fsdecode(os.path.abspath(target))
    for root, seen in _WATCHED:
        if path == root or path.startswith(root + os.sep):
            seen.append(f"{event} {path}")


sys.addaudithook(_hook)  # audit hooks cannot be removed; it does nothing unless watching


@contextlib.contextmanager
def touched_under(root: Path) -> Iterator[list[str]]:
    """Records every open, scandir or listdir of ``root`` or anything below it."""
    seen: list[str] = []
    entry = (os.path.abspath(root), seen)
    _WATCHED.append(entry)
    try:
        yield seen
    finally:
        _WATCHED.remove(entry)
