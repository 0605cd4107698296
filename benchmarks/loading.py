"""Verified loading against verifying alone and against verify-then-load, in one run.

Usage: ``python benchmarks/loading.py [--size 2G] [--shards 4] [--repeat 3] [--no-cold]
[--quick]``. Generates two checkpoints of random float32 tensors in ``.bench/loading``:
one sharded (``--shards`` safetensors files and their index) and one single
``model.safetensors``, each ``--size`` bytes, signed with a fresh P-256 key (files mode,
sha256). Each way is timed in a fresh process (median of ``--repeat``), with the page
cache warm (every file read just before) and cold (dropped with ``posix_fadvise`` before
each run, so the files come from the disk):

- ``verify``: ``omsign.verify`` alone;
- ``load``: a plain ``safetensors.torch.load`` of every file's bytes (no verification; a
  memory-mapped ``load_file`` defers the reading to the first use of each page, which
  would hide its cost here);
- ``verify+load``: both, one after the other, as a user would do today;
- ``omsign load``: ``load_sharded`` (or ``load`` for the single file) on
  ``open_verified(..., verify_content=False)``, with torch tensors: one read per byte,
  hashed in the memory the tensors then use.

Targets: ``omsign load`` at most ~1.10x ``verify``, and below ``verify+load``. Also printed:
``omsign load`` against the plain ``load``, the CPU seconds each way used (user + system,
every thread), and its peak memory above the process' size before the call. With a warm
cache on a machine whose cores are all busy hashing, a load cannot match verifying alone:
the tensors' fresh memory must be faulted in and filled (about 0.6 CPU-seconds per GiB
here), which verifying, reading into one reused buffer, never pays. The CPU column shows
that cost; the cold rows show the case the disk dominates.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchlib.tools import keys

REPO = Path(__file__).resolve().parent.parent
_SIZES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

_PLAIN = "[load(p.read_bytes()) for p in sorted(model.glob('*.safetensors'))]"
_RUNS = {
    "verify": "omsign.verify(model, key=public)",
    "load": _PLAIN,
    "verify+load": "omsign.verify(model, key=public); " + _PLAIN,
    "omsign load": "verified_load(omsign.open_verified(model, key=public, verify_content=False))",
}
_PRELUDE = """
import json, resource, sys, time
from pathlib import Path
import omsign, torch
from safetensors.torch import load
from omsign.integrations.safetensors import load as load_file, load_sharded
model, public = Path(sys.argv[1]), Path(sys.argv[2])

def verified_load(verified):
    if (model / "model.safetensors.index.json").is_file():
        return load_sharded(verified, framework="torch")
    return load_file(verified, "model.safetensors", framework="torch")

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def status(field):  # kB; VmHWM is this process' peak resident memory
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) << 10

with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak starts again from the memory held now
before = status("VmRSS")
c, t = cpu(), time.perf_counter()
result = RUN
t, c = time.perf_counter() - t, cpu() - c
print(json.dumps({"wall": t, "cpu": c, "peak": status("VmHWM") - before}))
"""


def _size(text: str) -> int:
    text = text.upper().removesuffix("B").removesuffix("I")
    return int(float(text[:-1]) * _SIZES[text[-1]]) if text[-1] in _SIZES else int(text)


def _make(folder: Path, size: int, shards: int, public: Path, private: Path) -> Path:
    """A signed checkpoint of ``size`` bytes in ``shards`` files (1: ``model.safetensors``)."""
    from safetensors.numpy import save_file

    import omsign

    stamp = folder / "stamp.json"
    want = {"size": size, "shards": shards, "key": public.read_text()}
    model = folder / "model"
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return model
    model.mkdir(parents=True, exist_ok=True)
    for old in model.iterdir():
        old.unlink()
    rng = np.random.default_rng(0)
    per_shard, weight_map = size // shards, {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        name = name if shards > 1 else "model.safetensors"
        tensors = {
            f"layer.{s}.{t}.weight": rng.standard_normal(per_shard // 16 // 4, dtype=np.float32)
            for t in range(16)
        }
        save_file(tensors, str(model / name))
        weight_map.update(dict.fromkeys(tensors, name))
    if shards > 1:
        index = {"metadata": {}, "weight_map": weight_map}
        (model / "model.safetensors.index.json").write_text(json.dumps(index))
    omsign.sign(model, key=private)
    stamp.write_text(json.dumps(want))
    return model


def _cache(model: Path, *, warm: bool) -> None:
    """Reads every file (warm) or drops it from the page cache (cold)."""
    for path in model.iterdir():
        if warm:
            path.read_bytes()
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _time(code: str, model: Path, public: Path) -> dict[str, float]:
    script = _PRELUDE.replace("RUN", code)
    out = subprocess.run(
        [sys.executable, "-c", script, str(model), str(public)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _scenario(title: str, model: Path, public: Path, warm: bool, repeat: int, size: int) -> None:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in _RUNS}
    for _ in range(repeat):
        for name, code in _RUNS.items():  # alternating, so drift hits every way alike
            _cache(model, warm=warm)
            runs[name].append(_time(code, model, public))
    med = {
        name: {k: statistics.median(r[k] for r in values) for k in ("wall", "cpu", "peak")}
        for name, values in runs.items()
    }
    print(f"{title}, {'warm' if warm else 'cold'} cache, median of {repeat}:")
    for name, m in med.items():
        print(f"  {name:<12} {m['wall']:6.2f} s {size / m['wall'] / 1e9:5.2f} GB/s   "
              f"cpu {m['cpu']:6.2f} s   peak +{m['peak'] / (1 << 30):5.2f} GiB")  # fmt: skip
    wall = {name: m["wall"] for name, m in med.items()}
    cpu = {name: m["cpu"] for name, m in med.items()}
    ours = "omsign load"
    print(f"  omsign load / verify      = {wall[ours] / wall['verify']:.2f}x "
          f"(target <= 1.10x; cpu {cpu[ours] / cpu['verify']:.2f}x)")  # fmt: skip
    print(f"  omsign load / verify+load = {wall[ours] / wall['verify+load']:.2f}x "
          f"(target < 1.00x; cpu {cpu[ours] / cpu['verify+load']:.2f}x)")  # fmt: skip
    print(f"  omsign load / load        = {wall[ours] / wall['load']:.2f}x "
          f"(cpu {cpu[ours] / cpu['load']:.2f}x)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2G", help="checkpoint size (default 2G)")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-cache runs")
    parser.add_argument("--quick", action="store_true", help="64M, one run: a smoke test")
    parser.add_argument("--workdir", default=str(REPO / ".bench" / "loading"))
    args = parser.parse_args()
    size, repeat = (64 << 20, 1) if args.quick else (_size(args.size), args.repeat)
    work = Path(args.workdir)
    private, public = keys(SimpleNamespace(workdir=work))  # type: ignore[arg-type]
    layouts = {
        f"{size / (1 << 30):.2f} GiB in {args.shards} shards": _make(
            work / "sharded", size, args.shards, public, private
        ),
        f"{size / (1 << 30):.2f} GiB in one file": _make(work / "single", size, 1, public, private),
    }
    print(f"verified loading ({os.cpu_count()} CPUs; 'peak' is memory above the process "
          "before the call)")  # fmt: skip
    for warm in (True, False) if not args.no_cold else (True,):
        for title, model in layouts.items():
            _scenario(title, model, public, warm, repeat, size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
