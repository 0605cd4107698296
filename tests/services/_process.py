"""Starting a local service for tests: a free loopback port, then waiting until it answers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def system_binary(name: str, fallback: str, install: str) -> str:
    """The path of a system program the tests run, found on PATH or at ``fallback``.

    Missing, the test fails under ``CI=true`` (the project installs it) and skips
    elsewhere, saying how to install it (``install``: the Debian package).
    """
    import pytest

    binary = shutil.which(name) or (fallback if os.path.exists(fallback) else None)
    if binary is None:
        reason = f"{name} is not installed (apt-get install {install}, or run make system)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return binary


def wait_until_up(
    proc: subprocess.Popen[bytes], probe: Callable[[], bool], what: str, timeout: float = 30
) -> None:
    """Calls ``probe`` until it returns True; kills ``proc`` and fails if it dies or times out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if probe():
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Ends a started service: asks it to stop, kills it if it has not within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_moto(script_args: list[str], what: str) -> tuple[subprocess.Popen[bytes], str]:
    """Runs ``python SCRIPT_ARGS...`` (a moto server told its port by ``{port}``).

    Returns the process and its ``http://127.0.0.1:PORT`` endpoint once it answers.
    """
    port = free_port()
    argv = [sys.executable, *(a.format(port=port) for a in script_args)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        urllib.request.urlopen(endpoint + "/moto-api/", timeout=1).close()
        return True

    wait_until_up(proc, answers, what)
    return proc, endpoint
