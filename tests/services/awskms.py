"""A real AWS KMS-compatible server on 127.0.0.1 for tests: moto's standalone server.

The session fixture ``kms_server`` starts ``moto_kms_server.py`` (moto's server with
its ``DIGEST`` signing corrected, see that file) on a free loopback port and returns
its endpoint; ``aws_env`` points boto3 at it (``AWS_ENDPOINT_URL``, test credentials,
a region) for one test. ``make_kms_key`` creates a key of a given spec and returns its
id. moto is a development dependency; under CI a missing one fails instead of skipping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from services._process import start_moto, stop

_LAUNCHER = Path(__file__).with_name("moto_kms_server.py")


@pytest.fixture(scope="session")
def kms_server() -> Iterator[str]:
    """Starts the KMS server; yields its ``http://127.0.0.1:PORT`` endpoint."""
    try:
        import boto3  # noqa: F401
        import moto  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"moto[server] and boto3 are needed for the AWS KMS tests: {exc}")
    proc, endpoint = start_moto([str(_LAUNCHER), "{port}"], "the moto KMS server")
    try:
        yield endpoint
    finally:
        stop(proc)


@pytest.fixture
def aws_env(kms_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Points boto3 (in this process and its children) at the test server."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", kms_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    return kms_server


@pytest.fixture
def make_kms_key(aws_env: str) -> Callable[..., str]:
    """Creates a KMS key: ``make_kms_key("ECC_NIST_P256", usage="SIGN_VERIFY")`` -> key id."""
    import boto3

    client = boto3.client("kms")

    def make(spec: str, usage: str = "SIGN_VERIFY", alias: str | None = None) -> str:
        key_id: str = client.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]
        if alias:
            client.create_alias(AliasName=f"alias/{alias}", TargetKeyId=key_id)
        return key_id

    return make
