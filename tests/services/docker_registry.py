"""Debian's ``docker-registry`` (CNCF distribution 2.8) on 127.0.0.1 for tests.

A real, widely deployed registry without the OCI 1.1 referrers API: signatures pushed to
it must use the ``sha256-<digest>`` tag fallback. The session fixture ``docker_registry``
writes a configuration into a temporary directory (filesystem storage there, HTTP on a
free loopback port, htpasswd basic authentication with a bcrypt entry made by
``htpasswd`` from apache2-utils), starts the server and waits until ``/v2/`` answers.

When the packages are missing the fixture skips (``make system`` installs them), except
under ``CI=true`` where it fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services._process import free_port, stop

USER = "omsign"
PASSWORD = "s3cret-distribution"

_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
auth:
  htpasswd:
    realm: omsign-test
    path: {htpasswd}
"""


@dataclass
class DockerRegistry:
    """A running ``docker-registry``.

    Attributes:
        host: ``127.0.0.1:PORT``.
        url: ``http://127.0.0.1:PORT``.
        user: the htpasswd user.
        password: its password.
        root: the storage directory.
    """

    host: str
    url: str
    user: str
    password: str
    root: Path

    def ref(self, repo: str, tag_or_digest: str = "") -> str:
        """``oci://HOST/REPO[:TAG|@DIGEST]``."""
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"oci://{self.host}/{repo}" + (sep + tag_or_digest if tag_or_digest else "")


def _require_packages() -> tuple[str, str]:
    registry, htpasswd = shutil.which("docker-registry"), shutil.which("htpasswd")
    if registry and htpasswd:
        return registry, htpasswd
    reason = (
        "docker-registry and htpasswd are not installed "
        "(apt-get install docker-registry apache2-utils, or run make system)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/v2/", timeout=1).close()
            return
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # up, and asking for credentials
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"docker-registry did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


@pytest.fixture(scope="session")
def docker_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerRegistry]:
    """A ``docker-registry`` with htpasswd auth, shared by the session (use fresh repos)."""
    binary, htpasswd = _require_packages()
    workdir = tmp_path_factory.mktemp("docker-registry")
    entry = subprocess.run(
        [htpasswd, "-Bbn", USER, PASSWORD], capture_output=True, check=True, text=True
    ).stdout
    (workdir / "htpasswd").write_text(entry.strip() + "\n")
    port = free_port()
    config = workdir / "config.yml"
    config.write_text(
        _CONFIG.format(
            root=workdir / "storage",
            port=port,
            secret=secrets.token_hex(16),
            htpasswd=workdir / "htpasswd",
        )
    )
    log = workdir / "registry.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    _wait_until_up(url, proc, log)
    try:
        yield DockerRegistry(f"127.0.0.1:{port}", url, USER, PASSWORD, workdir / "storage")
    finally:
        stop(proc)
