"""Running one tool invocation in a fresh process: wall time, reported time, peak RSS."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Invocation:
    """One way of running a tool: a label and its command line.

    ``reports_time`` marks driver scripts that print JSON with ``seconds`` (time of
    the operation alone, imports excluded) and ``digest``; otherwise the wall time
    of the whole process is the measurement. ``creates`` names a file the command
    must write (a signature): it is removed before each run and checked after.
    """

    tool: str
    mode: str
    argv: tuple[str, ...]
    reports_time: bool = False
    creates: Path | None = None


@dataclasses.dataclass(frozen=True)
class Run:
    """Outcome of one process."""

    wall: float
    maxrss_mb: float
    returncode: int
    stdout: str
    stderr: str

    def seconds(self, reports_time: bool) -> float:
        """The measured time: the driver's own figure if it reports one, else wall."""
        if reports_time and self.returncode == 0:
            return float(json.loads(self.stdout)["seconds"])
        return self.wall


@dataclasses.dataclass
class Measurement:
    """Median of repeated runs of one invocation."""

    tool: str
    mode: str
    seconds: float | None = None
    wall: float | None = None
    maxrss_mb: float | None = None
    digest: str | None = None
    error: str | None = None
    runs: list[float] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready view."""
        return dataclasses.asdict(self)


GNU_TIME = "/usr/bin/time"
TIMEOUT = 1800.0
"""Seconds after which a run is killed and reported as failed."""

# Fallback when GNU time is missing: a lean interpreter spawns the command and reports
# its peak RSS. Its own small footprint (a few MB) is the floor of the figure.
_LAUNCHER = (
    "import os,sys\n"
    "pid=os.posix_spawnp(sys.argv[2],sys.argv[2:],os.environ)\n"
    "_,st,ru=os.wait4(pid,0)\n"
    "open(sys.argv[1],'w').write(f'{ru.ru_maxrss}\\n')\n"
    "sys.exit(os.waitstatus_to_exitcode(st))\n"
)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def run_process(argv: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Runs ``argv`` in a new process and returns its wall time and own peak RSS.

    The peak comes from a small intermediate process (GNU ``time``, else a lean
    Python launcher): a child forked straight from this benchmark process would
    inherit this process's resident size as its starting peak.
    """
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as rss,
    ):
        if os.access(GNU_TIME, os.X_OK):
            command = [GNU_TIME, "-f", "%M", "-o", rss.name, *argv]
        else:
            command = [sys.executable, "-S", "-I", "-c", _LAUNCHER, rss.name, *argv]
        start = time.perf_counter()
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        # A blocking wait: Popen.wait(timeout=...) polls with sleeps of up to 50 ms,
        # which would blur short runs. A timer kills the run's own process group.
        timer = threading.Timer(TIMEOUT, _kill_group, (proc.pid,))
        timer.start()
        proc.wait()
        wall = time.perf_counter() - start
        timer.cancel()
        timed_out = proc.returncode == -signal.SIGKILL and wall >= TIMEOUT
        out.seek(0)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
        if proc.returncode == 127 and not stderr and command[0] == GNU_TIME:
            stderr = f"cannot run {argv[0]}"
        if timed_out:
            stderr += f"\ntimed out after {TIMEOUT:.0f} s"
        lines = rss.read().split()
        return Run(
            wall=wall,
            maxrss_mb=int(lines[-1]) / 1024 if lines and lines[-1].isdigit() else float("nan"),
            returncode=proc.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=stderr,
        )


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:120] if lines else ""


def measure(invocations: Sequence[Invocation], repeat: int) -> list[Measurement]:
    """Runs every invocation ``repeat`` times, interleaved, and keeps the medians.

    Interleaving (A, B, A, B, ...) spreads slow phases of a shared machine over all
    tools instead of penalising whichever ran during them.
    """
    times: list[list[float]] = [[] for _ in invocations]
    walls: list[list[float]] = [[] for _ in invocations]
    results = [Measurement(tool=inv.tool, mode=inv.mode) for inv in invocations]
    for _ in range(repeat):
        for i, inv in enumerate(invocations):
            result = results[i]
            if result.error:
                continue
            if inv.creates is not None:
                inv.creates.unlink(missing_ok=True)
            try:
                run = run_process(inv.argv)
            except OSError as exc:
                result.error = f"cannot run {inv.argv[0]}: {exc}"
                continue
            if run.returncode != 0:
                result.error = f"exit {run.returncode}: {_first_line(run.stderr or run.stdout)}"
                continue
            if inv.creates is not None and not inv.creates.is_file():
                result.error = f"exit 0 but no {inv.creates.name} written"
                continue
            times[i].append(run.seconds(inv.reports_time))
            walls[i].append(run.wall)
            result.maxrss_mb = max(result.maxrss_mb or 0.0, run.maxrss_mb)
            result.digest = _digest_of(run, inv.reports_time) or result.digest
    for i, result in enumerate(results):
        if times[i] and not result.error:
            result.runs = [round(t, 4) for t in times[i]]
            result.seconds = statistics.median(times[i])
            result.wall = statistics.median(walls[i])
    return results


def _digest_of(run: Run, reports_time: bool) -> str | None:
    if reports_time:
        return str(json.loads(run.stdout).get("digest") or "") or None
    return None


def sha256_single_core_rate(buffer_mib: int = 64, rounds: int = 5) -> float:
    """Bytes per second of ``hashlib.sha256`` on an in-memory buffer, best of ``rounds``."""
    data = os.urandom(buffer_mib << 20)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        hashlib.sha256(data).digest()
        best = min(best, time.perf_counter() - start)
    return len(data) / best


def root_of_blake3(hex_digest: str) -> str:
    """Root digest of a one-file BLAKE3 manifest: SHA-256 of the raw file digest."""
    return hashlib.sha256(bytes.fromhex(hex_digest)).hexdigest()


def read_json(path: Path) -> object:
    """Reads a JSON file."""
    return json.loads(path.read_text())
