"""Timestamps a verifier trusts: loading timestamp authority anchors, checking tokens.

The key and certificate verifiers share these: anchors come from PEM files and
Sigstore trust configs, and :func:`proven_time` turns a bundle's RFC 3161 tokens
into the time they prove (or none, when no authority is trusted).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omsign._timestamp import TimestampAnchor
    from omsign.backends._timestamp_authorities import TimestampAuthority
    from omsign.bundle import Bundle

__all__ = [
    "load_tsa_anchors",
    "proven_time",
    "tsa_anchors_from_options",
    "tsa_anchors_from_trust_config",
]

logger = logging.getLogger("omsign")


def tsa_anchors_from_options(options: Mapping[str, Any]) -> tuple[TimestampAnchor, ...]:
    """The anchors that ``tsa_certs=`` and ``trust_config=`` in verify options describe."""
    from omsign._paths import as_paths

    return load_tsa_anchors(as_paths(options.get("tsa_certs", ())), options.get("trust_config"))


def load_tsa_anchors(
    tsa_certs: Sequence[str | os.PathLike[str]] = (),
    trust_config: str | os.PathLike[str] | None = None,
) -> tuple[TimestampAnchor, ...]:
    """Timestamp authority anchors from PEM files and, optionally, a Sigstore trust config."""
    from omsign.backends._pem import load_certificates

    anchors: tuple[TimestampAnchor, ...] = tuple(c for p in tsa_certs for c in load_certificates(p))
    if trust_config is not None:
        anchors = (*anchors, *tsa_anchors_from_trust_config(trust_config))
    return anchors


def tsa_anchors_from_trust_config(
    path: str | os.PathLike[str],
) -> tuple[TimestampAuthority, ...]:
    """The timestamp authorities of a Sigstore trust config or trusted root.

    Each is trusted only for tokens its own listed certificate signed within its
    ``validFor`` window (see :class:`omsign.backends._timestamp_authorities.TimestampAuthority`).

    Raises:
        KeyLoadError: the file cannot be read or has no usable timestamp authority.
    """
    from omsign.backends._timestamp_authorities import load_timestamp_authorities

    return load_timestamp_authorities(path)


def proven_time(bundle: Bundle, anchors: Sequence[TimestampAnchor]) -> dt.datetime | None:
    """Verifies every RFC 3161 timestamp; returns the earliest proven time.

    With no anchors, timestamps cannot be trusted and are not used (a warning says so).
    With anchors, every timestamp must verify: one from another authority is rejected.
    """
    if not bundle.timestamps:
        return None
    if not anchors:
        logger.warning(
            "the signature has a timestamp, but no timestamp authority is trusted "
            "(give the authority's certificate to use it); the timestamp is not used"
        )
        return None
    from omsign._timestamp import verify_timestamp

    times = [verify_timestamp(t, bundle.signature, anchors) for t in bundle.timestamps]
    return min(times)
