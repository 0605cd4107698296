"""A real S3-compatible server on 127.0.0.1 for tests: moto's standalone server.

The session fixture ``s3_server`` starts ``python -m moto.server`` on a free loopback
port and returns its endpoint; ``s3_env`` points boto3 and s3fs at it for one test
(``AWS_ENDPOINT_URL``, test credentials, a region); ``s3_bucket`` creates a fresh bucket
(``s3_bucket(versioned=True)`` with versioning on) and ``upload`` copies a local folder
to ``s3://BUCKET/PREFIX``. moto accepts any credentials unless told otherwise, so a
refused request is made with ``deny_all()``, which asks the server to check every
request's credentials (moto's ``INITIAL_NO_AUTH_ACTION_COUNT`` setting, set through its
API for the remaining requests). moto and s3fs are development dependencies; under CI a
missing one fails instead of skipping.
"""

from __future__ import annotations

import os
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from services._process import start_moto, stop

TEST_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """Starts the S3 server; yields its ``http://127.0.0.1:PORT`` endpoint."""
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"moto[server], boto3 and s3fs are needed for the S3 tests: {exc}")
    proc, endpoint = start_moto(
        ["-m", "moto.server", "-H", "127.0.0.1", "-p", "{port}"], "the moto S3 server"
    )
    try:
        yield endpoint
    finally:
        stop(proc)


def s3_environment(endpoint: str) -> dict[str, str]:
    """The variables that point boto3 and s3fs at ``endpoint`` with test credentials."""
    return {"AWS_ENDPOINT_URL": endpoint, **TEST_CREDENTIALS}


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Points boto3 and s3fs (here and in child processes) at the test server."""
    for name, value in s3_environment(s3_server).items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    return s3_server


def s3_client() -> Any:
    """A boto3 S3 client configured from the environment."""
    import boto3

    return boto3.client("s3")


@pytest.fixture
def s3_bucket(s3_env: str) -> Callable[..., str]:
    """Creates a bucket with a fresh name: ``s3_bucket(versioned=False)`` -> its name."""

    def make(versioned: bool = False) -> str:
        name = f"models-{uuid.uuid4().hex[:12]}"
        client = s3_client()
        client.create_bucket(Bucket=name)
        if versioned:
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        return name

    return make


def upload(folder: Path, bucket: str, prefix: str) -> str:
    """Copies every file under ``folder`` to ``s3://BUCKET/PREFIX/...``; returns the URL."""
    client = s3_client()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(folder).as_posix()}"
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    return f"s3://{bucket}/{prefix}"


def deny_all(endpoint: str) -> Callable[[], None]:
    """Makes the server check credentials from now on; returns the undo function.

    moto then accepts only credentials of users it knows (none here), so every request
    with the test credentials is refused with ``InvalidAccessKeyId``.
    """

    def set_count(count: str) -> None:
        request = urllib.request.Request(
            endpoint + "/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(request, timeout=10).close()

    set_count("0")
    return lambda: set_count("inf")
