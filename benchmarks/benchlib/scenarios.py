"""The seven scenarios of the benchmark issue, each returning a ScenarioResult."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchlib import models, tools
from benchlib.config import Config, format_size
from benchlib.measure import Invocation, Measurement, measure, root_of_blake3, run_process
from benchlib.results import Row, ScenarioResult, Target, verdict


def _hash_rows(
    cfg: Config,
    title: str,
    model: Path,
    plan: list[tuple[Invocation | None, bool]],
    unit: str = "GB/s",
) -> list[Row]:
    """Measures each planned invocation (None entries skipped); True marks the baseline."""
    size, files = models.model_bytes(model)
    models.warm_cache(model)
    kept = [(inv, base) for inv, base in plan if inv is not None]
    results = measure([inv for inv, _ in kept], cfg.repeat)
    return [
        Row(title, m, size, files, unit=unit, baseline=base)
        for m, (_, base) in zip(results, kept, strict=True)
    ]


def _find(rows: list[Row], tool: str, mode_prefix: str = "") -> Measurement | None:
    for row in rows:
        if row.measurement.tool == tool and row.measurement.mode.startswith(mode_prefix):
            return row.measurement
    return None


def _limit_share(row_m: Measurement | None, size: int, limit: float) -> float | None:
    if row_m is None or not row_m.seconds:
        return None
    return size / row_m.seconds / limit


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.0f}%"


def _times(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _check_digests(result: ScenarioResult, groups: list[list[Measurement | None]]) -> None:
    """Notes whether tools that hashed the same way agree on the root digest."""
    for group in groups:
        found = [m for m in group if m is not None and m.digest]
        if len(found) < 2:
            continue
        names = " / ".join(f"{m.tool} {m.mode}" for m in found)
        if len({m.digest for m in found}) == 1:
            result.notes.append(f"root digests agree: {names}")
        else:
            digests = ", ".join(f"{m.tool}={m.digest}" for m in found)
            result.notes.append(f"ROOT DIGESTS DIFFER: {names}: {digests}")


def big_file(cfg: Config, limit: float) -> ScenarioResult:
    """1. One big file, sha256: omsign shards vs model_signing's default (files)."""
    size, shard = cfg.sizes.big_file, cfg.sizes.shard_size
    title = f"1 one file {format_size(size)} sha256"
    model = models.ensure_model(cfg.workdir, "big", size=size)
    res = ScenarioResult("big", title)
    res.rows = _hash_rows(
        cfg,
        title,
        model,
        [
            (tools.hash_invocation(cfg, "omsign", model, shard_size=shard), False),
            (tools.hash_invocation(cfg, "omsign", model), False),
            (tools.hash_invocation(cfg, "model_signing", model), True),
            (tools.hash_invocation(cfg, "model_signing", model, shard_size=shard), False),
        ],
    )
    res.set_ratios()
    om = _find(res.rows, "omsign", "shards")
    om_files = _find(res.rows, "omsign", "files")
    ms_shards = _find(res.rows, "model_signing", "shards")
    ratio = next((r.ratio for r in res.rows if r.measurement is om), None)
    share = _limit_share(om, size, limit)
    ok_ratio = None if ratio is None else ratio >= 1.8
    ok_share = None if share is None else share >= 0.9
    res.targets = [
        Target(
            "1", "omsign shards >= 1.8x model_signing (files)", _times(ratio), verdict(ok_ratio)
        ),
        Target("1", "omsign shards >= 90% of limit", _pct(share), verdict(ok_share)),
    ]
    _check_digests(res, [[om, ms_shards], [om_files, _find(res.rows, "model_signing", "files")]])
    return res


def hf_layout(cfg: Config, limit: float) -> ScenarioResult:
    """2. Hugging Face-like layout: four weight files + small files, sha256 files mode."""
    weight, n_small = cfg.sizes.hf_weight, cfg.sizes.hf_small_files
    title = f"2 HF 4x{format_size(weight)} + {n_small} small"
    model = models.ensure_model(cfg.workdir, "hf", weight=weight, n_small=n_small)
    res = ScenarioResult("hf", title)
    res.rows = _hash_rows(
        cfg,
        title,
        model,
        [
            (tools.hash_invocation(cfg, "omsign", model), False),
            (tools.hash_invocation(cfg, "model_signing", model), True),
        ],
    )
    res.set_ratios()
    om = _find(res.rows, "omsign")
    share = _limit_share(om, res.rows[0].size_bytes, limit)
    res.targets = [
        Target(
            "2",
            "omsign files >= 90% of limit",
            _pct(share),
            verdict(None if share is None else share >= 0.9),
        )
    ]
    _check_digests(res, [[om, _find(res.rows, "model_signing")]])
    return res


