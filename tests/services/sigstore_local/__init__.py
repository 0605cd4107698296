"""A local Sigstore-compatible instance (Fulcio, Rekor v1, TSA) for tests.

Sigstore clients sign against it and verify with the trust configuration it
writes, with no network beyond 127.0.0.1::

    with local_sigstore(tmp_path) as sigstore:
        ...  # sigstore.trust_config, sigstore.identity_token, sigstore.identity
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._server import GITHUB_CLAIMS, GITHUB_WORKFLOW_IDENTITY, LocalSigstore, start_local_sigstore

__all__ = [
    "GITHUB_CLAIMS",
    "GITHUB_WORKFLOW_IDENTITY",
    "LocalSigstore",
    "local_sigstore",
    "start_local_sigstore",
]


@contextmanager
def local_sigstore(workdir: Path) -> Iterator[LocalSigstore]:
    """Runs a local instance for the duration of the ``with`` block."""
    instance = start_local_sigstore(workdir)
    try:
        yield instance
    finally:
        instance.stop()
