"""Verified loading against verifying alone and against verify-then-load, in one run.

Usage: ``python benchmarks/loading.py [--size 2G] [--shards 4] [--repeat 3] [--quick]``.
Generates a sharded safetensors checkpoint (random float32 tensors) in ``.bench/``,
signs it with a fresh P-256 key (files mode, sha256), warms the page cache, then times
each way in a fresh process (median of ``--repeat``):

- ``verify``: ``omsign.verify`` alone;
- ``load``: a plain ``safetensors.torch.load`` of every shard's bytes (no verification; a
  memory-mapped ``load_file`` defers the reading to the first use of each page, which
  would hide its cost here);
- ``verify+load``: both, one after the other, as a user would do today;
- ``omsign load``: ``load_sharded(open_verified(..., verify_content=False), "torch")``,
  which verifies while it loads, one read per byte.

Targets: ``omsign load`` at most ~1.10x ``verify``, and below ``verify+load``. Also printed:
``omsign load`` against the plain ``load``, which shows what verification adds to a load
(filling gigabytes of fresh tensor memory costs more than hashing cached bytes, so the
first ratio also measures the memory, not only the verification).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from benchlib.tools import keys

REPO = Path(__file__).resolve().parent.parent
_SIZES = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}

_RUNS = {
    "verify": "omsign.verify(model, key=public)",
    "load": "[load(p.read_bytes()) for p in sorted(model.glob('*.safetensors'))]",
    "verify+load": "omsign.verify(model, key=public); "
    "[load(p.read_bytes()) for p in sorted(model.glob('*.safetensors'))]",
    "omsign load": "load_sharded(omsign.open_verified(model, key=public, verify_content=False), "
    "framework='torch')",
}
_PRELUDE = (
    "import sys, time; from pathlib import Path; import omsign, torch; "
    "from safetensors.torch import load; "
    "from omsign.integrations.safetensors import load_sharded; "
    "model, public = Path(sys.argv[1]), Path(sys.argv[2]); t = time.perf_counter(); "
)


def _size(text: str) -> int:
    text = text.upper().removesuffix("B").removesuffix("I")
    return int(float(text[:-1]) * _SIZES[text[-1]]) if text[-1] in _SIZES else int(text)


def _make(folder: Path, size: int, shards: int) -> tuple[Path, Path]:
    from safetensors.numpy import save_file

    import omsign

    stamp = folder / "stamp.json"
    want = {"size": size, "shards": shards}
    model = folder / "model"
    if stamp.exists() and json.loads(stamp.read_text()) == want:
        return model, keys(SimpleNamespace(workdir=folder))[1]  # type: ignore[arg-type]
    folder.mkdir(parents=True, exist_ok=True)
    model.mkdir(exist_ok=True)
    for old in model.iterdir():
        old.unlink()
    rng = np.random.default_rng(0)
    per_shard, weight_map = size // shards, {}
    for s in range(shards):
        name = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {
            f"layer.{s}.{t}.weight": rng.standard_normal(per_shard // 16 // 4, dtype=np.float32)
            for t in range(16)
        }
        save_file(tensors, str(model / name))
        weight_map.update(dict.fromkeys(tensors, name))
    index = {"metadata": {}, "weight_map": weight_map}
    (model / "model.safetensors.index.json").write_text(json.dumps(index))
    private, public = keys(SimpleNamespace(workdir=folder))  # type: ignore[arg-type]
    omsign.sign(model, key=private)
    stamp.write_text(json.dumps(want))
    return model, public


def _time(code: str, model: Path, public: Path) -> float:
    script = _PRELUDE + code + "; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", script, str(model), str(public)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2G", help="checkpoint size (default 2G)")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="64M, one run: a smoke test")
    parser.add_argument("--workdir", default=str(REPO / ".bench" / "loading"))
    args = parser.parse_args()
    size, repeat = (64 << 20, 1) if args.quick else (_size(args.size), args.repeat)
    model, public = _make(Path(args.workdir), size, args.shards)
    for p in model.iterdir():  # warm the page cache
        p.read_bytes()
    times: dict[str, list[float]] = {name: [] for name in _RUNS}
    for _ in range(repeat):
        for name, code in _RUNS.items():  # alternating, so drift hits every way alike
            times[name].append(_time(code, model, public))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"verified loading, {size / (1 << 30):.2f} GiB in {args.shards} shards, "
          f"median of {repeat}:")  # fmt: skip
    for name, value in median.items():
        print(f"  {name:<12} {value:7.2f} s  {size / value / 1e9:5.2f} GB/s")
    over_verify = median["omsign load"] / median["verify"]
    over_both = median["omsign load"] / median["verify+load"]
    print(f"  omsign load / verify      = {over_verify:.2f}x (target <= 1.10x)")
    print(f"  omsign load / verify+load = {over_both:.2f}x (target < 1.00x)")
    print(f"  omsign load / load        = {median['omsign load'] / median['load']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
