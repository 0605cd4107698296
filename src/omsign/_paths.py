"""Where things are: the default signature path and model-relative ignore paths."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from omsign.errors import UsageError
from omsign.hashing import normalize_ignore

__all__ = [
    "as_paths",
    "default_signature",
    "model_relative",
    "url_relative",
    "signature_ignore",
    "subject_name",
]

logger = logging.getLogger("omsign")


def as_paths(
    value: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None,
) -> list[str | os.PathLike[str]]:
    """A list of paths from one path or several: a lone string is one path, not letters."""
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [value]
    return list(value)


def default_signature(model: Path) -> Path:
    """``MODEL/model.sig`` for a directory, ``MODEL.sig`` for a file."""
    if model.is_dir():
        return model / "model.sig"
    return model.with_name(model.name + ".sig")


def subject_name(model: Path) -> str:
    """The basename of the model path, even for ``.`` or a trailing slash."""
    return os.path.basename(os.path.abspath(model)) or "model"


def _relative(model: Path, path: Path) -> str | None:
    """``path`` relative to the model root, however either is spelled, or None if outside.

    Both sides are compared by their real location (links in the parent folders resolved),
    so a signature reached through a symlinked folder is still known to lie in the model.
    The last component is kept as is: an ignored link is the link, not its target.
    """
    base = os.path.realpath(model)
    absolute = os.path.abspath(path)
    target = os.path.join(os.path.realpath(os.path.dirname(absolute)), os.path.basename(absolute))
    if target == base or not target.startswith(base.rstrip(os.sep) + os.sep):
        return None
    return Path(os.path.relpath(target, base)).as_posix()


def model_relative(
    model: Path, paths: Iterable[str | os.PathLike[str]], *, report_unmatched: bool = False
) -> list[str]:
    """Turns ignore paths (absolute or relative to the current directory) model-relative.

    Args:
        model: the model root.
        paths: the ignore paths as the caller gave them.
        report_unmatched: log a warning naming each path that matches nothing in the
            model (a typo would otherwise leave the file it meant signed).

    Returns:
        The normalised model-relative paths.

    Raises:
        UsageError: a path is not inside the model.
    """
    out = []
    for p in paths:
        rel = _relative(model, Path(p))
        if rel is None:
            raise UsageError(
                f"{os.fspath(p)}: ignore path is not inside the model {model}",
                option="ignore_paths",
                hint="{option} takes paths inside the model, absolute or relative to "
                "the current directory",
            )
        if report_unmatched and not os.path.lexists(os.path.join(model, rel)):
            logger.warning("ignore path %s matches nothing in the model %s", os.fspath(p), model)
        out.append(normalize_ignore(rel))
    return out


def url_relative(location: str, paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Ignore paths of a model at a URL: model-relative, or URLs inside the model.

    Args:
        location: the model's URL (``s3://BUCKET/PREFIX``).
        paths: the ignore paths as the caller gave them.

    Raises:
        UsageError: a URL outside the model, or a path that is not model-relative.
    """
    out = []
    prefix = location.rstrip("/") + "/"
    for p in paths:
        text = os.fspath(p)
        if "://" in text:
            if not text.startswith(prefix):
                raise UsageError(
                    f"{text}: ignore path is not inside the model {location}",
                    option="ignore_paths",
                    hint="{option} takes names relative to the model, or URLs inside it",
                )
            text = text[len(prefix) :]
        out.append(normalize_ignore(text))
    return out


def signature_ignore(model: Path, signature: Path) -> list[str]:
    """The signature file's model-relative path when it lies inside the model."""
    rel = _relative(model, signature) if model.is_dir() else None
    return [rel] if rel else []
