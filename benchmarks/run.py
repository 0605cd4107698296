"""Benchmarks omsign against model_signing 1.1.1 (and b3sum), side by side, in one run.

Usage: ``python benchmarks/run.py [--quick | --full] [--only SCENARIO]... [--repeat N]``.
Generates synthetic models in the work dir (default ``.bench/``; reused while their
parameters match), warms the page cache, runs every tool in fresh processes, prints
a table with the targets of the issue, and writes ``results.json`` and
``results.md`` to the work dir. See ``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchlib import report, scenarios
from benchlib.config import PRESETS, SCENARIOS, Config, format_size, parse_size, usable_cores
from benchlib.measure import sha256_single_core_rate
from benchlib.results import ScenarioResult

REPO = Path(__file__).resolve().parent.parent

_ALIASES = {str(i + 1): name for i, name in enumerate(SCENARIOS)}

_SIZE_FLAGS = {
    "big_file": "size of the single file of scenarios 1 and 4",
    "hf_weight": "size of each of the four weight files of scenario 2",
    "small_size": "size of each small file of scenario 3",
    "sign_model": "size of the model signed and verified in scenario 6",
    "incremental_model": "size of the model re-signed in scenario 7",
    "shard_size": "shard size of omsign's (and model_signing's) shard mode",
}
_COUNT_FLAGS = {
    "hf_small_files": "number of small files of scenario 2",
    "small_count": "number of files of scenario 3",
    "version_runs": "runs of `--version` / `--help` whose median is kept (scenario 6)",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="omsign vs model_signing 1.1.1 benchmarks",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--full", action="store_true", help="the issue's sizes (4 GB file, ...)")
    preset.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run in seconds")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SCENARIO",
        help=f"run only these (repeatable or comma-separated): {', '.join(SCENARIOS)} or 1-7",
    )
    parser.add_argument("--workdir", type=Path, default=REPO / ".bench")
    parser.add_argument("--repeat", type=int, help="runs per measurement, median kept (3; quick 1)")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the big sizes (1, 2, 4, 7) by this"
    )
    parser.add_argument(
        "--method",
        choices=["api", "sign"],
        default="api",
        help="api: each library's hashing call timed in a fresh process; "
        "sign: each CLI signs with a key (whole process timed)",
    )
    parser.add_argument("--venv", type=Path, default=REPO / ".venv", help="omsign's venv")
    parser.add_argument(
        "--ref-venv", type=Path, default=REPO / ".venv-ms", help="model_signing 1.1.1's venv"
    )
    parser.add_argument("--b3sum", default=shutil.which("b3sum") or "b3sum")
    for name, text in _SIZE_FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=parse_size, help=text)
    for name, text in _COUNT_FLAGS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, help=text)
    return parser


def _config(args: argparse.Namespace) -> Config:
    preset = "full" if args.full else "quick" if args.quick else "default"
    sizes = PRESETS[preset]
    scaled = {
        k: max(1 << 20, int(getattr(sizes, k) * args.scale))
        for k in ("big_file", "hf_weight", "incremental_model")
    }
    overrides = {
        k: getattr(args, k) for k in (*_SIZE_FLAGS, *_COUNT_FLAGS) if getattr(args, k) is not None
    }
    only: list[str] = []
    for item in args.only:
        for raw in filter(None, item.split(",")):
            name = _ALIASES.get(raw.strip(), raw.strip())
            if name not in SCENARIOS:
                raise SystemExit(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
            only.append(name)
    if only == ["memory"]:
        only += ["big", "hf", "small"]  # memory summarises the runs of other scenarios
    return Config(
        repo=REPO,
        workdir=args.workdir.resolve(),
        venv=args.venv.absolute(),
        ref_venv=args.ref_venv.absolute(),
        b3sum=args.b3sum,
        sizes=sizes.__class__(**{**sizes.__dict__, **scaled, **overrides}),
        preset=preset,
        repeat=args.repeat or (1 if preset == "quick" else 3),
        only=tuple(only),
        method=args.method,
        cores=usable_cores(),
    )


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    return (out.stdout.strip() or out.stderr.strip() or f"exit {out.returncode}").splitlines()[0]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    """Runs the selected scenarios and prints and stores the report."""
    cfg = _config(_parser().parse_args())
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load_before = os.getloadavg()
    single = sha256_single_core_rate()
    limit = single * cfg.cores
    method = {
        "api": "hashing = each library's hash call (omsign.digest(), model_signing "
        "hashing.Config().hash()) timed inside a fresh process, imports excluded",
        "sign": "hashing = each CLI signing with a P-256 key, whole process timed",
    }[cfg.method]
    header = [
        f"omsign benchmark, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"preset {cfg.preset}, median of {cfg.repeat}",
        f"machine: {_cpu_model()}, {cfg.cores} cores; load average at start "
        + "/".join(f"{x:.2f}" for x in load_before),
        f"omsign: {_version([str(cfg.omsign_cli), '--version'])}; model_signing: "
        f"{_version([str(cfg.ms_cli), '--version'])}; b3sum: {_version([cfg.b3sum, '--version'])}",
        method,
        f"limit = {cfg.cores} cores x single-core hashlib.sha256 on an in-memory buffer "
        f"({single / 1e9:.2f} GB/s) = {limit / 1e9:.2f} GB/s",
        f"sizes: one file {format_size(cfg.sizes.big_file)}, HF 4 x "
        f"{format_size(cfg.sizes.hf_weight)}, {cfg.sizes.small_count} x "
        f"{format_size(cfg.sizes.small_size)}, shard {format_size(cfg.sizes.shard_size)}",
        "GB/s is 10^9 bytes per second; 'vs ms' is model_signing's time / this row's time",
    ]
    if cfg.preset == "quick":
        header.append("quick preset: a smoke run; sizes are too small for the targets to mean much")
    print("\n".join(header), flush=True)

    results: list[ScenarioResult] = []
    steps = [
        ("big", lambda: scenarios.big_file(cfg, limit)),
        ("hf", lambda: scenarios.hf_layout(cfg, limit)),
        ("small", lambda: scenarios.small_files(cfg)),
        ("blake3", lambda: scenarios.blake3_file(cfg)),
        ("startup", lambda: scenarios.startup_and_sign(cfg)),
        ("incremental", lambda: scenarios.incremental(cfg)),
    ]
    for name, step in steps:
        if cfg.wants(name):
            print(f"[{name}] ...", flush=True)
            results.append(step())
    if cfg.wants("memory"):
        results.insert(min(4, len(results)), scenarios.memory(cfg, results))

    load_after = os.getloadavg()
    header.append(
        "load average at end "
        + "/".join(f"{x:.2f}" for x in load_after)
        + f"; run took {time.perf_counter() - started:.0f} s"
    )
    print()
    print(report.render(results, header), end="")
    meta = {
        "preset": cfg.preset,
        "method": cfg.method,
        "repeat": cfg.repeat,
        "cores": cfg.cores,
        "cpu": _cpu_model(),
        "load_before": load_before,
        "load_after": load_after,
        "sha256_single_core_bytes_per_s": single,
        "limit_bytes_per_s": limit,
        "sizes": cfg.sizes.__dict__,
        "python": sys.version.split()[0],
    }
    report.write(cfg.workdir, results, header, meta)
    print(f"\nwritten: {cfg.workdir / 'results.json'}, {cfg.workdir / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
