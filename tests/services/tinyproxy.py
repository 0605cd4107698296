"""tinyproxy on 127.0.0.1, an HTTP proxy (plain requests forwarded, ``CONNECT`` tunnels for
TLS), for the tests of proxies named in the environment.

The fixture ``tinyproxy`` writes a configuration into a temporary directory (log and pid
there, in the foreground, one process, for one test) and logs every request it proxies at level
``Connect``: a line per request or tunnel (``Request (file descriptor N): GET http://...``
or ``CONNECT 127.0.0.1:PORT``). ``tinyproxy`` (Debian) is installed by ``make system``;
without it the fixture skips, except under ``CI=true``.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services._process import free_port, stop, system_binary, wait_until_up

_CONFIG = """\
Port {port}
Listen 127.0.0.1
Timeout 30
LogFile "{work}/tinyproxy.log"
LogLevel Connect
PidFile "{work}/tinyproxy.pid"
MaxClients 16
Allow 127.0.0.1
DisableViaHeader Yes
"""


@dataclass(frozen=True)
class Tinyproxy:
    """A running tinyproxy: ``url`` is ``http://127.0.0.1:PORT``; ``log`` its log file."""

    url: str
    log: Path

    def requests(self) -> list[str]:
        """The requests and tunnels proxied so far, as logged."""
        lines = self.log.read_text(errors="replace").splitlines() if self.log.exists() else []
        return [line for line in lines if "Request (file descriptor" in line]

    def logged(self, text: str, *, since: int = 0, timeout: float = 10) -> list[str]:
        """The requests logged after the first ``since`` that hold ``text``, once there is
        one (the proxy's processes write their lines a moment after answering)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.requests()[since:] if text in line]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


@pytest.fixture
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    """A tinyproxy for one test (its own port: no connection kept from another test)."""
    yield from _run(tmp_path_factory, "")


@pytest.fixture
def tinyproxy_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    """A tinyproxy for one test that asks for a user and password (``omsign`` /
    ``s3cret``, HTTP Basic): a request without them is answered ``407``."""
    yield from _run(tmp_path_factory, "BasicAuth omsign s3cret\n")


def _run(tmp_path_factory: pytest.TempPathFactory, extra: str) -> Iterator[Tinyproxy]:
    binary = system_binary("tinyproxy", "/usr/bin/tinyproxy", "tinyproxy")
    work = tmp_path_factory.mktemp("tinyproxy")
    port = free_port()
    (work / "tinyproxy.conf").write_text(_CONFIG.format(port=port, work=work) + extra)
    argv = [binary, "-d", "-c", str(work / "tinyproxy.conf")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answers() -> bool:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True

    wait_until_up(proc, answers, "tinyproxy")
    try:
        yield Tinyproxy(f"http://127.0.0.1:{port}", work / "tinyproxy.log")
    finally:
        stop(proc)
