"""A Hugging Face model card's metadata (the YAML front matter of its README.md).

The predicate is ``{"metadata": {...}}``: the front matter as JSON, read with a safe
YAML loader (plain data only: no tags, no objects), from at most
:data:`MAX_CARD_BYTES` of file.
"""

from __future__ import annotations

from typing import Any

from omsign.intoto import get_field
from omsign.predicates._common import AttestationKind

__all__ = ["KIND", "PREDICATE_TYPE"]

PREDICATE_TYPE = "https://huggingface.co/docs/hub/model-cards#model-card-metadata"


def _check(predicate: dict[str, Any]) -> None:
    get_field(predicate, "metadata", dict, "predicate")


KIND = AttestationKind("model-card", PREDICATE_TYPE, "Hugging Face model card metadata", _check)
