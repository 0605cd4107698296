"""A real Azure Blob Storage emulator on 127.0.0.1 for tests: Azurite (npm ``azurite``).

``make system`` installs it under ``.cache/npm``; the session fixture ``azurite`` starts
``azurite-blob`` on a free loopback port with a temporary folder and yields the
connection string of its well-known development account; ``azure_env`` sets
``AZURE_STORAGE_CONNECTION_STRING`` for one test. Where Node or the package is missing
the tests skip saying so, except under CI, where that fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services._process import free_port, stop, wait_until_up

_ROOT = Path(__file__).resolve().parents[2]
# Azurite's documented development account (a public, well-known test key).
_ACCOUNT = "devstoreaccount1"
_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _binary() -> str | None:
    local = _ROOT / ".cache" / "npm" / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return str(local)
    return os.environ.get("OMSIGN_AZURITE") or shutil.which("azurite-blob")


@pytest.fixture(scope="session")
def azurite() -> Iterator[str]:
    """Starts Azurite's blob service; yields its connection string."""
    binary = _binary()
    try:
        import adlfs  # noqa: F401
        import azure.storage.blob  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"adlfs is needed for the Azure object-storage tests: {exc}")
    if binary is None:
        if os.environ.get("CI") == "true":
            raise RuntimeError("azurite-blob is not installed (make system installs it)")
        pytest.skip("Azurite (npm azurite) is not installed: make system installs it")
    port = free_port()
    data = tempfile.mkdtemp(prefix="azurite-")
    proc = subprocess.Popen(
        [
            binary,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            data,
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listens() -> bool:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True

    wait_until_up(proc, listens, "Azurite")
    try:
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={_ACCOUNT};AccountKey={_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/{_ACCOUNT};"
        )
    finally:
        stop(proc)
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def azure_env(azurite: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Points adlfs at the emulator for one test; returns the connection string."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    for name in (
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    return azurite
