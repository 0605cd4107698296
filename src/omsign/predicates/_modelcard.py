"""A Hugging Face model card's metadata (the YAML front matter of its README.md).

The predicate is ``{"metadata": {...}, "file": {"name": ..., "digest": {"sha256": ...}}}``:
the front matter as JSON, and which card file it came from. The card is read with a
safe YAML loader (plain data only: no tags, no objects), refusing aliases (a few
bytes of them can expand into gigabytes), from at most :data:`MAX_CARD_BYTES`. Dates
become RFC 3339 strings.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import Any

from omsign.errors import BackendUnavailableError, UsageError
from omsign.intoto import get_field
from omsign.predicates._common import AttestationKind

__all__ = ["KIND", "MAX_CARD_BYTES", "PREDICATE_TYPE", "card_predicate", "front_matter"]

PREDICATE_TYPE = "https://huggingface.co/docs/hub/model-cards#model-card-metadata"
MAX_CARD_BYTES = 1 << 20


def _check(predicate: dict[str, Any]) -> None:
    get_field(predicate, "metadata", dict, "predicate")


KIND = AttestationKind("model-card", PREDICATE_TYPE, "Hugging Face model card metadata", _check)


def _json_ready(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise UsageError(f"{where}: a metadata key is not a string")
            out[str(key)] = _json_ready(item, where)
        return out
    if isinstance(value, list):
        return [_json_ready(v, where) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):  # no JSON value
        raise UsageError(f"{where}: the metadata holds {value}, which JSON cannot")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise UsageError(f"{where}: the metadata holds a {type(value).__name__}, not plain data")


def front_matter(text: str, where: str) -> dict[str, Any]:
    """The YAML front matter of a model card (between the first two ``---`` lines).

    Raises:
        UsageError: no front matter, YAML that is not a mapping, aliases, or anything
            but plain data.
        BackendUnavailableError: PyYAML is not installed.
    """
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        raise UsageError(f"{where}: no metadata (the card does not begin with a '---' line)")
    try:
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() in ("---", "..."))
    except StopIteration:
        raise UsageError(f"{where}: the metadata block has no closing '---' line") from None
    block = "\n".join(lines[1:end])
    try:
        import yaml
    except ImportError:
        raise BackendUnavailableError(
            "reading a model card needs PyYAML: pip install 'omsign[modelcard]'"
        ) from None
    try:
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(block, Loader=yaml.SafeLoader)):
            raise UsageError(f"{where}: the metadata uses YAML aliases, which are refused")
        data = yaml.safe_load(block)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 2})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UsageError(f"{where}: the metadata is not valid YAML{at}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"{where}: the metadata is not a mapping")
    ready: dict[str, Any] = _json_ready(data, where)
    return ready


def card_predicate(data: bytes, name: str, where: str) -> dict[str, Any]:
    """The model-card predicate for a card's bytes.

    Args:
        data: the card file's content (at most :data:`MAX_CARD_BYTES`).
        name: the card's name, recorded in the predicate (``README.md``).
        where: the card's path, for messages.

    Raises:
        UsageError: too large, not UTF-8, or no usable metadata.
    """
    if len(data) > MAX_CARD_BYTES:
        raise UsageError(f"{where}: the model card is larger than {MAX_CARD_BYTES >> 20} MiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{where}: the model card is not UTF-8 text") from None
    return {
        "metadata": front_matter(text, where),
        "file": {"name": name, "digest": {"sha256": hashlib.sha256(data).hexdigest()}},
    }