def small_files(cfg: Config) -> ScenarioResult:
    """3. Many small files: files/s of both tools."""
    count, size = cfg.sizes.small_count, cfg.sizes.small_size
    title = f"3 {count} files x {format_size(size)}"
    model = models.ensure_model(cfg.workdir, "small", count=count, size=size)
    res = ScenarioResult("small", title)
    res.rows = _hash_rows(
        cfg,
        title,
        model,
        [
            (tools.hash_invocation(cfg, "omsign", model), False),
            (tools.hash_invocation(cfg, "model_signing", model), True),
        ],
        unit="files/s",
    )
    res.set_ratios()
    om = _find(res.rows, "omsign")
    ratio = next((r.ratio for r in res.rows if r.measurement is om), None)
    res.targets = [
        Target(
            "3",
            "omsign >= 3x model_signing files/s",
            _times(ratio),
            verdict(None if ratio is None else ratio >= 3),
        )
    ]
    _check_digests(res, [[om, _find(res.rows, "model_signing")]])
    return res


def blake3_file(cfg: Config) -> ScenarioResult:
    """4. BLAKE3 on one big file: omsign vs b3sum with the same thread count."""
    size = cfg.sizes.big_file
    title = f"4 one file {format_size(size)} blake3"
    model = models.ensure_model(cfg.workdir, "big", size=size)
    weights = model / "model.safetensors"
    res = ScenarioResult("blake3", title)
    b3 = tools.b3sum_invocation(cfg, weights, cfg.cores)
    res.rows = _hash_rows(
        cfg,
        title,
        model,
        [
            (
                tools.hash_invocation(
                    cfg,
                    "omsign",
                    model,
                    hash_algorithm="blake3",
                    workers=cfg.cores,
                    mode=f"files, {cfg.cores} threads",
                ),
                False,
            ),
            (b3, False),
            (
                tools.hash_invocation(
                    cfg, "model_signing", model, hash_algorithm="blake3", mode="files, auto threads"
                ),
                True,
            ),
        ],
    )
    res.set_ratios()
    om = _find(res.rows, "omsign")
    b3m = _find(res.rows, "b3sum")
    if b3m is not None and b3m.error is None:
        # b3sum prints the file digest; the manifest's root is SHA-256 over it.
        b3m.digest = _b3sum_root(cfg, weights)
    share = None
    if om and om.seconds and b3m and b3m.seconds:
        share = b3m.seconds / om.seconds
    res.targets = [
        Target(
            "4",
            f"omsign blake3 >= 90% of b3sum ({cfg.cores} threads)",
            _pct(share),
            verdict(None if share is None else share >= 0.9),
        )
    ]
    res.notes.append("b3sum's time is its whole process (wall time)")
    _check_digests(res, [[om, b3m, _find(res.rows, "model_signing")]])
    return res


def _b3sum_root(cfg: Config, path: Path) -> str | None:
    run = run_process(list(tools.b3sum_invocation(cfg, path, cfg.cores).argv))
    if run.returncode != 0 or not run.stdout.strip():
        return None
    return root_of_blake3(run.stdout.split()[0])


def memory(cfg: Config, done: list[ScenarioResult]) -> ScenarioResult:
    """5. Peak resident memory of each run, gathered from the other scenarios."""
    res = ScenarioResult("memory", "5 peak RSS")
    peaks: dict[str, tuple[float, str]] = {}
    for scenario in done:
        for row in scenario.rows:
            m = row.measurement
            if m.maxrss_mb is not None and m.maxrss_mb > peaks.get(m.tool, (0.0, ""))[0]:
                peaks[m.tool] = (m.maxrss_mb, f"{scenario.title}, {m.mode}")
    for tool, (peak, where) in sorted(peaks.items()):
        res.notes.append(f"highest peak RSS of {tool}: {peak:.0f} MB ({where})")
    om = peaks.get("omsign")
    res.targets = [
        Target(
            "5",
            "omsign peak RSS < 150 MB (every run)",
            "n/a" if om is None else f"{om[0]:.0f} MB",
            verdict(None if om is None else om[0] < 150),
        )
    ]
    return res


