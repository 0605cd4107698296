"""Pytest fixtures for the local Sigstore instance.

Registered in the root ``conftest.py`` as ``services.sigstore_local.fixtures``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import LocalSigstore
from . import local_sigstore as _local_sigstore


@pytest.fixture(scope="session")
def local_sigstore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSigstore]:
    """A local Fulcio + Rekor + TSA on 127.0.0.1, shared by the session."""
    with _local_sigstore(tmp_path_factory.mktemp("sigstore")) as instance:
        yield instance