def startup_and_sign(cfg: Config) -> ScenarioResult:
    """6. ``--version`` wall time, and sign + verify of a small model, both tools."""
    runs = cfg.sizes.version_runs
    res = ScenarioResult("startup", f"6 startup; sign+verify {format_size(cfg.sizes.sign_model)}")
    startup = measure(
        [
            Invocation("omsign", "--version", (str(cfg.omsign_cli), "--version")),
            Invocation("model_signing", "--help", (str(cfg.ms_cli), "--help")),
        ],
        runs,
    )
    model = models.ensure_model(cfg.workdir, "sign", size=cfg.sizes.sign_model)
    size, files = models.model_bytes(model)
    models.warm_cache(model)
    om_sig = tools.signature_path(cfg, "omsign", model)
    ms_sig = tools.signature_path(cfg, "model_signing", model)
    sign = measure(
        [
            Invocation(
                "omsign", "sign", tuple(tools.omsign_sign_argv(cfg, model, om_sig)), creates=om_sig
            ),
            Invocation(
                "model_signing",
                "sign",
                tuple(tools.ms_sign_argv(cfg, model, ms_sig)),
                creates=ms_sig,
            ),
        ],
        cfg.repeat,
    )
    verify = measure(
        [
            Invocation("omsign", "verify", tuple(tools.omsign_verify_argv(cfg, model, om_sig))),
            Invocation("model_signing", "verify", tuple(tools.ms_verify_argv(cfg, model, ms_sig))),
        ],
        cfg.repeat,
    )
    title = res.title
    res.rows = [Row(title, m, 0, 0, unit="", baseline=m.tool == "model_signing") for m in startup]
    res.rows += [
        Row(title, m, size, files, unit="", baseline=m.tool == "model_signing")
        for m in (*sign, *verify)
    ]
    for pair in (res.rows[0:2], res.rows[2:4], res.rows[4:6]):
        ms_s = pair[1].measurement.seconds
        if ms_s and pair[0].measurement.seconds:
            pair[0].ratio = ms_s / pair[0].measurement.seconds
            pair[1].ratio = 1.0
    version = startup[0].seconds
    res.targets.append(
        Target(
            "6",
            f"omsign --version < 150 ms (median of {runs})",
            "n/a" if version is None else f"{version * 1000:.0f} ms",
            verdict(None if version is None else version < 0.150),
        )
    )
    om_total = _sum(sign[0].seconds, verify[0].seconds)
    ms_total = _sum(sign[1].seconds, verify[1].seconds)
    share = om_total / ms_total if om_total and ms_total else None
    res.targets.append(
        Target(
            "6",
            "omsign sign+verify < 0.5x model_signing's time",
            "n/a" if share is None else f"{share:.2f}x ({om_total:.2f} s vs {ms_total:.2f} s)",
            verdict(None if share is None else share < 0.5),
        )
    )
    return res


def _sum(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def incremental(cfg: Config) -> ScenarioResult:
    """7. Full sign, change one small file, re-sign with ``--reuse-digests``."""
    size = cfg.sizes.incremental_model
    title = f"7 re-sign {format_size(size)}, 1 file changed"
    res = ScenarioResult("incremental", title)
    model = models.ensure_model(cfg.workdir, "incremental", size=size)
    total, files = models.model_bytes(model)
    models.warm_cache(model)
    changed = model / "config.json"
    original = changed.read_bytes()
    signature = tools.signature_path(cfg, "omsign", model)
    sign = tools.omsign_sign_argv(cfg, model, signature)
    full = Measurement("omsign", "sign (full)")
    reuse = Measurement("omsign", "sign --reuse-digests")
    full_times: list[float] = []
    reuse_times: list[float] = []
    # The digest cache does not trust files modified in the last 2 s (a same-tick edit could
    # go unseen); let freshly generated files age past that before priming it.
    newest = max(p.stat().st_mtime for p in model.rglob("*") if p.is_file())
    time.sleep(max(0.0, newest + 2.5 - time.time()))
    try:
        for i in range(cfg.repeat):
            changed.write_bytes(original)
            signature.unlink(missing_ok=True)
            run = run_process(sign)
            if run.returncode != 0 or not signature.is_file():
                full.error = f"exit {run.returncode}: {run.stderr.strip()[-120:]}"
                if run.returncode == 0:
                    full.error = f"exit 0 but no {signature.name} written"
                break
            full_times.append(run.wall)
            full.maxrss_mb = max(full.maxrss_mb or 0.0, run.maxrss_mb)
            run_process([*sign, "--reuse-digests"])  # prime the cache (not timed)
            changed.write_bytes(original + f"\n// edit {i}\n".encode())
            run = run_process([*sign, "--reuse-digests"])
            if run.returncode == 2 and "unrecognized arguments" in run.stderr:
                reuse.error = "n/a: omsign sign has no --reuse-digests yet"
                continue
            if run.returncode != 0:
                reuse.error = f"exit {run.returncode}: {run.stderr.strip()[-120:]}"
                continue
            reuse_times.append(run.wall)
            reuse.maxrss_mb = max(reuse.maxrss_mb or 0.0, run.maxrss_mb)
        if reuse_times and not reuse.error:
            check = run_process(tools.omsign_verify_argv(cfg, model, signature))
            res.notes.append(
                "re-signed signature verifies"
                if check.returncode == 0
                else f"RE-SIGNED SIGNATURE FAILS TO VERIFY: {check.stderr.strip()[-200:]}"
            )
    finally:
        changed.write_bytes(original)
    for m, times in ((full, full_times), (reuse, reuse_times)):
        if times and not m.error:
            m.seconds = m.wall = statistics.median(times)
            m.runs = [round(t, 4) for t in times]
    ms = measure(
        [
            Invocation(
                "model_signing",
                "sign (full)",
                tuple(tools.ms_sign_argv(cfg, model, tools.signature_path(cfg, "ms", model))),
            )
        ],
        cfg.repeat,
    )[0]
    res.rows = [Row(title, m, total, files) for m in (full, reuse)]
    res.rows.append(Row(title, ms, total, files, baseline=True))
    res.set_ratios()
    speedup = full.seconds / reuse.seconds if full.seconds and reuse.seconds else None
    res.targets.append(
        Target(
            "7",
            "re-sign with --reuse-digests (no target; speed-up over full sign)",
            "n/a" if speedup is None else f"{speedup:.1f}x",
            "n/a",
        )
    )
    return res
